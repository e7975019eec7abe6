"""`vinesctl server init|start|stop|status`: the bundled server on this machine.

The pid, state and log files live next to `vines.toml` (`<stem>.pid`, `<stem>.state.json`,
`<stem>.log`), so several servers run side by side. `vines_server` is imported lazily.

`server start --nodes N` runs N nodes from one config, node K with `<stem>@K.pid`, `.state.json`
and `.log` (vines_server.config.as_node), and records N in `<stem>.nodes`; status, stop,
restart, reload and logs then cover every node of the set.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from vinesctl.commands.remote import timeout_option
from vinesctl.connection import connect_options
from vinesctl.durations import AGE
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.output import emit, json_option
from vinesctl.secrets import password_file_option

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


# --- shared helpers (also used by `vinesctl user` in local mode) -------------------------------


def data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME", "")
    return Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"


def load_config(path: str | Path) -> Any:
    """vines_server.config.load with its ConfigError turned into a one-line UsageError."""
    from vines_server.config import ConfigError, load

    try:
        return load(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def config_path(ctx: click.Context, given: str | None) -> Path:
    """--config, else the selected profile's `config`; UsageError when neither is there."""
    if given:
        return Path(given).expanduser().resolve()
    from vinesctl.profiles import current

    profile = current(ctx, required=False)
    if profile is not None and profile.config:
        return Path(profile.config).expanduser().resolve()
    who = f"profile {profile.name!r} has no server config" if profile else "no profile"
    raise UsageError(
        f"which server? {who}", "pass --config PATH/vines.toml or run 'vinesctl server init'"
    )


def config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config",
        metavar="PATH",
        type=click.Path(dir_okay=False),
        help="The server's vines.toml (default: the profile's).",
    )(f)


def sibling(config: Path, suffix: str, node: int | None = None) -> Path:
    from vines_server.config import sibling_file

    return sibling_file(config, suffix, node)


def node_indexes(config: Path) -> list[int]:
    """The indexes of the node set of `config`: the count `server start --nodes N` recorded,
    and any node whose pid or state file is there (started by hand, or left by a crash). Empty
    for a server on its own."""
    import re

    found: set[int] = set()
    with contextlib.suppress(OSError, ValueError):
        found.update(range(1, int(sibling(config, ".nodes").read_text()) + 1))
    pattern = re.compile(re.escape(config.stem) + r"@([1-9][0-9]*)\.(pid|state\.json)")
    with contextlib.suppress(OSError):
        for entry in config.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                found.add(int(match.group(1)))
    return sorted(found)


def instances(config: Path) -> list[int | None]:
    """What runs (or ran) from `config`: its nodes' indexes, or [None] for one server (both
    when files of each are there, say a set that crashed before a server on its own ran)."""
    nodes: list[int | None] = list(node_indexes(config))
    alone = any(sibling(config, suffix).exists() for suffix in (".pid", ".state.json"))
    return [None, *nodes] if alone or not nodes else nodes


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc (Linux), None when unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0] if ")" in stat else None


def pid_alive(pid: int) -> bool:
    """True when `pid` is a live (non-zombie) process; reaps it if it is our own child."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except OSError:  # ChildProcessError: not our child
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) != "Z"


def is_vines_server(pid: int) -> bool:
    """Guards against a recycled pid: on Linux the command line must name vines_server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        # gone, or a system without procfs (then trust the pid file)
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"vines_server" in cmdline or b"vines-server" in cmdline


def read_pid(config: Path, node: int | None = None) -> int | None:
    try:
        text = sibling(config, ".pid", node).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def read_state(config: Path, node: int | None = None) -> dict[str, Any] | None:
    try:
        state = json.loads(sibling(config, ".state.json", node).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_pid(config: Path, node: int | None = None) -> int | None:
    """The pid of the server of `config` (its node `node`) when it runs, else None."""
    pid = read_pid(config, node)
    if pid is None:
        state = read_state(config, node)
        pid = state.get("pid") if state else None
    if isinstance(pid, int) and pid > 0 and pid_alive(pid) and is_vines_server(pid):
        return pid
    return None


def clean_stale(config: Path, node: int | None = None) -> bool:
    """Removes pid and state files left by a server that is gone; True when it removed any."""
    removed = False
    for suffix in (".pid", ".state.json"):
        path = sibling(config, suffix, node)
        if path.exists():
            path.unlink(missing_ok=True)
            removed = True
    return removed


def signal_reload(config: Path) -> int | None:
    """SIGHUP to the running server of `config`, every node of a set (each reloads vines.toml
    and its certificates); the first pid signalled, or None when none runs."""
    return next(iter(signal_nodes(config).values()), None)


def signal_nodes(config: Path) -> dict[int | None, int]:
    """SIGHUP to every running process of `config`: index -> pid of each one signalled."""
    signalled: dict[int | None, int] = {}
    for node in instances(config):
        pid = running_pid(config, node)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
        except PermissionError:
            raise VinesctlError(
                f"not allowed to signal vines-server (pid {pid})",
                "run as the user that started the server",
            ) from None
        signalled[node] = pid
    return signalled


def last_log_line(log: Path) -> str | None:
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return None


def _uptime(started: Any) -> float | None:
    if not isinstance(started, str):
        return None
    try:
        when = datetime.fromisoformat(started)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - when).total_seconds())


@dataclass
class NodeProcess:
    """One server process of a config: the server on its own (index None) or node K of a set."""

    index: int | None
    node: str | None  # its cluster node name, when it has one
    running: bool
    pid: int | None
    started: str | None
    uptime: float | None  # seconds
    version: str | None
    domains: list[str] = field(default_factory=list)
    listeners: list[dict[str, Any]] = field(default_factory=list)
    log: str = ""


