"""`vinesctl server reload` and `server restart` on a real detached server started by
`vinesctl server start` (the default profile `server init` wrote logs in as its admin)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_server_cli import vinesctl
from tests.cli.test_server_ops import _pid, wait_until


def set_limit(config: Path, line: str) -> None:
    text = config.read_text()
    assert "\n[limits]\n" in text
    config.write_text(text.replace("\n[limits]\n", f"\n[limits]\n{line}\n", 1))


def test_reload_through_the_admin_node(running_bundled, cli_env):
    config = running_bundled
    set_limit(config, "offline_quota = 7")
    text = config.read_text()
    config.write_text(text.replace("s2s_port = 5269", "s2s_port = 5999"))
    r = vinesctl("server", "reload", "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data == {"method": "admin", "changed": ["limits"], "restart": ["listeners"]}
    # applied: read again, the running server's limits equal the file's (nothing left to apply)
    r = vinesctl("server", "reload", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "reloaded; applied: nothing changed",
        "needs a restart to apply: listeners",
    ]

    # a broken file changes nothing and says why in one line
    set_limit(config, "bogus = 1")
    r = vinesctl("server", "reload", env=cli_env)
    assert r.returncode != 0 and "unknown key limits.bogus" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_reload_by_signal(running_bundled, cli_env):
    config = running_bundled
    log = config.with_name("vines.log")
    set_limit(config, "offline_quota = 7")
    r = vinesctl("server", "reload", "--signal", "--config", str(config), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"method": "signal", "pid": _pid(config), "log": str(log)}
    wait_until(lambda: "changed: limits" in log.read_text())


def test_reload_of_a_stopped_server_says_so(running_bundled, cli_env):
    vinesctl("server", "stop", "--config", str(running_bundled), env=cli_env)
    r = vinesctl("server", "reload", "--signal", "--config", str(running_bundled), env=cli_env)
    assert r.returncode != 0 and "not running" in r.stderr and "server start" in r.stderr


def test_restart_serves_again(running_bundled, cli_env):
    config = running_bundled
    before = _pid(config)
    set_limit(config, "offline_quota = 7")
    r = vinesctl("server", "restart", "--config", str(config), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["running"] and data["pid"] == _pid(config) != before
    assert "stopped" in config.with_name("vines.log").read_text()
    # the new process serves: the admin logs in, and it runs the changed file
    r = vinesctl("server", "reload", "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] == []

    # a broken vines.toml is refused before the running server is stopped
    set_limit(config, "bogus = 1")
    r = vinesctl("server", "restart", "--config", str(config), env=cli_env)
    assert r.returncode == 2 and "limits.bogus" in r.stderr
    assert _pid(config) == data["pid"]


def test_metrics_after_a_restart(running_bundled, cli_env):
    """[metrics] needs a restart (the reload says so); then `server status` lists the endpoint,
    and a scrape parsed with prometheus_client counts the console's login."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    config = running_bundled
    config.write_text(config.read_text().replace("\n[metrics]\n", "\n[metrics]\nport = 0\n"))
    r = vinesctl("server", "reload", "--json", env=cli_env)
    assert json.loads(r.stdout)["restart"] == ["metrics"]
    r = vinesctl("server", "restart", "--config", str(config), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    listeners = json.loads(r.stdout)["listeners"]
    port = next(li["port"] for li in listeners if li["kind"] == "metrics")

    def logins() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            families = text_string_to_metric_families(answer.read().decode())
            return sum(
                s.value for f in families for s in f.samples
                if s.name == "vines_logins_total" and s.labels["result"] == "ok"
            )  # fmt: skip

    assert logins() == 0
    r = vinesctl("stats", "--json", env=cli_env)  # works beside the endpoint, and logs in
    assert r.returncode == 0, r.stderr
    assert logins() == 1
