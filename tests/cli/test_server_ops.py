"""Day-two operations on a real detached server: `server logs` (tail, level filter, follow
across logrotate) and `server install-service` (a unit systemd-analyze accepts)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cli.test_server_cli import vinesctl


def _pid(config: Path) -> int:
    return int(config.with_name("vines.pid").read_text())


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_logs_tail_and_level(running_bundled, cli_env):
    config = running_bundled
    log = config.with_name("vines.log")
    r = vinesctl("server", "logs", "--config", str(running_bundled), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["log"] == str(log)
    assert any("serving localhost" in rec["text"] for rec in data["records"])
    assert all(rec["level"] == "info" for rec in data["records"])
    # exactly once: a detached server's stderr is its log file, never written twice
    assert log.read_text().count("serving localhost") == 1

    # a broken vines.toml on SIGHUP is an ERROR record
    running_bundled.write_text(running_bundled.read_text() + "\n[limits]\nbogus = 1\n")
    os.kill(_pid(running_bundled), signal.SIGHUP)
    wait_until(lambda: "was not reloaded" in log.read_text())
    r = vinesctl("server", "logs", "--config", str(config), "--level", "error", env=cli_env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and " ERROR " in lines[0] and "was not reloaded" in lines[0]
    r = vinesctl("server", "logs", "--config", str(running_bundled), "-n", "1", env=cli_env)
    assert r.stdout.splitlines() == lines  # the last record, whatever its level


def _reader(proc: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_matching(lines: queue.Queue, text: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if text in line:
            return line


def test_logs_follow_across_logrotate(running_bundled, cli_env):
    log = running_bundled.with_name("vines.log")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vinesctl.cli import main; main()",
         "server", "logs", "-f", "-n", "0", "--config", str(running_bundled)],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        lines = _reader(proc)
        wait_until(lambda: proc.poll() is None and _opened_by(proc.pid, log))
        os.kill(_pid(running_bundled), signal.SIGHUP)
        _next_matching(lines, "configuration reloaded")
        # logrotate (create mode): move the file away, then HUP so the server opens a new one
        log.rename(log.with_name("vines.log.1"))
        os.kill(_pid(running_bundled), signal.SIGHUP)
        line = _next_matching(lines, "SIGHUP: log file reopened")
        assert "SIGHUP" in log.read_text()  # that line came from the new file
        assert line in log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)


def _opened_by(pid: int, path: Path) -> bool:
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False


def test_logs_without_a_log_file(tmp_path, cli_env):
    config = tmp_path / "srv" / "vines.toml"
    r = vinesctl("server", "init", "--dir", str(config.parent), env=cli_env)
    assert r.returncode == 0, r.stderr
    r = vinesctl("server", "logs", "--config", str(config), env=cli_env)
    assert r.returncode == 1
    assert r.stderr.startswith("vinesctl: no log file") and r.stderr.count("\n") == 1


@pytest.mark.parametrize("user_unit", [False, True])
def test_install_service_writes_a_unit(tmp_path, cli_env, user_unit):
    directory = tmp_path / "srv"
    r = vinesctl("server", "init", "--dir", str(directory), env=cli_env)
    assert r.returncode == 0, r.stderr
    config = directory / "vines.toml"
    unit_path = tmp_path / "units" / "vines-localhost.service"
    args = ["server", "install-service", "--config", str(config), "--output", str(unit_path)]
    r = vinesctl(*args, *(["--user"] if user_unit else []), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["written"] is True and data["path"] == str(unit_path)
    text = unit_path.read_text()
    assert text == data["unit"]
    settings = [line for line in text.splitlines() if "=" in line and not line.startswith("#")]
    keys = dict(line.split("=", 1) for line in settings)
    assert keys["Type"] == "notify"
    assert keys["ExecStart"].endswith(f"-m vines_server --config {config}")
    assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert keys["NoNewPrivileges"] == "yes"
    if user_unit:  # the filesystem sandbox needs privileges a user manager may not have
        assert not {"ProtectSystem", "PrivateTmp", "ReadWritePaths", "User"} & set(keys)
        assert keys["WantedBy"] == "default.target"
    else:
        assert keys["ProtectSystem"] == "strict" and keys["ProtectHome"] == "read-only"
        # a private /tmp would hide a config kept under /tmp (as pytest's tmp_path is)
        in_tmp = directory.is_relative_to("/tmp") or directory.is_relative_to("/var/tmp")
        assert keys.get("PrivateTmp") == (None if in_tmp else "yes")
        assert keys["ReadWritePaths"] == str(directory)  # store, pid, state and log live there
    _verify(unit_path, user_unit)

    # --dry-run prints the same unit and writes nothing
    unit_path.unlink()
    r = vinesctl(*args, *(["--user"] if user_unit else []), "--dry-run", env=cli_env)
    assert r.returncode == 0 and r.stdout == text and not unit_path.exists()


def _verify(unit: Path, user_unit: bool) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit was checked by its keys only")
    runtime = unit.parent / "runtime"  # a user manager needs XDG_RUNTIME_DIR
    runtime.mkdir(mode=0o700, exist_ok=True)
    r = subprocess.run(
        [analyze, *(["--user"] if user_unit else []), "verify", str(unit)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )  # fmt: skip
    # an unknown or misspelt key is a warning naming the unit's file, with exit status 0
    own = [line for line in r.stderr.splitlines() if str(unit) in line]
    assert r.returncode == 0 and not own, r.stderr
