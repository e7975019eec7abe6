"""RFC 7622 JIDs: parsing, preparation, malformed input (security plan 1.5)."""

from __future__ import annotations

import pytest
from vines_server.xmpp.jid import JID, JIDError


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("example.com", (None, "example.com", None)),
        ("user@example.com", ("user", "example.com", None)),
        ("user@example.com/res", ("user", "example.com", "res")),
        ("example.com/res", (None, "example.com", "res")),
        ("user@example.com/a/b@c", ("user", "example.com", "a/b@c")),  # '/' and '@' in resource
        ("User@EXAMPLE.com./Res", ("user", "example.com", "Res")),
        ("ÄLICE@example.com", ("älice", "example.com", None)),
        ("u@127.0.0.1", ("u", "127.0.0.1", None)),
        ("u@[::1]/r", ("u", "[::1]", "r")),
        ("u@example.com/with space", ("u", "example.com", "with space")),
    ],
)
def test_parse(text: str, parts: tuple) -> None:
    jid = JID.parse(text)
    assert (jid.local, jid.domain, jid.resource) == parts


def test_nfc_normalization() -> None:
    decomposed = "e\u0301"  # e + combining acute
    assert JID.parse(f"{decomposed}@x/{decomposed}") == JID.parse("\u00e9@x/\u00e9")


@pytest.mark.parametrize(
    "text",
    [
        "a@b@c",
        "@d",
        "d/",
        "user@",
        "",
        "user@/r",
        "a b@example.com",
        'a"b@x',
        "a&b@x",
        "a'b@x",
        "a:b@x",
        "a<b@x",
        "a>b@x",
        "a\x00@x",
        "u@x/\x07",
        "u@exa..mple",
        "u@.",
        "u@" + "a" * 64 + ".com",
        "u@exa mple.com",
        "u@[not-ipv6]",
        "a" * 1024 + "@x",
        "u@x/" + "r" * 1024,
        "u@x/" + "\u00e9" * 512,  # 1024 bytes of UTF-8
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(JIDError):
        JID.parse(text)


def test_size_boundaries_in_bytes() -> None:
    assert JID.parse("a" * 1023 + "@x").local == "a" * 1023
    assert JID.parse("u@x/" + "\u00e9" * 511 + "r").resource is not None  # 1023 bytes
    assert JID.parse("u@" + "a" * 63 + ".com").domain.startswith("a" * 63)


def test_jid_error_is_value_error() -> None:
    assert issubclass(JIDError, ValueError)


def test_bare_full_and_str() -> None:
    full = JID.parse("User@Example.com/phone")
    assert str(full) == "user@example.com/phone"
    assert not full.is_bare
    assert full.bare == JID.parse("user@example.com") and full.bare.is_bare
    assert str(full.bare) == "user@example.com"
    assert full.bare.with_resource("laptop") == JID.parse("user@example.com/laptop")
    assert str(JID.parse("example.com")) == "example.com"
    with pytest.raises(JIDError):
        full.with_resource("")


def test_prepared_forms_compare_and_hash() -> None:
    assert JID.parse("ALICE@Example.COM") == JID.parse("alice@example.com.")
    assert len({JID.parse("a@b/r"), JID.parse("A@B/r"), JID.parse("a@b/R")}) == 2
