"""sd_notify to a real Unix datagram socket: the protocol unit by unit, then a real server
process under NOTIFY_SOCKET reporting READY, RELOADING/READY on SIGHUP and STOPPING on SIGTERM,
and writing its log file beside vines.toml (and the same lines to stderr)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import pytest
from vines_server import notify

from tests.server.test_admin_process import write_config


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(20)
    return sock


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_notify_path_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with _receiver(path) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert notify.ready("serving a.test")
        assert _fields(sock.recv(4096)) == {"READY": "1", "STATUS": "serving a.test"}
        assert notify.reloading()
        fields = _fields(sock.recv(4096))
        assert fields["RELOADING"] == "1" and int(fields["MONOTONIC_USEC"]) > 0
        assert notify.stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_notify_abstract_socket(monkeypatch):
    name = f"vines-notify-test-{os.getpid()}"
    with _receiver(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify.ready()
        assert sock.recv(4096) == b"READY=1"


def test_notify_without_systemd_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify.stopping() is False  # never fatal
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    assert notify.notify_address(os.environ["NOTIFY_SOCKET"]) is None


@pytest.mark.parametrize("abstract", [False, True])
async def test_server_reports_ready_reloading_stopping(tmp_path, pki, abstract):
    config = write_config(tmp_path, pki)
    if abstract:
        name = f"vines-notify-{os.getpid()}-{id(tmp_path)}"
        address, env_value = b"\0" + name.encode(), "@" + name
    else:
        address = env_value = str(tmp_path / "notify")
    sock = _receiver(address)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def next_message() -> dict[str, str]:
        return _fields(await asyncio.wait_for(loop.sock_recv(sock, 4096), 30))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vines_server", "--config", str(config),
        env={**os.environ, "NOTIFY_SOCKET": env_value},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        ready = await next_message()
        assert ready["READY"] == "1"
        # ready means listening: the state file with the bound port is already there
        assert (tmp_path / "vines.state.json").exists()

        proc.send_signal(signal.SIGHUP)
        reloading = await next_message()
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        assert (await next_message())["READY"] == "1"

        proc.send_signal(signal.SIGTERM)
        assert await next_message() == {"STOPPING": "1"}
        stderr = (await asyncio.wait_for(proc.communicate(), 30))[1].decode()
        assert proc.returncode == 0
    finally:
        sock.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the log file beside vines.toml, and the same lines on stderr (the journal under systemd)
    log = (tmp_path / "vines.log").read_text()
    assert "SIGHUP: log file reopened" in log
    assert log.splitlines() == stderr.splitlines()
