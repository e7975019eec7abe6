"""`vinesctl check localhost` right after `server init` and `server start`: the bundled server
passes its own check (the profile's CA is the trust anchor, its direct TLS listener is seen, the
fixes are phrased for vines-server), and `check config` points to `server check-config`."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def running(run_cli, tmp_path):
    r = run_cli(
        "server", "init", "--dir", str(tmp_path / "srv"), "--port", "0", "--direct-tls-port", "0"
    )
    assert r.exit_code == 0, r.stderr
    r = run_cli("server", "start")
    assert r.exit_code == 0, r.stderr
    try:
        yield tmp_path / "srv"
    finally:
        run_cli("server", "stop")


def test_a_fresh_bundled_server_passes_its_own_check(run_cli, running):
    r = run_cli("check", "localhost", "--no-versions", "--json")
    report = json.loads(r.stdout)
    failed = [f for f in report["findings"] if f["status"] == "fail"]
    assert r.exit_code == 0 and not failed, failed
    found = {(f["check"], f["name"], f["target"] or ""): f for f in report["findings"]}
    trust = [f for (check, name, _), f in found.items() if name == "client trust"]
    assert len(trust) == 2 and all(f["status"] == "ok" for f in trust)  # STARTTLS, direct TLS
    assert all(str(running / "localhost.crt") in f["detail"] for f in trust)
    assert found[("features", "Direct TLS (XEP-0368)", "")]["status"] == "ok"
    fixes = [f["fix"] or "" for f in report["findings"]]
    assert not [fix for fix in fixes if "Prosody" in fix or "mod_" in fix]
    pep = found[("features", "Personal Eventing Protocol (XEP-0163)", "")]
    assert "vines-server" in pep["fix"]


def test_check_config_is_not_a_domain(run_cli):
    r = run_cli("check", "config")
    assert r.exit_code == 2 and "vinesctl server check-config" in r.stderr
    assert r.stderr.count("\n") == 1
