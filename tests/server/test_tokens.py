"""vines_server.xmpp.tokens makes what the standard library's secrets makes: the same lengths
and alphabets, from the system's random source, different on every call."""

from __future__ import annotations

import re
import secrets

import pytest
from vines_server.xmpp import tokens


@pytest.mark.parametrize("nbytes", [0, 1, 6, 8, 9, 18, 32])
def test_tokens_have_the_shape_secrets_gives(nbytes: int) -> None:
    assert len(tokens.token_bytes(nbytes)) == len(secrets.token_bytes(nbytes))
    assert len(tokens.token_hex(nbytes)) == len(secrets.token_hex(nbytes))
    assert re.fullmatch(r"[0-9a-f]*", tokens.token_hex(nbytes))
    assert len(tokens.token_urlsafe(nbytes)) == len(secrets.token_urlsafe(nbytes))
    assert re.fullmatch(r"[A-Za-z0-9_-]*", tokens.token_urlsafe(nbytes))


def test_tokens_differ_on_every_call() -> None:
    assert len({tokens.token_urlsafe(18) for _ in range(1000)}) == 1000
    assert len({tokens.token_hex(8) for _ in range(1000)}) == 1000
    assert len({tokens.token_bytes(32) for _ in range(1000)}) == 1000
