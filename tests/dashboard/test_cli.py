"""`vinesctl load`, `vinesctl presence` and `vinesctl presence --watch --json` as a user runs
them: a subprocess against a live bundled server (which runs in the test's own loop)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from tests.dashboard.conftest import until
from tests.support.xmpp import DOMAIN, PASSWORD, disconnect, slixmpp_client

CLI = [sys.executable, "-c", "from vinesctl.cli import main; main()"]


def env_for(tmp_path, user: str = "admin") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        VINESCTL_JID=f"{user}@{DOMAIN}",
        VINESCTL_PASSWORD=PASSWORD,
    )
    return env


def connect_args(harness) -> list[str]:
    return ["--server", f"127.0.0.1:{harness.port()}", "--ca", str(harness.pki.ca_file)]


async def run(harness, tmp_path, *args: str, user: str = "admin", timeout: float = 30):
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        *connect_args(harness),
        env=env_for(tmp_path, user),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_load_json(live, tmp_path):
    alice = await slixmpp_client(live, f"alice@{DOMAIN}/phone")
    try:
        code, out, err = await run(live, tmp_path, "load", "--json")
    finally:
        await disconnect(alice)
    assert code == 0, err
    assert err == ""  # nothing on stderr: no spinner with --json, no asyncio leftovers
    load = json.loads(out)
    assert load["online"] == 2  # alice and the command's own session
    assert load["users"] == 2
    assert load["capacity"] == 10_000
    assert load["memory_kib"] > 0
    assert load["listeners"]["c2s"] >= 2
    assert set(load) >= {"stanzas_in", "stanzas_out", "cpu", "uptime"}


async def test_load_human_and_refused_to_non_admins(live, tmp_path):
    code, out, err = await run(live, tmp_path, "load")
    assert code == 0, err
    assert "online" in out and "memory" in out and "listener" in out
    code, out, err = await run(live, tmp_path, "load", user="alice")
    assert code == 1
    assert err.strip().splitlines() == [
        "vinesctl: vines.test shows its load to administrators only: "
        "use a profile whose account is an admin of the server"
    ]
    assert "Traceback" not in err


async def test_presence_once_json(live, tmp_path):
    alice = await slixmpp_client(live, f"alice@{DOMAIN}/phone")
    alice.send_presence(pshow="away", pstatus="lunch")
    try:
        await asyncio.sleep(0.2)
        code, out, err = await run(live, tmp_path, "presence", "--json")
    finally:
        await disconnect(alice)
    assert code == 0, err
    sessions = {s["jid"]: s for s in json.loads(out)["sessions"]}
    assert sessions[f"alice@{DOMAIN}/phone"]["show"] == "away"
    assert sessions[f"alice@{DOMAIN}/phone"]["status"] == "lunch"
    assert any(j.startswith(f"admin@{DOMAIN}/") for j in sessions)


async def test_presence_refused_to_non_admins(live, tmp_path):
    code, _out, err = await run(live, tmp_path, "presence", user="alice")
    assert code == 1
    assert "administrators only" in err and "Traceback" not in err


async def test_presence_watch_json_lines(live, tmp_path):
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "presence",
        "--watch",
        "--json",
        *connect_args(live),
        env=env_for(tmp_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    events: list[dict] = []

    async def read() -> None:
        while line := await proc.stdout.readline():
            events.append(json.loads(line))

    reader = asyncio.ensure_future(read())
    try:
        await until(lambda: any(e["jid"].startswith("admin@") for e in events), 20, "snapshot")
        assert events[0]["phase"] == "snapshot" and events[0]["event"] == "online"
        alice = await slixmpp_client(live, f"alice@{DOMAIN}/phone")
        jid = f"alice@{DOMAIN}/phone"
        await until(lambda: any(e["jid"] == jid for e in events), 5, "alice online")
        alice.send_presence(pshow="dnd", pstatus="busy")
        await until(lambda: any(e["event"] == "changed" for e in events), 5, "alice dnd")
        await disconnect(alice)
        await until(lambda: events[-1]["event"] == "offline", 5, "alice offline")
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 10)
        await reader
    mine = [e for e in events if e["jid"] == jid]
    assert [e["event"] for e in mine] == ["online", "changed", "offline"]
    assert all(e["phase"] == "delta" for e in mine)
    assert mine[1]["show"] == "dnd" and mine[1]["status"] == "busy"
    assert mine[0]["time"].endswith("Z")
    assert code == 0
    err = (await proc.stderr.read()).decode()
    assert "live: presence feed of vines.test" in err


async def test_admin_commands_leave_nothing_on_stderr(live, tmp_path):
    """A command over XMPP prints its result and nothing else: slixmpp's tasks end in the loop
    (a task collected while pending prints 'Task was destroyed but it is pending!')."""
    code, out, err = await run(live, tmp_path, "online", "--json")
    assert code == 0, err
    assert f"admin@{DOMAIN}" in out
    assert err == ""


async def test_presence_watch_says_each_disconnect_once(tmp_path, pki):
    from tests.support.ports import free_port
    from tests.support.xmpp import running_server

    port = free_port()
    listeners = {"c2s_port": port, "c2s_direct_tls_port": 0}
    server = running_server(tmp_path / "a", pki, listeners=listeners)
    (tmp_path / "a").mkdir()
    harness = await server.__aenter__()
    await harness.add_user("admin")
    proc = await asyncio.create_subprocess_exec(
        *CLI, "presence", "--watch", *connect_args(harness),
        env=env_for(tmp_path), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []

    async def read() -> None:
        while line := await proc.stderr.readline():
            lines.append(line.decode())

    reader = asyncio.ensure_future(read())
    try:
        await until(lambda: any("live:" in line for line in lines), 20, "live")
        before = len(lines)  # what a loaded machine may have said before (a ping timeout)
        await server.__aexit__(None, None, None)
        # after the disconnect and its backoff, the next attempt: all about the loss is said
        await until(lambda: any("reconnecting to" in x for x in lines[before:]), 10, "retry")
        retry = next(i for i, x in enumerate(lines) if i >= before and "reconnecting to" in x)
        said = lines[before:retry]
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
        await reader
    assert len([line for line in said if "disconnected" in line]) == 1, lines


def test_dashboard_refuses_a_stdout_that_is_not_a_terminal(run_cli):
    r = run_cli("dashboard", "--server", "127.0.0.1:1")  # CliRunner: stdout is not a tty
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "needs a terminal" in r.stderr
    assert "presence --watch --json" in r.stderr
