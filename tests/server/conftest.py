from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vines_server import certs
from vines_server.config_template import render_config

from tests.support.cluster import Shared
from tests.support.postgres import PostgresInstance, postgres_unavailable
from tests.support.redis import RedisInstance, redis_unavailable
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


def require(reason: str | None) -> None:
    """A daemon the tests start is missing: skipped locally, a failure under CI (.ci/run must
    install it)."""
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI must install it (.ci/run)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresInstance]:
    """One throw-away PostgreSQL for the session (tests/support/postgres.py); each test creates
    its own database in it. Without the binaries or root: skipped locally, a failure under CI."""
    require(postgres_unavailable())
    instance = PostgresInstance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def redis() -> Iterator[RedisInstance]:
    """A throw-away redis-server per test (tests/support/redis.py): cluster tests stop and restart
    it. Without the binary: skipped locally, a failure under CI."""
    require(redis_unavailable())
    instance = RedisInstance.create()
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
async def shared(postgres, redis, pki: PKI, tmp_path: Path) -> Shared:
    """What the nodes of one cluster test share: a new database and a Redis."""
    return Shared(pki, tmp_path, await postgres.create_database(), postgres, redis)


@pytest.fixture
def default_config(tmp_path: Path) -> Path:
    """The vines.toml `vinesctl server init` writes, for localhost with a generated certificate."""
    cert_file, key_file = tmp_path / "localhost.crt", tmp_path / "localhost.key"
    cert, key = certs.make_certificate(["localhost"])
    certs.write_pem(cert, key, cert_file, key_file)
    config = tmp_path / "vines.toml"
    config.write_text(
        render_config("localhost", "admin@localhost", "127.0.0.1", 0, 0, cert_file, key_file)
    )
    return config
