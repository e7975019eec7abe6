"""Profiles (`vinesctl profile ...`), connection settings and new-password sources."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import click
import pytest

from vinesctl.connection import ConnectionSettings, connect_options, settings_from
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.profiles import Profile, ProfileStore, config_path, parse_server
from vinesctl.secrets import new_password


def profiles_file(config_home: Path) -> Path:
    return config_home / "vinesctl" / "config.toml"


def test_config_path_follows_xdg(config_home):
    assert config_path() == profiles_file(config_home)


def test_add_writes_0600_file_in_0700_dir(run_cli, config_home, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\nignored second line\n")
    r = run_cli(
        "profile", "add", "work", "--jid", "Admin@Example.COM", "--server", "xmpp.example.com:5222",
        "--password-file", str(pw),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    path = profiles_file(config_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = tomllib.loads(path.read_text())
    assert data["default"] == "work"
    assert data["profiles"]["work"] == {
        "jid": "admin@example.com",
        "server": "xmpp.example.com:5222",
        "password": "s3cret",
    }


def test_password_from_stdin_and_never_shown(run_cli):
    r = run_cli("profile", "add", "p", "--jid", "a@b.c", "--password-file", "-", input="hunter2\n")
    assert r.exit_code == 0, r.stderr
    for args in (("profile", "show", "p"), ("profile", "show", "p", "--json"), ("profile", "list")):
        r = run_cli(*args)
        assert r.exit_code == 0
        assert "hunter2" not in r.stdout + r.stderr
    shown = json.loads(run_cli("profile", "show", "--json").stdout)
    assert shown["password"] == "set"
    listed = json.loads(run_cli("profile", "list", "--json").stdout)["profiles"]
    assert [(p["name"], p["password"], p["default"]) for p in listed] == [("p", "set", True)]


def test_list_use_remove(run_cli):
    assert run_cli("profile", "list").stdout.startswith("no profiles")
    assert run_cli("profile", "add", "one", "--jid", "a@one.example").exit_code == 0
    assert run_cli("profile", "add", "two", "--jid", "b@two.example").exit_code == 0
    assert json.loads(run_cli("profile", "show", "--json").stdout)["name"] == "one"

    assert run_cli("profile", "use", "two").exit_code == 0
    assert json.loads(run_cli("profile", "show", "--json").stdout)["name"] == "two"
    assert json.loads(run_cli("--profile", "one", "profile", "show", "--json").stdout)["jid"] == (
        "a@one.example"
    )
    r = run_cli("profile", "show", "--json", env={"VINESCTL_PROFILE": "one"})
    assert json.loads(r.stdout)["name"] == "one"

    assert run_cli("profile", "remove", "two").exit_code == 0
    listed = json.loads(run_cli("profile", "list", "--json").stdout)["profiles"]
    assert [(p["name"], p["default"]) for p in listed] == [("one", True)]


def test_errors_are_one_line_usage_errors(run_cli):
    r = run_cli("profile", "show")
    assert r.exit_code == 2
    assert r.stderr == (
        "vinesctl: no profile: run 'vinesctl server init' or 'vinesctl profile add'\n"
    )
    run_cli("profile", "add", "one", "--jid", "a@one.example")
    for args in (
        ("profile", "use", "nope"),
        ("profile", "remove", "nope"),
        ("profile", "add", "one", "--jid", "x@y.z"),  # exists
        ("profile", "add", "bad", "--jid", "not-a-jid"),
        ("profile", "add", "bad", "--jid", "a@b.c", "--server", "h:notaport"),
        ("profile", "add", "bad", "--jid", "a@b.c", "--ca", "/does/not/exist.pem"),
        ("--profile", "nope", "profile", "show"),
    ):
        r = run_cli(*args)
        assert r.exit_code == 2, args
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("vinesctl: "), r.stderr
        assert "Traceback" not in r.stderr


def test_broken_file_is_one_line_failure(run_cli, config_home):
    profiles_file(config_home).parent.mkdir(parents=True)
    profiles_file(config_home).write_text("this is [not toml")
    r = run_cli("profile", "list")
    assert r.exit_code == 1
    assert "is not valid TOML" in r.stderr and "fix or remove" in r.stderr


def test_store_api(config_home):
    store = ProfileStore.load()
    with pytest.raises(UsageError, match="no profile"):
        store.get(None)
    store.add(Profile("a", "a@x.example", config="/srv/vines.toml"))
    store.add(Profile("b", "b@y.example", password="pw"), make_default=True)
    store.save()
    again = ProfileStore.load()
    assert again.default == "b"
    assert again.get(None).password == "pw"
    assert again.get("a").config == "/srv/vines.toml"
    assert again.get("a").domain == "x.example"
    again.remove("b")
    assert again.get(None).name == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5222", ("127.0.0.1", 5222)),
        ("example.com", ("example.com", 5222)),
        ("[::1]:5223", ("::1", 5223)),
        ("::1", ("::1", 5222)),
    ],
)
def test_parse_server(text, expected):
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["", ":5222", "host:0", "host:70000", "[::1", "host:x"])
def test_parse_server_rejects(text):
    with pytest.raises(UsageError):
        parse_server(text)


# --- connection settings -----------------------------------------------------------------------


def _settings(args: list[str], input: str | None = None) -> ConnectionSettings:
    """Runs a throwaway command decorated with connect_options and returns its settings."""
    captured: list[ConnectionSettings] = []

    @click.command()
    @connect_options
    @click.pass_context
    def probe(ctx, server, ca, insecure):
        captured.append(settings_from(ctx, server, ca, insecure))

    probe.main(args=args, standalone_mode=False, obj={})
    return captured[0]


def test_settings_from_profile_and_overrides(config_home, tmp_path, monkeypatch, capsys):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    store = ProfileStore.load()
    store.add(Profile("p", "admin@example.com", "10.0.0.1:5222", str(ca), password="pw"))
    store.save()

    s = _settings([])
    assert (s.jid, s.password, s.host, s.port, s.ca, s.insecure) == (
        "admin@example.com", "pw", "10.0.0.1", 5222, str(ca), False,
    )  # fmt: skip
    assert "pw" not in repr(s)

    monkeypatch.setenv("VINESCTL_PASSWORD", "from-env")
    s = _settings(["--server", "[::1]:5999", "--insecure"])
    assert (s.password, s.host, s.port, s.insecure, s.address) == (
        "from-env", "::1", 5999, True, "[::1]:5999",
    )  # fmt: skip
    assert "NOT verified" in capsys.readouterr().err

    with pytest.raises(UsageError, match="CA file"):
        _settings(["--ca", str(tmp_path / "missing.pem")])


def test_settings_password_command_and_no_terminal(config_home, monkeypatch):
    store = ProfileStore.load()
    store.add(Profile("cmd", "a@example.com", password_command="echo from-command"))
    store.add(Profile("fails", "a@example.com", password_command="exit 3"))
    store.add(Profile("none", "a@example.com"))
    store.save()
    monkeypatch.setenv("VINESCTL_PROFILE", "cmd")
    assert _settings([]).password == "from-command"
    monkeypatch.setenv("VINESCTL_PROFILE", "fails")
    with pytest.raises(VinesctlError, match="status 3"):
        _settings([])
    monkeypatch.setenv("VINESCTL_PROFILE", "none")
    with pytest.raises(UsageError, match="no terminal"):  # pytest's stdin is not a terminal
        _settings([])
    monkeypatch.setenv("VINESCTL_PASSWORD", "pw")
    s = _settings([])
    assert s.host is None and s.address == "example.com"


def test_settings_use_running_bundled_server_port(config_home, tmp_path):
    config = tmp_path / "vines.toml"
    (tmp_path / "vines.state.json").write_text(
        json.dumps(
            {
                "pid": 1,
                "listeners": [
                    {"kind": "c2s-direct-tls", "host": "127.0.0.1", "port": 40001},
                    {"kind": "c2s-starttls", "host": "0.0.0.0", "port": 40000},
                ],
            }
        )
    )
    store = ProfileStore.load()
    store.add(Profile("local", "admin@localhost", password="pw", config=str(config)))
    store.save()
    s = _settings([])
    assert (s.host, s.port) == ("127.0.0.1", 40000)


# --- new passwords ------------------------------------------------------------------------------


def test_new_password_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("VINESCTL_NEW_PASSWORD", raising=False)
    f = tmp_path / "pw"
    f.write_text("from-file\r\nsecond")
    assert new_password(str(f)) == "from-file"
    monkeypatch.setenv("VINESCTL_NEW_PASSWORD", "from-env")
    assert new_password(str(f)) == "from-file"  # the file wins
    assert new_password(None) == "from-env"
    monkeypatch.delenv("VINESCTL_NEW_PASSWORD")
    with pytest.raises(UsageError, match="no terminal"):
        new_password(None)
    f.write_text("\n")
    with pytest.raises(UsageError, match="no password"):
        new_password(str(f))
    with pytest.raises(UsageError, match="cannot read"):
        new_password(str(tmp_path / "missing"))