def node_process(config: Path, index: int | None) -> NodeProcess:
    pid = running_pid(config, index)
    state = read_state(config, index) or {}
    node = state.get("node")  # a crashed node's name, too, from the file it left
    if state.get("pid") not in (None, pid):
        state = {}  # a state file from an earlier run
    return NodeProcess(
        index=index,
        node=node,
        running=pid is not None,
        pid=pid,
        started=state.get("started"),
        uptime=_uptime(state.get("started")) if state else None,
        version=state.get("version"),
        domains=list(state.get("domains") or []),
        listeners=list(state.get("listeners") or []),
        log=str(sibling(config, ".log", index)),
    )


def storage_summary(cfg: Any) -> dict[str, Any]:
    """The backend and where it keeps the data: the SQLite file, or the PostgreSQL DSN as
    the server's own logs show it (vines_server's describe_dsn: never a password)."""
    storage = cfg.storage
    if storage.backend == "postgresql":
        from vines_server.storage.postgresql import describe_dsn

        return {"backend": "postgresql", "path": None, "dsn": describe_dsn(storage.dsn)}
    path = str(storage.path) if storage.backend == "sqlite" else None
    return {"backend": storage.backend, "path": path, "dsn": None}


def status_data(config: Path) -> dict[str, Any]:
    """The status of every process of `config`. The top-level fields are the first running
    node's (the only one's, for a server on its own); `nodes` lists each process."""
    nodes = [node_process(config, index) for index in instances(config)]
    first = next((n for n in nodes if n.running), nodes[0])
    data: dict[str, Any] = {
        "running": first.running,
        "pid": first.pid,
        "started": first.started,
        "uptime": first.uptime,
        "version": first.version,
        "domains": first.domains,
        "listeners": first.listeners,
        "config": str(config),
        "log": first.log,
        "nodes": [asdict(n) for n in nodes],
    }
    cfg = None
    with contextlib.suppress(VinesctlError):
        cfg = load_config(config)
    if not data["domains"] and cfg is not None:
        data["domains"] = sorted(cfg.domains)
    data["storage"] = storage_summary(cfg) if cfg is not None else None
    data["certificates"] = certificate_expiry(cfg) if cfg is not None else []
    return data


def certificate_expiry(cfg: Any) -> list[dict[str, Any]]:
    """Per hosted domain: when its certificate expires (null with the error when unreadable)."""
    from vinesctl.certfiles import describe

    found = []
    for name, files in sorted(cfg.domains.items()):
        cert = describe(name, files.certificate, files.key)
        leaf = cert.leaf
        found.append(
            {
                "domain": name,
                "not_after": leaf.not_after if leaf else None,
                "days_left": leaf.days_left if leaf else None,
                "error": cert.error,
            }
        )
    return found


def _stderr_console() -> Any:
    from vinesctl.output import console

    return console(stderr=True)


# --- commands ----------------------------------------------------------------------------------


@click.group("server")
def command() -> None:
    """Set up, start, stop and inspect the bundled server."""


