"""`vines-server --config vines.toml`: run the server in the foreground.

Once listening it writes `<name>.pid` and `<name>.state.json` (pid, start time, version, domains,
listeners with their actual ports) next to the config; both are removed at exit. SIGTERM and
SIGINT shut down in order and exit 0.

`--node-index K` runs node K of a set that `vinesctl server start --nodes N` starts from one
config (config.as_node): its files are `<name>@K.pid`, `.state.json` and `.log`, its node name
the configured one plus `-K`, and it shares the listening ports with the other nodes
(SO_REUSEPORT). SIGHUP reopens the log file (after logrotate moved it) and
reloads vines.toml, as the reload admin command does; a broken file is logged and changes nothing.

The log always goes to `<name>.log` next to the config (or --log-file), and the same lines to
stderr unless stderr is that very file (`vinesctl server start` points a detached server's stderr
at it): in a terminal, and under systemd where stderr is the journal. Under systemd
(`NOTIFY_SOCKET`), the server reports READY, RELOADING and STOPPING (server/notify.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from vines_server import __version__, kdf, notify
from vines_server.config import Config, ConfigError, as_node, check_files, check_node_set, load


def _node_index(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a node index from 1 to 1024")
    return int(text)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized without shutil: the default one imports shutil (and with it
    bz2 and lzma, 0.4 MB resident for the server's whole life; issue 14) in every
    add_argument(), where it is only built to check a metavar."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            try:
                width = os.get_terminal_size().columns or 80
            except OSError:  # not a terminal: shutil's fallback
                width = 80
        super().__init__(prog, width=width - 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="vines-server", description=__doc__.splitlines()[0], formatter_class=_HelpFormatter
    )
    parser.add_argument("--config", default="vines.toml", help="path of vines.toml")
    parser.add_argument("--log-file", help="append logs here [default: <config>.log beside it]")
    parser.add_argument(
        "--node-index",
        type=_node_index,
        metavar="K",
        help="run node K (from 1) of a set started from one config (vinesctl server start --nodes)",
    )
    parser.add_argument("--version", action="version", version=__version__)
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
        if args.node_index is not None:
            check_node_set(config, max(args.node_index, 2))
            config = as_node(config, args.node_index)
    except ConfigError as exc:
        print(f"vines-server: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        _setup_logging(config, Path(args.log_file) if args.log_file else config.sibling(".log"))
    except OSError as exc:
        print(f"vines-server: cannot open the log file: {exc}", file=sys.stderr)
        sys.exit(1)
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
            restart = runner.run(run(config))
    except ConfigError as exc:
        print(f"vines-server: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        logging.getLogger("vines_server").error("cannot start: %s", exc)
        print(f"vines-server: cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    if restart:  # an admin asked for a restart: run the same command line again
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `[server] event_loop` names (None: asyncio's default). uvloop runs the
    loop, sockets and timers in C: less server CPU per routed stanza (bench/README.md)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                "server.event_loop is 'uvloop' but uvloop is not installed: "
                "pip install 'vinesctl[uvloop]', or set event_loop = 'auto'"
            ) from None
        return None
    return uvloop.new_event_loop


async def run(config: Config) -> bool:
    """Serve until a signal or an admin's shutdown; True when an admin asked for a restart."""
    from vines_server.server import Server

    check_files(config)
    server = Server(config)
    kdf.start_helpers()  # PLAIN's PBKDF2 in helper processes, if they are faster (kdf.py)
    await server.start()
    loop_name = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    logging.getLogger("vines_server").info("event loop: %s", loop_name)
    stop = server.shutdown_requested  # signals, or the shutdown/restart admin commands
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: server.spawn(_hangup(server)))
    pid_file, state_file = config.sibling(".pid"), config.sibling(".state.json")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    _write_state(server, pid_file, state_file, started)
    # a reload may change the hosted domains: `vinesctl server status` reads them here
    server.host.hooks.on(
        "config/reloaded", lambda _c: _write_state(server, pid_file, state_file, started)
    )
    # what start-up built lives as long as the process: out of the collector's view, a full
    # collection walks only what serving created (it walked ~80 000 objects: pauses of 50-90 ms)
    gc.collect()
    gc.freeze()
    notify.ready(f"serving {', '.join(sorted(config.domains))}")
    try:
        await stop.wait()
    finally:
        notify.stopping()
        await server.stop()
        await kdf.stop_helpers()
        for path in (pid_file, state_file):
            path.unlink(missing_ok=True)
    return server.restart_requested


async def _hangup(server) -> None:
    log = logging.getLogger("vines_server")
    _reopen_log_files()
    log.info("SIGHUP: log file reopened, reloading %s", server.config.path)
    notify.reloading()
    try:
        await server.reload()
    except ConfigError as exc:
        log.error("vines.toml was not reloaded: %s", exc)
    finally:
        notify.ready()


def _reopen_log_files() -> None:
    """A rotated log file is written again under its own name, not the moved one."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                old = handler.setStream(handler._open())
                if old is not None:
                    old.close()
            finally:
                handler.release()


def _write_state(server, pid_file: Path, state_file: Path, started: str) -> None:
    state = {
        "pid": os.getpid(),
        "started": started,
        "version": __version__,
        "config": str(server.config.path),
        "node_index": server.config.node_index,
        "node": server.config.cluster.node or None,
        "domains": sorted(server.domains),
        "listeners": [
            {"kind": li.kind, "host": li.host, "port": li.port} for li in server.listening
        ],
    }
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    pid_file.write_text(f"{os.getpid()}\n")
    tmp.replace(state_file)  # atomic: readers never see half a file


#: One line per record; `vinesctl server logs` parses the level from the third field.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _setup_logging(config: Config, log_file: Path) -> None:
    level = getattr(logging, config.log_level.upper())
    handlers: list[logging.Handler] = [logging.FileHandler(log_file)]
    if not _is_same_file(sys.stderr, log_file):
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)


def _is_same_file(stream, path: Path) -> bool:
    """True when `stream` writes to `path` (or is closed): its lines would be written twice."""
    if stream is None:
        return True
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (AttributeError, ValueError, OSError):
        return False


if __name__ == "__main__":
    main()
