"""Config validation: each mistake is one line naming the key and the fix, both when the server
starts (`python -m vines_server`) and in `vinesctl server check-config` (nothing started)."""

from __future__ import annotations

import subprocess
import sys

import pytest

MISTAKES = [
    ('admins = ["admin@localhost"]', 'admins = ["@@"]', "server.admins: '@@'"),
    ("allow = []", 'allow = ["not a domain!!"]', "federation.allow: 'not a domain!!'"),
    (
        'admins = ["admin@localhost"]',
        'admins = ["boss@elsewhere.example"]',
        "server.admins: 'boss@elsewhere.example' is not on a hosted domain",
    ),
    ('bind = ["127.0.0.1"]', 'bind = ["127.0.0.999"]', "listeners.bind: '127.0.0.999'"),
    ('key = "localhost.key"', 'key = "localhost.crt"', "domains.localhost.key:"),
    ("[limits]\n", '[limits]\nban_exempt = ["nope"]\n', "limits.ban_exempt: 'nope'"),
    (  # component secrets in plaintext off loopback
        "# component_port = false ",
        'component_port = 5347\ncomponent_bind = ["0.0.0.0"]\n# ',
        "listeners.component_tls must be true",
    ),
    (
        "allow = []\n",
        'allow = []\n[components."work.localhost"]\nsecret_file = "missing.secret"\n',
        'components."work.localhost".secret_file: cannot read',
    ),
]


@pytest.fixture
def config(run_cli, tmp_path):
    r = run_cli(
        "server", "init", "--dir", str(tmp_path / "srv"), "--port", "0", "--direct-tls-port", "0"
    )
    assert r.exit_code == 0, r.stderr
    return tmp_path / "srv" / "vines.toml"


def test_a_fresh_config_is_valid(run_cli, config):
    r = run_cli("server", "check-config")  # the profile's config
    assert r.exit_code == 0 and r.stdout == f"{config}: ok (domains: localhost)\n", r.stderr


@pytest.mark.parametrize(("before", "after", "named"), MISTAKES, ids=lambda v: v[:24])
def test_each_mistake_is_one_line_naming_the_key(run_cli, config, before, after, named):
    text = config.read_text()
    assert before in text
    config.write_text(text.replace(before, after))

    r = run_cli("server", "check-config", "--config", str(config))
    assert r.exit_code == 1 and named in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr

    started = subprocess.run(
        [sys.executable, "-m", "vines_server", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode == 2 and named in started.stderr, started.stderr
    assert started.stderr.count("\n") == 1 and "Traceback" not in started.stderr


def test_a_key_file_holding_a_certificate_says_so(run_cli, config):
    config.write_text(config.read_text().replace('key = "localhost.key"', 'key = "localhost.crt"'))
    r = run_cli("server", "check-config", "--config", str(config))
    assert "holds a certificate, not a PEM key" in r.stderr and "private key" in r.stderr