@command.command("init")
@click.option("--domain", default="localhost", show_default=True, help="Domain to host.")
@click.option(
    "--dir",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Where to put vines.toml, the certificate and the store "
    "[default: $XDG_DATA_HOME/vinesctl/DOMAIN].",
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--c2s-port",
    "--port",
    "c2s_port",
    type=click.IntRange(0, 65535),
    default=5222,
    show_default=True,
    help="STARTTLS client port (0: a free port at each start).",
)
@click.option(
    "--c2s-tls-port",
    "--direct-tls-port",
    "tls_port",
    type=click.IntRange(0, 65535),
    default=5223,
    show_default=True,
    help="Direct TLS (XEP-0368) client port (0: a free port at each start).",
)
@click.option("--admin", metavar="JID", help="First administrator [default: admin@DOMAIN].")
@password_file_option
@click.option(
    "--profile-name",
    metavar="NAME",
    help="Name of the console profile to write [default: DOMAIN].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite an existing vines.toml and profile (the certificate and stored data stay).",
)
@json_option
@click.pass_context
def init(
    ctx: click.Context,
    domain: str,
    directory: str | None,
    bind: str,
    c2s_port: int,
    tls_port: int,
    admin: str | None,
    password_file: str | None,
    profile_name: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a ready-to-run server: vines.toml, a self-signed certificate, the SQLite store
    with the first admin account, and a console profile (the default when there is none).

    The admin's password comes from --password-file or VINESCTL_NEW_PASSWORD; otherwise a
    random one is kept only in the profile (never printed)."""
    from vinesctl.profiles import Profile, ProfileStore, check_domain, check_jid, domain_of
    from vinesctl.secrets import optional_new_password, random_password

    if not domain.strip() or any(c in domain for c in "[]"):
        raise UsageError(f"{domain!r} is not a domain name", "pass e.g. --domain example.com")
    domain = check_domain(domain)
    admin_jid = check_jid(admin or f"admin@{domain}")
    if domain_of(admin_jid) != domain:
        raise UsageError(f"admin {admin_jid} is not on {domain}", f"pass --admin NAME@{domain}")
    if c2s_port and c2s_port == tls_port:
        raise UsageError(f"both listeners on port {c2s_port}", "give them different ports")
    target = Path(directory).expanduser() if directory else data_home() / "vinesctl" / domain
    target = target.resolve()
    config_file = target / "vines.toml"
    name = profile_name or domain

    store = ProfileStore.load()
    old = store.profiles.get(name)
    if config_file.exists() and not force:
        raise UsageError(
            f"{config_file} exists", "pass --force to overwrite it, or choose another --dir"
        )
    if old is not None and not force and old.config != str(config_file):
        raise UsageError(
            f"profile {name!r} exists for another server",
            "pass --profile-name NAME, or --force to replace it",
        )
    given = optional_new_password(password_file)
    password = given or random_password()

    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        from vines_server.certs import ensure_domain_certificate

        cert, key = ensure_domain_certificate(domain, target)
        from vines_server.config_template import render_config

        text = render_config(domain, admin_jid, bind, c2s_port, tls_port, cert, key)
        tmp = config_file.with_name(".vines.toml.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, config_file)
    except OSError as exc:
        raise VinesctlError(
            f"cannot write to {target} ({exc.strerror})", "choose another --dir"
        ) from None
    cfg = load_config(config_file)

    import asyncio

    from vines_server.xmpp.sasl.credentials import derive_all

    credentials = derive_all(password, cfg.limits.pbkdf2_iterations)
    replaced = asyncio.run(_put_account(cfg, admin_jid, credentials, reset=True))

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bind, bind)
    server = None
    if c2s_port:
        server = f"[{host}]:{c2s_port}" if ":" in host else f"{host}:{c2s_port}"
    store.add(
        Profile(name, admin_jid, server, str(cert), password, None, str(config_file)),
        make_default=store.default is None or store.default == name,
    )
    store.save()

    data = {
        "domain": domain,
        "config": str(config_file),
        "certificate": str(cert),
        "key": str(key),
        "store": str(cfg.storage.path),
        "admin": admin_jid,
        "admin_existed": replaced,
        "password": "from --password-file/VINESCTL_NEW_PASSWORD" if given else "random",
        "profile": name,
        "default_profile": store.default == name,
        "profiles_file": str(store.path),
    }
    if as_json:
        emit(data, True)
        return
    where = f"profile {name!r}" + (" (default)" if data["default_profile"] else "")
    click.echo(f"Initialized {domain} in {target}")
    click.echo(f"  config       {config_file}")
    click.echo(f"  certificate  {cert} (self-signed; trusted through the profile)")
    click.echo(
        "  federation   closed; with a self-signed certificate only peers that opt into "
        "dialback accept it: put a CA-signed pair in [domains] (see 'vinesctl check --federation')"
    )
    click.echo(f"  store        {cfg.storage.path}")
    click.echo(f"  admin        {admin_jid} (password in {where})")
    flag = "" if data["default_profile"] else f" --profile {name}"
    click.echo(f"Next: vinesctl{flag} server start")


async def _put_account(cfg: Any, jid: str, credentials: Any, reset: bool) -> bool:
    """Creates the account; with reset, an existing one gets the new credentials. Returns
    True when the account existed."""
    from vines_server.storage import AccountExists, StorageError, open_storage

    storage = open_storage(cfg.storage)
    try:
        await storage.open()
        try:
            await storage.create_account(jid, credentials)
            return False
        except AccountExists:
            if not reset:
                raise
            await storage.set_credentials(jid, credentials)
            return True
        finally:
            await storage.close()
    except AccountExists:
        raise
    except StorageError as exc:
        raise VinesctlError(
            f"store {cfg.storage.path}: {exc}", "check the file and its permissions"
        ) from None


@command.command("start")
@config_option
@click.option(
    "--detach/--foreground",
    default=True,
    help="Run in the background (default) or in this terminal until Ctrl-C.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=START_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the server to listen.",
)
@click.option(
    "--nodes",
    type=click.IntRange(min=1, max=1024),
    default=1,
    show_default=True,
    help="Run this many nodes of a cluster from the config, one process each (one per core); "
    "more than one needs [cluster] redis and PostgreSQL storage.",
)
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    config: str | None,
    detach: bool,
    timeout: float,
    nodes: int,
    as_json: bool,
) -> None:
    """Start the server of --config (default: the profile's), or --nodes N of it."""
    path = config_path(ctx, config)
    cfg = load_config(path)  # config errors as one line, before anything runs
    wanted: list[int | None] = [None] if nodes == 1 else list(range(1, nodes + 1))
    if nodes > 1:
        from vines_server.config import ConfigError, check_node_set

        try:
            check_node_set(cfg, nodes)
        except ConfigError as exc:
            raise UsageError(f"--nodes {nodes}: {exc}") from None
        if not detach:
            raise UsageError("--foreground runs one server", "leave it out to run --nodes N")
    running = {i: pid for i in instances(path) if (pid := running_pid(path, i)) is not None}
    if running and set(running) - set(wanted):
        what = "one server" if None in running else f"{len(node_indexes(path))} nodes"
        raise UsageError(
            f"vines-server already runs {what} for {path}",
            "stop it first ('vinesctl server stop'), then start it again with --nodes",
        )
    if len(running) == len(wanted):
        if as_json:
            emit(status_data(path), True)
        else:
            pids = ", ".join(str(p) for p in running.values())
            click.echo(f"vines-server is already running (pid {pids}) for {path}")
        return
    for index in {*instances(path), *wanted} - set(running):  # what crashed, or will run
        clean_stale(path, index)
    argv = [sys.executable, "-m", "vines_server", "--config", str(path)]
    if not detach:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, argv)  # signals go straight to the server
    _record_nodes(path, nodes)
    # all processes start at once (a node takes about a second: its store, TLS contexts,
    # modules), then each is waited for
    started = {index: _spawn(path, index) for index in wanted if index not in running}
    try:
        states = {i: _wait_ready(p, path, i, timeout) for i, p in started.items()}
    except VinesctlError:
        for proc in started.values():  # all of the set or none of it
            if proc.poll() is None:
                proc.terminate()
        for proc in started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_TIMEOUT)
        if not running:
            _record_nodes(path, 1)
        raise
    data = status_data(path)
    state = states.get(None)
    if state is not None and not data["running"]:  # it stopped right after starting
        proc = started[None]
        data = dict(data, running=True, pid=proc.pid, listeners=state.get("listeners", []))
    if as_json:
        emit(data, True)
        return
    from vinesctl.render.servers import listener_line

    listeners = ", ".join(listener_line(x) for x in data["listeners"]) or "-"
    if nodes == 1:
        click.echo(
            f"vines-server running (pid {started[None].pid}) for {', '.join(data['domains'])}"
        )
        click.echo(f"  listening  {listeners}")
        click.echo(f"  log        {sibling(path, '.log')}")
        return
    shared = [x for x in data["listeners"] if x["kind"] != "metrics"]  # metrics: one per node
    click.echo(f"vines-server running {nodes} nodes for {', '.join(data['domains'])}")
    click.echo(f"  listening  {', '.join(listener_line(x) for x in shared) or '-'} (shared)")
    for node in data["nodes"]:
        own = "".join(f"  {listener_line(x)}" for x in node["listeners"] if x["kind"] == "metrics")
        name = node["node"] or f"@{node['index']}"
        click.echo(f"  {name}  pid {node['pid']}{own}  log {node['log']}")


