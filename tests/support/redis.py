"""A throw-away redis-server for tests: Debian's binary on 127.0.0.1 and an ephemeral port, its
working directory a temporary one, no persistence (the cluster keeps nothing in Redis it cannot
rebuild), a password (`requirepass`) so the cluster's secret handling is what the tests exercise.
`stop()` and `start()` again on the same port simulate a Redis outage and its return."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

PASSWORD = "redis-secret-Hq3vT"  # a test secret: the no-leak tests look for it in every output


def redis_unavailable() -> str | None:
    """Why a throw-away Redis cannot start here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server (Debian package redis-server) is not installed"
    return None


@dataclass
class RedisInstance:
    root: Path
    port: int
    password: str = PASSWORD
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create(cls) -> RedisInstance:
        instance = cls(Path(tempfile.mkdtemp(prefix="vines-redis-")), free_port())
        instance.password_file.write_text(PASSWORD + "\n")
        instance.password_file.chmod(0o600)
        instance.start()
        return instance

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def url(self) -> str:
        """The URL without its password (as a config holds it: the password lives in a file)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        config = self.root / "redis.conf"
        config.write_text(
            f'port {self.port}\nbind 127.0.0.1\ndir {self.root}\nsave ""\nappendonly no\n'
            f"requirepass {self.password}\nlogfile {self.root / 'redis.log'}\n"
        )
        self.process = subprocess.Popen(
            ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited; see {self.root / 'redis.log'}"
                    ) from None
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start listening within 10 s")

    def stop(self) -> None:
        """Kill it (SIGKILL: an outage, not a clean shutdown); `start()` brings it back."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
