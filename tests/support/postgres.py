"""A throw-away PostgreSQL for tests: Debian's server binaries (as the `postgres` user when we
are root: the server refuses root), data and socket in one temporary directory, listening on
127.0.0.1 and an ephemeral port with password (SCRAM) authentication, so the backend's password
handling is what the tests exercise. Each test gets a database of its own (`create_database`)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.support.ports import free_port

ROLE = "vines"
PASSWORD = "pg-secret-Zq8wX"  # a test secret: the no-leak tests look for it in every output


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL server's bin directory (initdb, pg_ctl), if installed."""
    dirs = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    dirs.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    return dirs[-1] if dirs else None


def postgres_unavailable() -> str | None:
    """Why a throw-away PostgreSQL cannot start here, or None."""
    if postgres_bindir() is None:
        return "PostgreSQL server binaries (Debian package postgresql) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return None


@dataclass
class PostgresInstance:
    root: Path
    port: int
    password_file: Path
    bindir: Path
    databases: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_postgres(self, *argv: str) -> None:
        """PostgreSQL refuses to run as root: then as the postgres user, else as ourselves."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *argv],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @classmethod
    def start(cls) -> PostgresInstance:
        bindir = postgres_bindir()
        assert bindir is not None
        root = Path(tempfile.mkdtemp(prefix="vines-pg-"))  # short: the socket path must fit
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        password_file = Path(tempfile.mkdtemp(prefix="vines-pgpw-")) / "password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        instance = cls(root, free_port(), password_file, bindir)
        instance._as_postgres(
            str(bindir / "initdb"),
            "--pgdata",
            str(instance.data),
            "--username=postgres",
            "--auth-local=trust",  # the socket lives in root (0700, owned by postgres)
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",  # throw-away; the server itself still fsyncs every commit
        )
        options = f"-p {instance.port} -k {root} -c listen_addresses=127.0.0.1"
        instance._as_postgres(
            str(bindir / "pg_ctl"),
            "start",
            "--wait",
            "--pgdata",
            str(instance.data),
            "--log",
            str(root / "postgres.log"),
            "-o",
            options,
        )
        return instance

    def stop(self) -> None:
        try:
            self._as_postgres(
                str(self.bindir / "pg_ctl"), "stop", "--pgdata", str(self.data), "-m", "immediate"
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.password_file.parent, ignore_errors=True)

    async def admin(self, database: str = "postgres") -> asyncpg.Connection:
        """The superuser over the socket (trust), for creating roles and databases."""
        return await asyncpg.connect(
            host=str(self.root), port=self.port, user="postgres", database=database
        )

    async def create_database(self) -> str:
        """A new empty database owned by the test role; its DSN (no password in it)."""
        self.databases += 1
        name = f"vines_{self.databases}"
        conn = await self.admin()
        try:
            if self.databases == 1:
                await conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
            await conn.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
        finally:
            await conn.close()
        return self.dsn(name)

    def dsn(self, database: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"