def _spawn(path: Path, index: int | None) -> subprocess.Popen:
    """vines-server for `path` (node `index` of a set), detached, its output in its log."""
    log = sibling(path, ".log", index)
    argv = [sys.executable, "-m", "vines_server", "--config", str(path), "--log-file", str(log)]
    if index is not None:
        argv += ["--node-index", str(index)]
    try:
        with open(log, "ab") as err:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,  # a crash before logging is set up still lands in the log
                start_new_session=True,
                cwd=str(path.parent),
            )
    except OSError as exc:
        raise VinesctlError(f"cannot start vines-server ({exc.strerror})", f"see {log}") from None


def _record_nodes(path: Path, count: int) -> None:
    """`<stem>.nodes` holds N while a set of N nodes runs: status then names a node that is
    gone without leaving a file (one stopped by an admin command) as not running."""
    record = sibling(path, ".nodes")
    if count == 1:
        record.unlink(missing_ok=True)
        return
    try:
        record.write_text(f"{count}\n")
    except OSError as exc:
        raise VinesctlError(f"cannot write {record} ({exc.strerror})") from None


def _wait_ready(
    proc: subprocess.Popen, config: Path, node: int | None, timeout: float
) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    log = sibling(config, ".log", node)
    console = _stderr_console()
    with console.status("starting vines-server...", spinner="dots"):
        while True:
            state = read_state(config, node)
            if state is not None and state.get("pid") == proc.pid:
                return state
            code = proc.poll()
            if code is not None:
                line = (last_log_line(log) or "no output").removeprefix("vines-server: ")
                fix = f"see {log}"
                if "in use" in line:
                    fix = (
                        "another program listens on that port: stop it or change "
                        f"[listeners] in {config}"
                    )
                error = UsageError if code == 2 else VinesctlError
                raise error(f"vines-server exited with status {code}: {line}", fix)
            if time.monotonic() > deadline:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise VinesctlError(
                    f"vines-server did not start listening within {timeout:g} s (stopped it)",
                    f"see {log}, or pass a larger --timeout",
                )
            time.sleep(0.05)


@command.command("stop")
@config_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=STOP_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the server to exit.",
)
@click.pass_context
def stop(ctx: click.Context, config: str | None, timeout: float) -> None:
    """Stop the server of --config, every node of it (SIGTERM; each closes its streams
    cleanly)."""
    path = config_path(ctx, config)
    pids, stale = _stop(path, timeout)
    if not pids:
        note = " (removed stale pid files)" if stale else ""
        click.echo(f"vines-server is not running for {path}{note}")
    elif len(pids) == 1:
        click.echo(f"vines-server stopped (pid {pids[0]})")
    else:
        click.echo(f"vines-server stopped {len(pids)} nodes (pids {', '.join(map(str, pids))})")


def _stop(path: Path, timeout: float) -> tuple[list[int], bool]:
    """SIGTERM to every process of `path` (every stream gets <system-shutdown/>) and wait for
    them all: (the pids they had, none when nothing ran; whether stale pid files went)."""
    processes = {i: running_pid(path, i) for i in instances(path)}
    stale = any(clean_stale(path, i) for i, pid in processes.items() if pid is None)
    pids = {i: pid for i, pid in processes.items() if pid is not None}
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise VinesctlError(
                f"not allowed to stop pid {pid}", "run as the user that started the server"
            ) from None
    deadline = time.monotonic() + timeout
    shown = ", ".join(map(str, pids.values()))
    with _stderr_console().status(f"stopping vines-server (pid {shown})...", spinner="dots"):
        for index, pid in pids.items():
            while pid_alive(pid):
                if time.monotonic() > deadline:
                    raise VinesctlError(
                        f"vines-server (pid {pid}) did not exit within {timeout:g} s",
                        f"see {sibling(path, '.log', index)}; force it with 'kill -9 {pid}'",
                    )
                time.sleep(0.05)
            clean_stale(path, index)
    _record_nodes(path, 1)
    return list(pids.values()), stale


@command.command("restart")
@config_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=START_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the server to exit, then to listen again.",
)
@json_option
@click.pass_context
def restart(ctx: click.Context, config: str | None, timeout: float, as_json: bool) -> None:
    """Restart the server of --config gracefully: every stream gets <system-shutdown/>, then
    it starts again and this waits until it listens (a stopped server is just started)."""
    path = config_path(ctx, config)
    load_config(path)  # a broken vines.toml would stop the server for good: refuse first
    nodes = len(node_indexes(path)) or 1  # a set starts again as a set
    pids, _ = _stop(path, timeout)
    if pids and not as_json:
        click.echo(f"vines-server stopped (pid {', '.join(map(str, pids))})")
    ctx.invoke(start, config=str(path), detach=True, timeout=timeout, nodes=nodes, as_json=as_json)


