from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.xmpp import PKI, make_pki, running_server


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=["sqlite"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path, pki: PKI):
    async with running_server(tmp_path, pki, backend=request.param) as h:
        await h.add_user("alice")
        await h.add_user("bob")
        await h.add_user("mallory")
        yield h
