"""`[cluster]` configuration (issue 13): a cluster needs shared storage, the Redis password
stays out of every message and repr, and a server without `[cluster]` imports nothing of Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vines_server.config import ClusterConfig, ConfigError, parse

DOMAINS = {"localhost": {"certificate": "c.pem", "key": "k.pem"}}
PG = {"backend": "postgresql", "dsn": "postgresql://vines@127.0.0.1:5432/vines"}


def config(storage: dict, **cluster):
    return parse({"domains": DOMAINS, "storage": storage, "cluster": cluster}, Path("/srv/v.toml"))


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_a_cluster_on_one_nodes_storage_is_refused_naming_the_key(backend: str) -> None:
    with pytest.raises(ConfigError) as err:
        config({"backend": backend}, redis="redis://127.0.0.1:6379/0")
    message = str(err.value)
    assert "[storage] backend" in message and "postgresql" in message
    assert "\n" not in message


def test_defaults_and_the_password_never_shown() -> None:
    secret = "s3cret-in-url"
    cfg = config(PG, redis=f"redis://:{secret}@127.0.0.1:6379/0")
    assert cfg.cluster.enabled
    assert (cfg.cluster.heartbeat, cfg.cluster.ttl) == (1.0, 5.0)
    assert cfg.cluster.node.endswith("-5222")  # host name and c2s port
    assert cfg.cluster.password_file is None
    assert secret not in repr(cfg) and secret not in repr(cfg.cluster)
    assert not parse({"domains": DOMAINS}).cluster.enabled
    assert ClusterConfig() == parse({"domains": DOMAINS}).cluster


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"redis": "http://x"}, "cluster.redis must be a URL"),
        ({"redis": "redis://h", "node": "a b"}, "cluster.node must be"),
        ({"redis": "redis://h", "ttl": 1, "heartbeat": 1}, "at least twice cluster.heartbeat"),
        ({"redis": "redis://h", "heartbeat": 0}, "cluster.heartbeat must be a positive number"),
        ({"redis": "redis://h", "nodes": 2}, "unknown key cluster.nodes"),
    ],
)
def test_bad_cluster_settings_are_named(cluster: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(PG, **cluster)


def test_one_node_imports_nothing_of_redis(tmp_path: Path) -> None:
    code = f"""
import json, sys
from pathlib import Path
from vines_server.config import parse
from vines_server.server import Server
cfg = parse({{"domains": {{"localhost": {{"certificate": "c", "key": "k"}}}},
             "storage": {{"backend": "memory"}}}}, Path({str(tmp_path / "v.toml")!r}))
server = Server(cfg)
assert server.cluster is None
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout)
    assert not [m for m in modules if m.split(".")[0] == "redis"]
    assert "vines_server.cluster.node" not in modules


def test_vines_server_refuses_a_cluster_on_sqlite_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "vines.toml"
    path.write_text(
        '[domains.localhost]\ncertificate = "c.pem"\nkey = "k.pem"\n'
        '[cluster]\nredis = "redis://127.0.0.1:6379/0"\n'
    )
    run = subprocess.run(
        [sys.executable, "-m", "vines_server", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "[storage] backend" in run.stderr
    assert "Traceback" not in run.stderr