@command.command("reload")
@config_option
@click.option(
    "--signal",
    "by_signal",
    is_flag=True,
    help="Send SIGHUP through the pid file instead of logging in (no report of what applied).",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def reload(
    ctx: click.Context,
    config: str | None,
    by_signal: bool,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Re-read vines.toml and the certificates without a restart: limits, admins, federation,
    log level, hosted domains (the others need 'vinesctl server restart'). Through the reload
    admin command when the profile can log in (it reports what applied), else by SIGHUP; the
    nodes of a set (server start --nodes) always by SIGHUP, each of them (the command would
    reach one)."""
    nodes: list[int] = []
    with contextlib.suppress(UsageError):
        nodes = node_indexes(config_path(ctx, config))
    if not by_signal and not nodes and _can_log_in(ctx, server):
        from vinesctl.commands.remote import run_remote, warn_notes

        async def work(client: Any, conn: Any, _s: Any) -> Any:
            from vinesctl.xmpp import admin

            return await admin.reload(client, conn.domain)

        done = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
        if as_json:
            emit(done, True)
            return
        warn_notes(done)
        click.echo(f"reloaded; applied: {', '.join(done.changed) or 'nothing changed'}")
        if done.restart:
            click.echo(f"needs a restart to apply: {', '.join(done.restart)}")
        return
    path = config_path(ctx, config)
    load_config(path)  # the server would refuse it: say why here, in one line
    pids = signal_nodes(path)
    if not pids:
        raise VinesctlError(
            f"vines-server is not running for {path}", "start it with 'vinesctl server start'"
        )
    logs = [str(sibling(path, ".log", i)) for i in pids]
    if as_json:
        data = {"method": "signal", "pid": next(iter(pids.values())), "log": logs[0]}
        if len(pids) > 1:  # a set of nodes: each of them
            data |= {"pids": list(pids.values()), "logs": logs}
        emit(data, True)
    elif len(pids) == 1:
        click.echo(
            f"sent SIGHUP to vines-server (pid {pids[None]}); what it applied is in {logs[0]}"
        )
    else:
        click.echo(
            f"sent SIGHUP to {len(pids)} nodes (pids {', '.join(map(str, pids.values()))}); "
            f"what each applied is in its log ({', '.join(logs)})"
        )


def _can_log_in(ctx: click.Context, server: str | None) -> bool:
    """A JID to log in with: VINESCTL_JID, or the selected profile (then --server or its
    recorded listener tells where)."""
    if os.environ.get("VINESCTL_JID"):
        return True
    from vinesctl.profiles import current

    profile = current(ctx, required=False)
    return profile is not None and bool(profile.jid)


@command.command("status")
@config_option
@json_option
@click.pass_context
def status(ctx: click.Context, config: str | None, as_json: bool) -> None:
    """Show whether the server runs, its pid, uptime, domains, listeners and storage, each
    node of a set (exit 1 when it, or one of its nodes, does not run)."""
    path = config_path(ctx, config)
    data = status_data(path)
    if not data["running"]:
        load_config(path)  # a broken or missing config is the news, not "not running"
    if as_json:
        emit(data, True)
    elif data["running"]:
        from vinesctl.render.servers import status_view

        emit(data, False, status_view)
    down = [n for n in data["nodes"] if not n["running"]]
    if not down:
        return
    if as_json:
        ctx.exit(1)
    if not data["running"]:
        raise VinesctlError(
            f"vines-server is not running for {path}", "start it with 'vinesctl server start'"
        )
    names = ", ".join(n["node"] or f"@{n['index']}" for n in down)
    raise VinesctlError(
        f"{len(down)} of {len(data['nodes'])} nodes do not run for {path} ({names})",
        f"see their logs; 'vinesctl server start --nodes {len(data['nodes'])}' starts them",
    )


@command.command("check-config")
@config_option
@click.pass_context
def check_config(ctx: click.Context, config: str | None) -> None:
    """Validate the server's vines.toml (default: the profile's) and the files it names,
    without starting anything (like 'prosodyctl check config'). Exit 1 with the key to fix."""
    from vines_server.config import ConfigError, check_files, load

    path = config_path(ctx, config)
    try:
        cfg = load(path)
        check_files(cfg)
    except ConfigError as exc:
        raise VinesctlError(f"{path}: {exc}") from None
    domains = ", ".join(sorted(cfg.domains))
    click.echo(f"{path}: ok (domains: {domains})")


@command.command("logs")
@config_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (across logrotate).")
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many records to show first.",
)
@click.option(
    "--level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Only records at this level or above.",
)
@click.option(
    "--node",
    "node",
    type=click.IntRange(min=1),
    metavar="K",
    help="Node K's log, of a set started with --nodes [default: all of them, merged].",
)
@json_option
@click.pass_context
def logs(
    ctx: click.Context,
    config: str | None,
    follow: bool,
    count: int,
    level: str | None,
    node: int | None,
    as_json: bool,
) -> None:
    """Show the server's log file (<config>.log beside vines.toml), like 'tail [-f]'; of a set
    of nodes, every node's records merged in time order (or --node K's). Under systemd the
    journal has the same lines: 'journalctl -u vines-DOMAIN'."""
    from vinesctl.logfile import follow as follow_records

    path = config_path(ctx, config)
    minimum = level.lower() if level else None
    nodes = [node] if node is not None else instances(path)
    if len(nodes) > 1:
        if follow:
            raise UsageError(
                f"{path} runs {len(nodes)} nodes, each with its own log",
                "pass --node K to follow one of them",
            )
        merged = (
            sorted(
                (
                    (index, record)
                    for index in nodes
                    for record in _tail(path, index, count, minimum)[1]
                ),
                key=lambda pair: pair[1].text[:23],  # the time stamp each record starts with
            )[-count:]
            if count
            else []
        )
        if as_json:
            records = [dict(r.to_json(), node=i) for i, r in merged]
            emit({"logs": [str(sibling(path, ".log", i)) for i in nodes], "records": records}, True)
            return
        for index, record in merged:
            click.echo(f"@{index} {record.text}")
        return
    log = sibling(path, ".log", nodes[0])
    end, shown = _tail(path, nodes[0], count, minimum)
    if as_json and not follow:
        emit({"log": str(log), "records": shown}, True)
        return

    def show(record: Any) -> None:
        if as_json:  # one object per line, like presence --watch
            click.echo(json.dumps(record.to_json()))
        else:
            click.echo(record.text)

    for record in shown:
        show(record)
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            for record in follow_records(log, minimum, start=end):
                show(record)
                sys.stdout.flush()


def _tail(path: Path, node: int | None, count: int, minimum: str | None) -> tuple[int, list]:
    """The size of the log of `path` (node `node`), and its last `count` records at `minimum`
    or above."""
    from vinesctl.logfile import tail

    log = sibling(path, ".log", node)
    try:
        with open(log, "rb") as f:
            end = f.seek(0, os.SEEK_END)
        return end, tail(log, count, minimum) if count else []
    except FileNotFoundError:
        raise VinesctlError(
            f"no log file {log}", "the server writes it once started: 'vinesctl server start'"
        ) from None
    except OSError as exc:
        raise VinesctlError(f"cannot read {log} ({exc.strerror})", "check its permissions") from exc


@command.command("install-service")
@config_option
@click.option("--user", "user_unit", is_flag=True, help="A user unit (systemctl --user).")
@click.option(
    "--output",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Write the unit here [default: /etc/systemd/system/ or ~/.config/systemd/user/].",
)
@click.option("--dry-run", is_flag=True, help="Print the unit instead of writing it.")
@json_option
@click.pass_context
def install_service(
    ctx: click.Context,
    config: str | None,
    user_unit: bool,
    output: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Write a systemd unit that runs the server of --config: in the foreground, ready when it
    listens (Type=notify), reloaded by SIGHUP, allowed to write only the config's directory."""
    from vinesctl.service import ServiceUnit, default_path, render_unit, unit_name

    path = config_path(ctx, config)
    domains = sorted(load_config(path).domains)
    name = Path(output).name if output else unit_name(path, domains)
    target = Path(output).expanduser().resolve() if output else None
    target = target or default_path(name, user_unit, Path.home())
    unit = ServiceUnit(name, target, user_unit, path, render_unit(path, domains, user_unit))
    if not dry_run:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_text(unit.text, encoding="utf-8")
            tmp.chmod(0o644)
            os.replace(tmp, target)
        except OSError as exc:
            raise VinesctlError(
                f"cannot write {target} ({exc.strerror})",
                "run as root, pass --user, or choose --output PATH",
            ) from None
    if as_json:
        emit(dict(unit.to_json(), written=not dry_run), True)
        return
    if dry_run:
        click.echo(unit.text, nl=False)
        return
    scope = " --user" if user_unit else ""
    click.echo(f"wrote {target}")
    click.echo(f"Next: systemctl{scope} daemon-reload && systemctl{scope} enable --now {name}")
    click.echo(f"      logs: journalctl{scope} -u {name}   reload: systemctl{scope} reload {name}")


