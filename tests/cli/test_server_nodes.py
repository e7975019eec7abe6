"""`vinesctl server start --nodes N`: N real server processes from one vines.toml, on a real
PostgreSQL and redis-server, sharing their client ports (SO_REUSEPORT), each with its own pid,
state, log and metrics port; status, stop, logs and start again cover them all. And the
refusals, in one line each."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import tomli_w

from tests.cli.conftest import init_server
from tests.cli.test_server_cli import vinesctl
from tests.support.postgres import PASSWORD as PG_PASSWORD
from tests.support.postgres import PostgresInstance
from tests.support.redis import PASSWORD as REDIS_PASSWORD
from tests.support.redis import RedisInstance


def _free_ports(count: int, consecutive: bool = False) -> list[int]:
    """Ports free right now; `consecutive`: a run of `count` in a row (a node set's metrics)."""
    while True:
        socks = []
        try:
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            socks.append(first)
            base = first.getsockname()[1]
            for i in range(1, count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", base + i if consecutive else 0))
                socks.append(sock)
            return [s.getsockname()[1] for s in socks]
        except OSError:
            continue  # base + i was taken (or past 65535): try another run
        finally:
            for sock in socks:
                sock.close()


def listening_pids(port: int) -> set[int]:
    """The processes holding a TCP socket that listens on 127.0.0.1:`port` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    found = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = {os.readlink(fd) for fd in fd_dir.iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            found.add(int(fd_dir.parent.name))
    return found


def edit(config: Path, **tables: dict) -> None:
    raw = tomllib.loads(config.read_text())
    for name, table in tables.items():
        raw.setdefault(name, {}).update(table)
    config.write_text(tomli_w.dumps(raw))


def cluster_config(
    config: Path, postgres: PostgresInstance, redis: RedisInstance, metrics_port: int
) -> int:
    """The config as a two-node set needs it: PostgreSQL, Redis, fixed ports; the c2s port."""
    c2s, direct = _free_ports(2)
    dsn = asyncio.run(postgres.create_database())
    edit(
        config,
        listeners={"c2s_port": c2s, "c2s_direct_tls_port": direct},
        storage={
            "backend": "postgresql",
            "dsn": dsn,
            "dsn_password_file": str(postgres.password_file),
        },
        cluster={"redis": redis.url, "password_file": str(redis.password_file), "node": "n1"},
        metrics={"port": metrics_port},
    )
    return c2s


def _logs(directory: Path) -> str:
    return "".join(
        f"\n{log.name}:\n{log.read_text()[-2000:]}" for log in sorted(directory.glob("*.log"))
    )


def test_two_nodes_start_share_their_ports_and_stop_together(tmp_path, cli_env, postgres, redis):
    config = init_server(tmp_path, cli_env)
    directory = config.parent
    metrics = _free_ports(2, consecutive=True)[0]
    c2s = cluster_config(config, postgres, redis, metrics)
    r = vinesctl("server", "start", "--config", str(config), "--nodes", "2", env=cli_env)
    pids: list[int] = []
    try:
        assert r.returncode == 0, r.stderr + _logs(directory)
        assert "running 2 nodes" in r.stdout and "n1-1" in r.stdout and "n1-2" in r.stdout
        assert f"127.0.0.1:{c2s} (c2s-starttls)" in r.stdout.splitlines()[1]  # the shared one
        assert f"{metrics} (metrics)" not in r.stdout.splitlines()[1]  # one per node
        assert f"{metrics + 1} (metrics)" in r.stdout.splitlines()[3]
        r = vinesctl("server", "status", "--config", str(config), "--json", env=cli_env)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        nodes = status["nodes"]
        pids = [n["pid"] for n in nodes]
        assert [n["index"] for n in nodes] == [1, 2]
        assert [n["node"] for n in nodes] == ["n1-1", "n1-2"]
        assert all(n["running"] for n in nodes) and len(set(pids)) == 2
        assert [n["log"] for n in nodes] == [str(directory / f"vines@{i}.log") for i in (1, 2)]
        for i, pid in enumerate(pids, 1):
            assert (directory / f"vines@{i}.pid").read_text().strip() == str(pid)
        # one client port, both processes listening on it; a metrics port each
        for node in nodes:
            ports = {x["kind"]: x["port"] for x in node["listeners"]}
            assert ports["c2s-starttls"] == c2s
        assert listening_pids(c2s) == set(pids)
        metrics_ports = [
            next(x["port"] for x in n["listeners"] if x["kind"] == "metrics") for n in nodes
        ]
        assert metrics_ports == [metrics, metrics + 1]
        assert status["storage"]["backend"] == "postgresql"
        assert status["storage"]["dsn"].startswith("postgresql://vines@127.0.0.1:")
        assert PG_PASSWORD not in r.stdout and REDIS_PASSWORD not in r.stdout

        r = vinesctl("server", "status", "--config", str(config), env=cli_env)
        assert r.returncode == 0, r.stderr
        assert "node @1" in r.stdout and "node @2" in r.stdout and "postgresql://" in r.stdout
        assert f"127.0.0.1:{metrics + 1}" in r.stdout  # (Rich may wrap the line at a space)

        # the logs of both, merged; following needs one of them
        r = vinesctl("server", "logs", "--config", str(config), "--json", env=cli_env)
        assert r.returncode == 0, r.stderr
        assert {rec["node"] for rec in json.loads(r.stdout)["records"]} == {1, 2}
        r = vinesctl("server", "logs", "--config", str(config), "-f", env=cli_env)
        assert r.returncode == 2 and "--node K" in r.stderr

        # a node killed: status says which, exit 1; start brings back only that one
        os.kill(pids[1], signal.SIGKILL)
        r = vinesctl("server", "status", "--config", str(config), env=cli_env)
        assert r.returncode == 1 and "1 of 2 nodes do not run" in r.stderr and "n1-2" in r.stderr
        r = vinesctl("server", "start", "--config", str(config), "--nodes", "2", env=cli_env)
        assert r.returncode == 0, r.stderr + _logs(directory)
        status = json.loads(
            vinesctl("server", "status", "--config", str(config), "--json", env=cli_env).stdout
        )
        assert status["nodes"][0]["pid"] == pids[0]
        pids = [n["pid"] for n in status["nodes"]]
        assert all(n["running"] for n in status["nodes"])

        # reload signals each node (the admin command would reach one); restart keeps the set
        r = vinesctl("server", "reload", "--config", str(config), "--json", env=cli_env)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["pids"] == pids
        r = vinesctl("server", "restart", "--config", str(config), "--json", env=cli_env)
        assert r.returncode == 0, r.stderr + _logs(directory)
        restarted = json.loads(r.stdout)["nodes"]
        assert [n["index"] for n in restarted] == [1, 2] and all(n["running"] for n in restarted)
        assert not {n["pid"] for n in restarted} & set(pids)
        pids = [n["pid"] for n in restarted]

        r = vinesctl("server", "stop", "--config", str(config), env=cli_env)
        assert r.returncode == 0, r.stderr
        assert "stopped 2 nodes" in r.stdout
        pids = []
        assert not list(directory.glob("vines@*.pid")) and not (directory / "vines.nodes").exists()
        assert listening_pids(c2s) == set()
    finally:
        if pids:  # leave nothing behind when an assertion failed
            vinesctl("server", "stop", "--config", str(config), env=cli_env)


def test_nodes_refused_without_cluster_or_shared_storage(tmp_path, cli_env):
    config = init_server(tmp_path, cli_env)

    def start(*more: str) -> subprocess.CompletedProcess:
        return vinesctl("server", "start", "--config", str(config), *more, env=cli_env)

    r = start("--nodes", "2")  # SQLite, no [cluster]
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "[cluster] redis" in r.stderr
    edit(config, cluster={"redis": "redis://127.0.0.1:6379/0"})
    r = start("--nodes", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert '[storage] backend = "postgresql"' in r.stderr
    edit(config, storage={"backend": "postgresql", "dsn": "postgresql://vines@127.0.0.1/vines"})
    r = start("--nodes", "2")  # c2s_port = 0: each node would get a port of its own
    assert r.returncode == 2 and "listeners.c2s_port is 0" in r.stderr
    r = start("--nodes", "2", "--foreground")
    assert r.returncode == 2
    assert not list(config.parent.glob("*.pid")) and not list(config.parent.glob("*@*"))


def test_server_entry_point_checks_the_node_index(tmp_path, cli_env):
    config = init_server(tmp_path, cli_env)
    for index, why in (("0", "not a node index"), ("2", "[cluster] redis")):
        r = subprocess.run(
            [sys.executable, "-m", "vines_server", "--config", str(config), "--node-index", index],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and why in r.stderr


def test_status_of_one_server_shows_its_storage(tmp_path, cli_env):
    config = init_server(tmp_path, cli_env)
    # files a crashed set of nodes left: gone once a server on its own starts
    (config.parent / "vines@2.pid").write_text("999999\n")
    (config.parent / "vines.nodes").write_text("2\n")
    r = vinesctl("server", "start", "--config", str(config), env=cli_env)
    try:
        assert r.returncode == 0, r.stderr
        status = json.loads(
            vinesctl("server", "status", "--config", str(config), "--json", env=cli_env).stdout
        )
        assert status["storage"] == {
            "backend": "sqlite",
            "path": str(config.parent / "vines.sqlite"),
            "dsn": None,
        }
        assert [(n["index"], n["pid"]) for n in status["nodes"]] == [(None, status["pid"])]
        assert not (config.parent / "vines@2.pid").exists()
    finally:
        vinesctl("server", "stop", "--config", str(config), env=cli_env)
