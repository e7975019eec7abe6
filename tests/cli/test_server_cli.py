"""`vinesctl server init|start|stop|status` and `vinesctl user ...` in local mode."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from vines_server.config import load
from vines_server.storage import open_storage
from vines_server.xmpp.sasl.credentials import check_password

from vinesctl.profiles import ProfileStore


def in_store(config: Path, action):
    """Awaits action(storage) on the config's store, opened for it and closed after."""

    async def run():
        storage = open_storage(load(config).storage)
        await storage.open()
        try:
            return await action(storage)
        finally:
            await storage.close()

    return asyncio.run(run())


def accounts(config: Path) -> dict:
    async def read(storage):
        return {jid: await storage.get_account(jid) for jid in await storage.list_accounts()}

    return in_store(config, read)


def password_ok(config: Path, jid: str, password: str) -> bool:
    account = accounts(config)[jid]
    return all(check_password(password, keys) for keys in account.credentials.values())


@pytest.fixture
def server_dir(run_cli, tmp_path) -> Path:
    directory = tmp_path / "srv"
    r = run_cli("server", "init", "--dir", str(directory), "--port", "0", "--direct-tls-port", "0")
    assert r.exit_code == 0, r.stderr
    return directory


# --- init ------------------------------------------------------------------------------------


def test_init_writes_everything(run_cli, config_home, tmp_path):
    directory = tmp_path / "srv"
    r = run_cli("server", "init", "--dir", str(directory), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    config = directory / "vines.toml"
    assert data["config"] == str(config) and data["admin"] == "admin@localhost"

    cfg = load(config)  # the server's own loader accepts it
    assert list(cfg.domains) == ["localhost"]
    assert cfg.admins == ("admin@localhost",)
    assert (cfg.listeners.c2s_port, cfg.listeners.c2s_direct_tls_port) == (5222, 5223)
    assert cfg.storage.backend == "sqlite" and cfg.storage.path == directory / "vines.sqlite"
    assert cfg.domains["localhost"].certificate == directory / "localhost.crt"
    assert stat.S_IMODE((directory / "localhost.key").stat().st_mode) == 0o600
    text = config.read_text()
    for section in ("[server]", "[listeners]", "[storage]", "[limits]", "[deadlines]"):
        assert section in text
    assert "[federation]\n" in text and "allow = []" in text

    store = ProfileStore.load()
    profile = store.get(None)  # the default profile
    assert (profile.name, profile.jid, profile.server) == (
        "localhost", "admin@localhost", "127.0.0.1:5222",
    )  # fmt: skip
    assert profile.ca == str(directory / "localhost.crt")
    assert profile.config == str(config)
    # a random password, kept only in the profile: never printed
    assert profile.password and len(profile.password) >= 20
    assert profile.password not in r.stdout + r.stderr
    assert password_ok(config, "admin@localhost", profile.password)


def test_init_default_dir_and_password_from_env(run_cli, config_home, tmp_path):
    r = run_cli(
        "server", "init", "--domain", "Example.ORG", "--admin", "boss@example.org",
        env={"VINESCTL_NEW_PASSWORD": "chosen-pw"},
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    config = tmp_path / "xdg-data" / "vinesctl" / "example.org" / "vines.toml"
    assert config.is_file()
    assert "chosen-pw" not in r.stdout
    assert password_ok(config, "boss@example.org", "chosen-pw")
    assert ProfileStore.load().get("example.org").password == "chosen-pw"


def test_init_refuses_to_overwrite(run_cli, server_dir):
    before = (server_dir / "vines.toml").read_text()
    r = run_cli("server", "init", "--dir", str(server_dir))
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "exists" in r.stderr and "--force" in r.stderr
    assert (server_dir / "vines.toml").read_text() == before


def test_init_force_keeps_certificate_and_resets_admin(run_cli, server_dir):
    cert = (server_dir / "localhost.crt").read_bytes()
    r = run_cli(
        "server", "init", "--dir", str(server_dir), "--force", "--password-file", "-",
        input="new-admin-pw\n",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert (server_dir / "localhost.crt").read_bytes() == cert
    assert password_ok(server_dir / "vines.toml", "admin@localhost", "new-admin-pw")


def test_second_server_gets_its_own_profile(run_cli, server_dir, tmp_path):
    r = run_cli("server", "init", "--dir", str(tmp_path / "other"))
    assert r.exit_code == 2 and "profile 'localhost' exists" in r.stderr
    r = run_cli("server", "init", "--dir", str(tmp_path / "other"), "--profile-name", "other")
    assert r.exit_code == 0, r.stderr
    store = ProfileStore.load()
    assert store.default == "localhost" and store.names() == ["localhost", "other"]


@pytest.mark.parametrize(
    "args",
    [
        ("--domain", "bad domain"),
        ("--admin", "admin@elsewhere.example"),
        ("--port", "5000", "--direct-tls-port", "5000"),
        ("--password-file", "/nonexistent/pw"),
    ],
)
def test_init_usage_errors(run_cli, tmp_path, args):
    r = run_cli("server", "init", "--dir", str(tmp_path / "srv"), *args)
    assert r.exit_code == 2, r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("vinesctl: ")
    assert not (tmp_path / "srv" / "vines.toml").exists()


# --- config errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "start"])
def test_config_errors_are_one_line(run_cli, tmp_path, command):
    config = tmp_path / "vines.toml"
    config.write_text("[listeners]\nc2s_port = 'x'\n[domains.localhost]\n")
    r = run_cli("server", command, "--config", str(config))
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = run_cli("server", command, "--config", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2 and "vinesctl server init" in r.stderr


def test_server_commands_need_a_config(run_cli):
    r = run_cli("server", "status")
    assert r.exit_code == 2
    assert "--config" in r.stderr and r.stderr.count("\n") == 1


def test_status_of_stopped_server(run_cli, server_dir):
    r = run_cli("server", "status")
    assert r.exit_code == 1
    assert "not running" in r.stderr and "vinesctl server start" in r.stderr
    r = run_cli("server", "status", "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["running"] is False and data["domains"] == ["localhost"]


def test_stale_pid_file_is_not_a_running_server(run_cli, server_dir):
    # a pid that is certainly not a vines-server: a finished child of ours
    done = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert done.returncode == 0
    (server_dir / "vines.pid").write_text("999999999\n")
    r = run_cli("server", "status", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["running"] is False
    r = run_cli("server", "stop")
    assert r.exit_code == 0 and "stale" in r.stdout
    assert not (server_dir / "vines.pid").exists()


def test_pid_of_another_program_is_never_signalled(run_cli, server_dir):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (server_dir / "vines.pid").write_text(f"{sleeper.pid}\n")
        r = run_cli("server", "stop")
        assert r.exit_code == 0 and "not running" in r.stdout
        assert sleeper.poll() is None  # still alive
    finally:
        sleeper.kill()
        sleeper.wait()


# --- user (local mode) -----------------------------------------------------------------------


def test_user_local_lifecycle(run_cli, server_dir):
    config = str(server_dir / "vines.toml")
    r = run_cli("user", "add", "alice", "--config", config, env={"VINESCTL_NEW_PASSWORD": "pw1"})
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "created alice@localhost\n"
    r = run_cli("user", "add", "Bob@LocalHost", "--config", config, "--password-file", "-",
                input="pw2\n")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert password_ok(server_dir / "vines.toml", "alice@localhost", "pw1")
    assert password_ok(server_dir / "vines.toml", "bob@localhost", "pw2")

    r = run_cli("user", "list", "--config", config, "--json")
    assert r.exit_code == 0
    users = json.loads(r.stdout)["accounts"]
    assert [u["jid"] for u in users] == ["admin@localhost", "alice@localhost", "bob@localhost"]
    assert users[1]["disabled"] is False and users[1]["created"]
    r = run_cli("user", "list", "--config", config)
    assert "alice@localhost" in r.stdout

    r = run_cli("user", "passwd", "alice@localhost", "--config", config,
                env={"VINESCTL_NEW_PASSWORD": "pw3"})  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert password_ok(server_dir / "vines.toml", "alice@localhost", "pw3")
    assert not password_ok(server_dir / "vines.toml", "alice@localhost", "pw1")

    r = run_cli("user", "delete", "alice", "--config", config)
    assert r.exit_code == 0 and r.stdout == "deleted alice@localhost\n"
    assert "alice@localhost" not in accounts(server_dir / "vines.toml")


def test_user_local_errors(run_cli, server_dir):
    config = str(server_dir / "vines.toml")
    env = {"VINESCTL_NEW_PASSWORD": "pw"}
    cases = [
        # without --config: remote mode, through the profile's bundled server (not running)
        (("user", "list"), 1, "vinesctl server start"),
        (("user", "add", "alice"), 1, "is not running"),
        (("user", "add", "alice", "--config", config), 2, "no terminal"),  # no password source
        (("user", "add", "x@elsewhere.example", "--config", config), 2, "not hosted"),
        (("user", "add", "admin", "--config", config), 1, "already exists"),
        (("user", "passwd", "ghost", "--config", config), 1, "no account ghost@localhost"),
        (("user", "delete", "ghost", "--config", config), 1, "no account ghost@localhost"),
        (("user", "list", "--config", config, "--domain", "nope.example"), 2, "not hosted"),
    ]
    for args, code, text in cases:
        r = run_cli(*args, env=None if "no terminal" in text else env)
        assert r.exit_code == code, (args, r.stderr)
        assert text in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_passwords_never_in_argv(run_cli, server_dir):
    r = run_cli(
        "user", "add", "alice", "--password", "x", "--config", str(server_dir / "vines.toml")
    )
    assert r.exit_code == 2  # no such option


# --- start / status / stop, for real ---------------------------------------------------------


def _has_server_main() -> bool:
    import importlib.util

    return importlib.util.find_spec("vines_server.main") is not None


def vinesctl(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from vinesctl.cli import main; main()", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.skipif(not _has_server_main(), reason="vines_server.main is not written yet")
def test_detached_server_start_status_stop(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    directory = tmp_path / "srv"
    config = directory / "vines.toml"
    r = vinesctl(
        "server", "init", "--dir", str(directory), "--port", "0", "--direct-tls-port", "0", env=env
    )
    assert r.returncode == 0, r.stderr

    r = vinesctl("server", "start", env=env)
    pid = None
    try:
        assert r.returncode == 0, r.stderr + _log(directory)
        r = vinesctl("server", "status", "--json", env=env)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        pid = status["pid"]
        assert status["running"] is True and status["domains"] == ["localhost"]
        assert status["uptime"] is not None and status["uptime"] >= 0
        assert (directory / "vines.pid").read_text().strip() == str(pid)
        kinds = {x["kind"]: x for x in status["listeners"]}
        assert set(kinds) == {"c2s-starttls", "c2s-direct-tls"}
        for listener in kinds.values():
            assert listener["port"] > 0
            with socket.create_connection((listener["host"], listener["port"]), timeout=5):
                pass
        # the server detached into its own session: it is not in our process group
        assert os.getsid(pid) != os.getsid(0)

        r = vinesctl("server", "start", "--config", str(config), env=env)  # already running
        assert r.returncode == 0 and "already running" in r.stdout

        r = vinesctl("server", "stop", env=env)
        assert r.returncode == 0, r.stderr
        assert f"stopped (pid {pid})" in r.stdout
        pid = None
        assert not (directory / "vines.pid").exists()
        assert not (directory / "vines.state.json").exists()
        r = vinesctl("server", "status", env=env)
        assert r.returncode == 1 and "not running" in r.stderr
    finally:
        if pid is not None:  # leave nothing behind when an assertion failed
            vinesctl("server", "stop", "--config", str(config), env=env)


@pytest.mark.skipif(not _has_server_main(), reason="vines_server.main is not written yet")
def test_start_reports_why_the_server_died(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    directory = tmp_path / "srv"
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        r = vinesctl(
            "server", "init", "--dir", str(directory), "--port", str(port),
            "--direct-tls-port", "0", env=env,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        started = time.monotonic()
        r = vinesctl("server", "start", "--config", str(directory / "vines.toml"), env=env)
        assert r.returncode != 0
        assert r.stderr.startswith("vinesctl: vines-server exited with status")
        assert r.stderr.count("\n") == 1, r.stderr
        assert time.monotonic() - started < 30
    finally:
        busy.close()


def _log(directory: Path) -> str:
    try:
        return "\nlog:\n" + (directory / "vines.log").read_text()[-3000:]
    except OSError:
        return ""


def test_generated_config_parses_with_tomllib(server_dir):
    raw = tomllib.loads((server_dir / "vines.toml").read_text())
    assert raw["listeners"]["c2s_port"] == 0 and raw["federation"]["allow"] == []


# --- prompts on a real terminal ---------------------------------------------------------------


def run_on_terminal(args: list[str], answers: list[str], env: dict) -> tuple[int, str]:
    """Runs vinesctl with a pseudo-terminal as its controlling terminal, typing each answer
    after the next prompt appears. Returns (exit code, everything shown on the terminal)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execve(
                sys.executable,
                [sys.executable, "-c", "from vinesctl.cli import main; main()", *args],
                env,
            )
        finally:
            os._exit(127)
    shown = b""
    answered = 0  # where the output stood when we last typed: answer only a new prompt
    pending = list(answers)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            fresh = shown[answered:].strip().splitlines()
            if pending and fresh and fresh[-1].endswith(b":") and b"Error" not in fresh[-1]:
                answered = len(shown)
                os.write(fd, pending.pop(0).encode() + b"\n")
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_new_password_prompt_asks_twice_and_hides_input(tmp_path, config_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VINESCTL_")}
    directory = tmp_path / "srv"
    r = vinesctl("server", "init", "--dir", str(directory), env=env)
    assert r.returncode == 0, r.stderr
    config = str(directory / "vines.toml")

    code, shown = run_on_terminal(
        ["user", "add", "alice", "--config", config], ["typed-pw", "typed-pw"], env
    )
    assert code == 0, shown
    assert "Password for alice@localhost" in shown and "Repeat for confirmation" in shown
    assert "typed-pw" not in shown  # never echoed
    assert password_ok(directory / "vines.toml", "alice@localhost", "typed-pw")

    # a mismatch asks again
    code, shown = run_on_terminal(
        ["user", "passwd", "alice", "--config", config], ["one", "two", "three", "three"], env
    )
    assert code == 0, shown
    assert password_ok(directory / "vines.toml", "alice@localhost", "three")


def test_localpart_takes_the_profiles_domain_when_hosted(run_cli, tmp_path):
    config = tmp_path / "vines.toml"
    config.write_text(
        '[domains."a.example"]\ncertificate = "a.crt"\nkey = "a.key"\n'
        '[domains."b.example"]\ncertificate = "b.crt"\nkey = "b.key"\n'
    )
    env = {"VINESCTL_NEW_PASSWORD": "pw"}
    r = run_cli("user", "add", "carol", "--config", str(config), env=env)
    assert r.stdout == "created carol@a.example\n", r.stderr  # no profile: the first domain
    run_cli("profile", "add", "b", "--jid", "admin@b.example")
    r = run_cli("user", "add", "carol", "--config", str(config), env=env)
    assert r.stdout == "created carol@b.example\n", r.stderr
    run_cli("profile", "add", "c", "--jid", "admin@c.example", "--default")
    r = run_cli("user", "add", "dave", "--config", str(config), env=env)
    assert r.stdout == "created dave@a.example\n", r.stderr  # c.example is not hosted
    r = run_cli("user", "list", "--config", str(config), "--domain", "B.example", "--json")
    assert [u["jid"] for u in json.loads(r.stdout)["accounts"]] == ["carol@b.example"]


def test_init_bind_all_points_the_profile_at_loopback(run_cli, tmp_path):
    r = run_cli("server", "init", "--dir", str(tmp_path / "s"), "--bind", "0.0.0.0",
                "--c2s-port", "15222", "--c2s-tls-port", "15223")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert load(tmp_path / "s" / "vines.toml").listeners.bind == ("0.0.0.0",)
    assert ProfileStore.load().get("localhost").server == "127.0.0.1:15222"


def test_user_add_local_gets_the_welcome_message(run_cli, server_dir):
    """An account created on the store gets the domain's welcome message, as add-user over
    XMPP does: a normal message from the domain, waiting offline for the first login."""
    from xml.etree import ElementTree as ET

    from vines_server.core.admins import KEYS

    config = server_dir / "vines.toml"
    welcome = json.dumps({"localhost": "welcome aboard"})
    in_store(config, lambda s: s.set_setting(KEYS["welcome"], welcome))
    r = run_cli("user", "add", "newbie", "--config", str(config),
                env={"VINESCTL_NEW_PASSWORD": "pw"})  # fmt: skip
    assert r.exit_code == 0, r.stderr
    (stored,) = in_store(config, lambda s: s.pop_offline("newbie@localhost"))
    msg = ET.fromstring(stored.xml)
    assert msg.get("to") == "newbie@localhost" and msg.get("from") == "localhost"
    assert msg.findtext("body") == "welcome aboard"  # stored as the router stores it
    # no welcome set: nothing stored
    in_store(config, lambda s: s.set_setting(KEYS["welcome"], None))
    r = run_cli("user", "add", "later", "--config", str(config), env={"VINESCTL_NEW_PASSWORD": "p"})
    assert r.exit_code == 0, r.stderr
    assert in_store(config, lambda s: s.count_offline("later@localhost")) == 0