@command.command("backup")
@config_option
@click.argument("dest", type=click.Path())
@click.option("--force", is_flag=True, help="Replace DEST when it is an existing file.")
@json_option
@click.pass_context
def backup(ctx: click.Context, config: str | None, dest: str, force: bool, as_json: bool) -> None:
    """Copy the store to DEST (a file, or a directory for a dated name), consistent even while
    the server runs and writes. SQLite: its online backup API; restore: stop the server and put
    the copy where [storage] path points. PostgreSQL: pg_dump's custom format (one snapshot);
    restore: stop the server, then 'pg_restore --clean --if-exists --no-owner --dbname=DSN
    DEST'. 'server export' writes a portable copy instead (XEP-0227, for 'server import')."""
    path = config_path(ctx, config)
    cfg = load_config(path)
    backend = cfg.storage.backend
    if backend == "memory":
        raise UsageError("the memory backend keeps nothing on disk", "nothing to back up")
    target = Path(dest).expanduser().resolve()
    if target.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        if backend == "postgresql":
            from urllib.parse import urlsplit

            name = urlsplit(cfg.storage.dsn).path.strip("/") or "vines"
            target = target / f"{name}-{stamp}.pgdump"
        else:
            target = target / f"{Path(cfg.storage.path).stem}-{stamp}.sqlite"
    if target.exists() and not force:
        raise UsageError(f"{target} exists", "pass --force to replace it, or another DEST")
    if not target.parent.is_dir():
        raise UsageError(f"no directory {target.parent}", "create it first")

    from vinesctl.commands.user import _run as in_store

    store = storage_summary(cfg)
    size = in_store(cfg, lambda storage: storage.backup(target))
    # what a restore brings back, read from the copy itself: it opens as a store of its own
    # (SQLite), or pg_restore reads its accounts (PostgreSQL)
    result = {"accounts": _accounts_in_backup(cfg, target), "bytes": size}
    data = {"store": store["dsn"] or store["path"], "backup": str(target), **result}
    if as_json:
        emit(data, True)
        return
    click.echo(f"backed up {data['store']} to {target} ({result['bytes']} bytes)")


def _accounts_in_backup(cfg: Any, target: Path) -> int:
    from vines_server.config import StorageConfig

    from vinesctl.commands.user import _run as in_store

    if cfg.storage.backend == "postgresql":
        import asyncio

        from vines_server.storage.base import StorageError
        from vines_server.storage.postgresql import archive_accounts

        try:
            return asyncio.run(archive_accounts(target))
        except StorageError as exc:
            raise VinesctlError(str(exc), "the backup may be unusable: run it again") from None
    copy = replace(cfg, storage=StorageConfig("sqlite", target))
    return in_store(copy, lambda storage: storage.count_accounts())


@command.command("export")
@config_option
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write here (mode 0600: it holds password keys) [default: standard output].",
)
@click.pass_context
def export(ctx: click.Context, config: str | None, output: str | None) -> None:
    """Every account of the store in the XEP-0227 portable format: SCRAM keys, roster, pending
    subscription requests, vCard, private XML and offline messages (for 'server import' here or
    on another server, Prosody's migrator included)."""
    from vines_server.certs import write_atomic
    from vines_server.xep0227 import read_account, render_document

    from vinesctl.commands.user import _run as in_store

    cfg = load_config(config_path(ctx, config))

    async def read(storage: Any) -> list[Any]:
        return [await read_account(storage, jid) for jid in await storage.list_accounts()]

    users = in_store(cfg, read)
    document = render_document(users)
    if output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return
    try:
        write_atomic(Path(output).expanduser().resolve(), document, 0o600)
    except OSError as exc:
        raise VinesctlError(f"cannot write {output} ({exc.strerror})", "choose --output") from None
    _stderr_console().print(f"exported {len(users)} accounts to {output}")


@command.command("import")
@config_option
@click.argument("source", type=click.Path(exists=True))
@click.option("--overwrite", is_flag=True, help="Replace accounts that exist already.")
@json_option
@click.pass_context
def import_(
    ctx: click.Context, config: str | None, source: str, overwrite: bool, as_json: bool
) -> None:
    """Accounts from an XEP-0227 file, or a directory of them (one per account, as Prosody's
    migrator writes them). All files are read and checked first; an existing account or a
    domain this server does not host stops the import before anything is written."""
    from vines_server.xep0227 import Xep0227Error, parse_document, write_account

    from vinesctl.commands.user import _run as in_store

    cfg = load_config(config_path(ctx, config))
    root = Path(source)
    files = sorted(root.glob("*.xml")) if root.is_dir() else [root]
    if not files:
        raise UsageError(f"{root} holds no .xml file", "give an XEP-0227 file or directory")
    users = []
    for file in files:
        try:
            users += parse_document(file.read_bytes(), cfg.limits.pbkdf2_iterations)
        except Xep0227Error as exc:
            raise VinesctlError(
                f"{file}: {exc}", "nothing was imported; fix or remove it"
            ) from None
        except OSError as exc:
            raise VinesctlError(f"cannot read {file} ({exc.strerror})") from None
    foreign = sorted({u.jid.partition("@")[2] for u in users} - set(cfg.domains))
    if foreign:
        raise VinesctlError(
            f"{cfg.path} does not host {', '.join(foreign)}",
            "add the domain to vines.toml first; nothing was imported",
        )
    from collections import Counter

    duplicates = sorted(jid for jid, n in Counter(u.jid for u in users).items() if n > 1)
    if duplicates:
        raise VinesctlError(f"accounts given twice: {', '.join(duplicates)}", "give each once")

    async def run(storage: Any) -> dict[str, Any]:
        existing = [u.jid for u in users if await storage.get_account(u.jid) is not None]
        if existing and not overwrite:
            return {"existing": existing}
        replaced = [u.jid for u in users if await write_account(storage, u, overwrite)]
        return {"existing": existing, "replaced": replaced}

    outcome = in_store(cfg, run)
    if "replaced" not in outcome:
        names = ", ".join(outcome["existing"][:5]) + (
            " ..." if len(outcome["existing"]) > 5 else ""
        )
        raise VinesctlError(
            f"{len(outcome['existing'])} accounts exist already ({names})",
            "pass --overwrite to replace them; nothing was imported",
        )
    no_sha256 = [u.jid for u in users if "SHA-256" not in u.credentials]
    data = {
        "imported": [u.jid for u in users],
        "replaced": outcome["replaced"],
        "without_sha256": no_sha256,
        "roster_items": sum(len(u.roster) for u in users),
        "offline_messages": sum(len(u.offline) for u in users),
        "files": len(files),
    }
    if as_json:
        emit(data, True)
        return
    click.echo(
        f"imported {len(users)} accounts ({len(outcome['replaced'])} replaced) from "
        f"{len(files)} files: {data['roster_items']} roster items, "
        f"{data['offline_messages']} offline messages"
    )
    if no_sha256:
        click.echo(
            f"{len(no_sha256)} accounts have SCRAM-SHA-1 keys only: they log in with "
            "SCRAM-SHA-1 or PLAIN until a password change (see README, 'Moving from Prosody')"
        )


@command.command("purge-offline")
@config_option
@click.option(
    "--older-than",
    "age",
    metavar="AGE",
    required=True,
    type=AGE,
    help="Delete offline messages stored longer ago than this, e.g. 30d.",
)
@json_option
@click.pass_context
def purge_offline(ctx: click.Context, config: str | None, age: Any, as_json: bool) -> None:
    """Delete the offline messages every account of the store has held longer than AGE (the
    server may run: it reads the store afresh at each login)."""
    from vinesctl.commands.user import _local_config
    from vinesctl.commands.user import _run as in_store

    cfg = _local_config(str(config_path(ctx, config)))
    before = datetime.now(UTC) - age
    purged = in_store(cfg, lambda storage: storage.purge_offline(before))
    if as_json:
        emit({"purged": purged, "before": before}, True)
        return
    click.echo(f"purged {purged} offline messages stored before {before:%Y-%m-%d %H:%M} UTC")


# --- hosted domains: fragments in the included directory ---------------------------------------


def _fragment_dir(path: Path, edit_config: bool) -> Path:
    """The directory vines.toml includes (conf.d/); without the include line, --edit-config
    adds it above the first table, else UsageError saying which line to add."""
    import tomllib

    from vines_server.config import INCLUDE_LINE, read_with_includes

    raw = tomllib.loads(path.read_text(encoding="utf-8"))  # valid: the caller loaded it
    if "conf.d/*.toml" in (raw.get("include") or []):
        return path.parent / "conf.d"
    if not edit_config:
        raise UsageError(
            f"{path} includes no conf.d/*.toml",
            f"add the line '{INCLUDE_LINE}' above its first [table], or pass --edit-config",
        )
    if "include" in raw:
        raise UsageError(
            f"{path} has its own include list",
            'add "conf.d/*.toml" to it (--edit-config only adds a missing include line)',
        )
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    lines.insert(first, f"{INCLUDE_LINE}\n\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    read_with_includes(path)  # still valid TOML
    return path.parent / "conf.d"


def _checked(path: Path) -> Any:
    """The whole configuration as the server would load it, files included."""
    from vines_server.config import ConfigError, check_files, load

    try:
        cfg = load(path)
        check_files(cfg)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return cfg


@command.command("add-domain")
@click.argument("domain")
@config_option
@click.option(
    "--edit-config",
    is_flag=True,
    help="Add the include line to vines.toml when it lacks it (else it says which to add).",
)
@json_option
@click.pass_context
def add_domain(
    ctx: click.Context, domain: str, config: str | None, edit_config: bool, as_json: bool
) -> None:
    """Host DOMAIN too: a self-signed certificate (replace it with 'vinesctl cert import') and
    conf.d/DOMAIN.toml with its [domains] table; the running server reloads (vines.toml itself
    is not rewritten)."""
    from vines_server.certs import ensure_domain_certificate
    from vines_server.xmpp.jid import JIDError, normalize_domainpart

    from vinesctl.commands.cert import _reload

    path = config_path(ctx, config)
    cfg = load_config(path)
    try:
        name = normalize_domainpart(domain)
    except JIDError:
        raise UsageError(
            f"{domain!r} is not a domain name", "give one such as example.org"
        ) from None
    if name in cfg.domains:
        raise UsageError(f"{name} is already hosted by {path}", "see 'vinesctl server status'")
    directory = _fragment_dir(path, edit_config)
    fragment = directory / f"{name}.toml"
    if fragment.exists():
        raise UsageError(f"{fragment} exists", "remove it or fix it by hand")
    try:
        cert, key = ensure_domain_certificate(name, path.parent)
        directory.mkdir(exist_ok=True)
        fragment.write_text(
            f"# Written by 'vinesctl server add-domain'; 'vinesctl server remove-domain {name}'\n"
            f"# removes it. Paths are relative to {path.name}'s directory.\n"
            f'[domains."{name}"]\ncertificate = "{cert.name}"\nkey = "{key.name}"\n',
            encoding="utf-8",
        )
    except OSError as exc:
        raise VinesctlError(f"cannot write to {path.parent} ({exc.strerror})") from None
    try:
        _checked(path)
    except UsageError:
        fragment.unlink()
        raise
    data = {
        "domain": name,
        "fragment": str(fragment),
        "certificate": str(cert),
        "key": str(key),
        "reload": _reload(path),
    }
    if as_json:
        emit(data, True)
        return
    click.echo(f"added {name}: {fragment} (certificate {cert}, self-signed)")
    _say_domain_reload(data["reload"])


@command.command("remove-domain")
@click.argument("domain")
@config_option
@json_option
@click.pass_context
def remove_domain(ctx: click.Context, domain: str, config: str | None, as_json: bool) -> None:
    """Stop hosting DOMAIN: remove the conf.d file add-domain wrote (its certificate, key and
    accounts stay); the running server reloads and closes its streams with <host-gone/>."""
    from vines_server.config import read_with_includes
    from vines_server.xmpp.jid import JIDError, normalize_domainpart

    from vinesctl.commands.cert import _reload

    path = config_path(ctx, config)
    load_config(path)  # one line when broken; then reading it again succeeds
    _, sources = read_with_includes(path)
    try:
        domain = normalize_domainpart(domain)
    except JIDError:
        raise UsageError(
            f"{domain!r} is not a domain name", "see 'vinesctl server status'"
        ) from None
    source = sources.get(("domains", domain))
    if source is None:
        raise UsageError(f"{path} does not host {domain}", "see 'vinesctl server status'")
    if source == path:
        raise UsageError(
            f"{domain} is defined in {path} itself",
            f"remove its [domains.\"{domain}\"] table there, then run 'vinesctl server reload'",
        )
    others = [f"[{t}.{k}]" for (t, k), src in sources.items() if src == source and k != domain]
    if others:
        raise UsageError(
            f"{source} also defines {', '.join(others)}",
            f'remove the [domains."{domain}"] table from it by hand',
        )
    aside = source.with_name(source.name + ".removed")
    os.replace(source, aside)
    try:
        _checked(path)  # e.g. an admin on that domain, or the last domain
    except UsageError:
        os.replace(aside, source)
        raise
    aside.unlink()
    data = {"domain": domain, "removed": str(source), "reload": _reload(path)}
    if as_json:
        emit(data, True)
        return
    click.echo(f"removed {domain}: {source} deleted (certificate and accounts kept)")
    _say_domain_reload(data["reload"])


def _say_domain_reload(reload: dict[str, Any]) -> None:
    if reload["signalled"]:
        click.echo(f"signalled vines-server (pid {reload['pid']}) to reload")
    else:
        click.echo("vines-server is not running: the change applies at the next start")
