"""Wiring: config -> storage, TLS contexts, modules, router and listeners. `Server` owns the
running state (sessions, connections) and the orderly shutdown."""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import ssl
import time
from collections import Counter, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vines_server.config import Config, ConfigError, check_files, load
from vines_server.core.api import ModuleHost
from vines_server.core.components import Components
from vines_server.core.faults import describe
from vines_server.core.routing import Router
from vines_server.core.sessions import Session, SessionRegistry
from vines_server.memory import Trimmer
from vines_server.modules import DEFAULT_MODULES, lazy
from vines_server.net.connection import C2S, Resumptions, StreamConnection, StreamKind
from vines_server.net.idle import IdleSweep
from vines_server.net.tls import server_context
from vines_server.storage import open_storage
from vines_server.storage.base import Storage
from vines_server.xmpp import ns, tokens
from vines_server.xmpp.c2s import C2SSettings
from vines_server.xmpp.errors import StanzaError, StreamError
from vines_server.xmpp.parser import ParserLimits

if TYPE_CHECKING:
    from vines_server.cluster.node import ClusterNode
    from vines_server.net.s2s_federation import Federation
    from vines_server.xmpp.component import ComponentSettings

log = logging.getLogger("vines_server")

MAX_TRACKED_IPS = 100_000  # failure histories kept at most (oldest dropped first)
# what a reload applies at once; anything else in vines.toml needs a restart
RELOADABLE = ("admins", "federation", "limits", "deadlines", "log_level", "domains")


def c2s_settings(config: Config, fake_secret: bytes | None = None) -> C2SSettings:
    """The one place client-stream settings are built from configuration: at start, and
    again on reload (the fake-salt secret stays what it was)."""
    limits = config.limits
    return C2SSettings(
        domains=frozenset(config.domains),
        preauth_limits=ParserLimits(
            limits.preauth_stanza_size, limits.preauth_elements, limits.depth, limits.attributes
        ),
        limits=ParserLimits(limits.stanza_size, limits.elements, limits.depth, limits.attributes),
        auth_failures=limits.auth_failures_per_stream,
        stream_restarts=limits.stream_restarts,
        iterations=limits.pbkdf2_iterations,
        fake_secret=fake_secret,
    )


@dataclass(frozen=True)
class Reloaded:
    """What a reload of vines.toml applied, and what changed but needs a restart."""

    changed: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Listening:
    kind: str  # "c2s-starttls" | "c2s-direct-tls" | "s2s" | "component" | "metrics" ...
    host: str
    port: int


class Server:
    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        self.config = config
        self.storage: Storage = storage if storage is not None else open_storage(config.storage)
        self.domains = frozenset(config.domains)
        limits = config.limits
        self.c2s_settings = c2s_settings(config)
        # one node, or this node of a cluster (imported only then: startup stays light)
        self.cluster: ClusterNode | None = None
        if config.cluster.enabled:
            from vines_server.cluster.node import ClusterNode

            self.cluster = ClusterNode(self)
            self.sessions: SessionRegistry = self.cluster.sessions
        else:
            self.sessions = SessionRegistry()
        self.connections: set[StreamConnection] = set()
        self.idle_sweep = IdleSweep(self.connections, lambda: self.config.deadlines.idle)
        self.resumptions = Resumptions(lambda: self.config.deadlines.resume)  # XEP-0198
        self._per_ip: Counter[str] = Counter()  # open connections per source IP
        self._auth_failures: dict[str, deque[float]] = {}  # IP -> failure times (monotonic)
        self._bans: dict[str, float] = {}  # IP -> wall-clock end of the ban
        self.host = ModuleHost(self)
        self.trimmer = Trimmer()  # freed heap back to the system once connections go quiet
        self.metrics = None
        if config.metrics.port is not None:  # imported only when asked for
            from vines_server.metrics import Metrics

            self.metrics = Metrics(self)
            self.storage = self.metrics.timed(self.storage)
        self.router = Router(
            self.domains,
            self.sessions,
            self.storage,
            self.host.hooks,
            self.spawn,
            limits.offline_quota,
            limits.offline_bytes,
        )
        self.router.cluster = self.cluster
        # federation only while configured (allowlist or peers): a closed domain otherwise
        self.federation: Federation | None = None
        if config.federation.configured:  # imported only then: dnspython, pyOpenSSL
            from vines_server.net.s2s_federation import Federation

            self.federation = Federation(self)
            self.router.remote = self.federation
        # every configured component is a destination, connected or not (XEP-0114)
        self.components = Components(config.components, self.router.bounce)
        self.router.components.update(self.components.routes)
        self.listening: list[Listening] = []
        self.started_monotonic = time.monotonic()
        # set by the shutdown/restart admin commands; main.py waits on it besides signals
        self.shutdown_requested = asyncio.Event()
        self.restart_requested = False
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await self.open()
        self._served = self._certificate_files()
        self.tls_contexts = self._build_tls_contexts()
        lst = self.config.listeners
        await self._listen(C2S, "c2s-starttls", lst.bind, lst.c2s_port, direct=False)
        if lst.c2s_direct_tls_port is not None:
            await self._listen(
                C2S, "c2s-direct-tls", lst.bind, lst.c2s_direct_tls_port, direct=True
            )
        if self.federation is not None:
            from vines_server.net.s2s import S2S_IN

            await self._listen(S2S_IN, "s2s", lst.bind, lst.s2s_port, direct=False)  # type: ignore[arg-type]
            if lst.s2s_direct_tls_port is not None:
                await self._listen(
                    S2S_IN,  # type: ignore[arg-type]
                    "s2s-direct-tls",
                    lst.bind,
                    lst.s2s_direct_tls_port,
                    direct=True,
                )
        if lst.component_port is not None:
            from vines_server.net.component import COMPONENT

            tls = lst.component_tls
            await self._listen(
                COMPONENT,
                "component-tls" if tls else "component",
                lst.component_bind,
                lst.component_port,
                direct=tls,
            )
        if self.metrics is not None:
            metrics = self.config.metrics
            for host, port in await self.metrics.serve(metrics.bind, metrics.port or 0):
                self.listening.append(Listening("metrics", host, port))
        self.started_monotonic = time.monotonic()
        self.trimmer.request()  # what parsing the config and starting up freed
        log.info(
            "serving %s on %s",
            ", ".join(sorted(self.domains)),
            ", ".join(f"{li.kind} {li.host}:{li.port}" for li in self.listening),
        )

    async def open(self) -> None:
        """Storage and modules: everything but the listeners (the routing tests stop here)."""
        await self.storage.open()
        self.c2s_settings = c2s_settings(self.config, await self._fake_secret())
        if self.federation is not None:
            await self.federation.open()
        for name in DEFAULT_MODULES:
            if name in lazy.COMMANDS:  # commands only: declared now, loaded at first use
                lazy.declare(self.host, name)
                continue
            module = importlib.import_module(f"vines_server.modules.{name}")
            module.setup(self.host.api(name))
        if self.cluster is not None:
            await self.cluster.start()

    async def _fake_secret(self) -> bytes:
        """Unknown users get fake SCRAM salts derived from this; it must outlive restarts,
        or a changing salt would reveal that the account does not exist."""
        stored = await self.storage.get_setting("sasl_fake_secret")
        if stored is None:
            stored = tokens.token_hex(32)
            await self.storage.set_setting("sasl_fake_secret", stored)
        return bytes.fromhex(stored)

    @property
    def component_settings(self) -> ComponentSettings:
        """What a component stream (XEP-0114) needs, from the current config and client
        settings (so a reload applies); built when one opens: the component stream code is
        imported only then, a server without components never loads it (issue 14)."""
        from vines_server.net.component import component_settings

        return component_settings(self.config, self.c2s_settings)

    def _build_tls_contexts(self) -> dict[str, Any]:
        """A context per listener name from the domains' certificate files, read now: a reload
        picks up a certificate installed over the old files."""
        certs = {d.name: (d.certificate, d.key) for d in self.config.domains.values()}
        starttls = server_context(certs)
        contexts: dict[str, Any] = {
            "c2s-starttls": starttls,
            "c2s-direct-tls": server_context(certs, alpn=["xmpp-client"]),
            # components: plaintext on loopback, or direct TLS with the certificate by SNI
            "component": starttls,
            "component-tls": starttls,
        }
        if self.federation is not None:
            from vines_server.net.s2stls import s2s_server_context

            contexts["s2s"] = s2s_server_context(certs)
            contexts["s2s-direct-tls"] = s2s_server_context(certs, alpn=["xmpp-server"])
        return contexts

    def reload_tls(self) -> bool:
        """Rebuild the TLS contexts for new connections (open ones keep theirs); True when a
        certificate changed. A broken pair is logged and the old contexts stay."""
        errors: tuple[type[Exception], ...] = (OSError, ssl.SSLError, ValueError)
        if self.federation is not None:  # pyOpenSSL builds the s2s contexts
            from OpenSSL.SSL import Error as OpenSSLError

            errors += (OpenSSLError,)
        try:
            served = self._certificate_files()
            contexts = self._build_tls_contexts()
        except errors as exc:
            log.error("certificates not reloaded, the old ones stay in use: %s", exc)
            return False
        changed, self._served = served != self._served, served
        self.tls_contexts = contexts
        return changed

    def _certificate_files(self) -> list[bytes]:
        return [Path(d.certificate).read_bytes() for d in self.config.domains.values()]

    async def _listen(
        self, kind: StreamKind, name: str, hosts: tuple[str, ...], port: int, direct: bool
    ) -> None:
        """Listen for streams of `kind` (c2s today; components and s2s next). Each connection
        takes the TLS context current at accept time, so a reload's new certificate applies."""
        loop = asyncio.get_running_loop()
        for host in hosts:
            server = await loop.create_server(
                lambda: StreamConnection(self, kind, self.tls_contexts[name], direct),
                host,
                port,
                reuse_address=True,
                # the nodes of one set share each port (SO_REUSEPORT: the kernel spreads new
                # connections over them); a server on its own keeps "address in use"
                reuse_port=self.config.node_index is not None,
            )
            self._servers.append(server)
            for sock in server.sockets:
                addr = sock.getsockname()
                self.listening.append(Listening(name, addr[0], addr[1]))

    async def stop(self) -> None:
        """Orderly shutdown: stop accepting, <system-shutdown/> to every stream, close storage."""
        for server in self._servers:
            server.close()
        if self.federation is not None:
            self.federation.close_all()
        for conn in list(self.connections):
            conn.close(StreamError("system-shutdown"))
        self.resumptions.expire_all()  # their unacknowledged messages go offline
        deadline = time.monotonic() + self.config.deadlines.shutdown
        # lingering connections already have their <system-shutdown/> out: no need to wait
        while [c for c in self.connections if not c.lingering] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)
        # presence broadcasts and logout records of closing sessions finish before storage closes
        while self._tasks and time.monotonic() < deadline + 1:
            await asyncio.wait(set(self._tasks), timeout=deadline + 1 - time.monotonic())
        if self.cluster is not None:
            await self.cluster.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        await self.storage.close()
        self.trimmer.cancel()
        self.idle_sweep.cancel()
        log.info("stopped")

    async def reload(self) -> Reloaded:
        """Re-read vines.toml (the reload admin command, SIGHUP): apply the RELOADABLE sections,
        name the others that changed; a broken file raises ConfigError and changes nothing."""
        if self.config.path is None:
            raise ConfigError("this server was not started from a vines.toml")
        new = await asyncio.to_thread(load, self.config.path)
        old = self.config
        if new.domains != old.domains:
            await asyncio.to_thread(check_files, new)  # a new domain's files, before any change
        changed = [name for name in RELOADABLE if getattr(old, name) != getattr(new, name)]
        restart = [
            f.name
            for f in fields(old)
            if f.name not in RELOADABLE
            and f.name != "path"
            and getattr(old, f.name) != getattr(new, f.name)
        ]
        self.config = replace(old, **{name: getattr(new, name) for name in RELOADABLE})
        self._apply_limits()
        certificates = self.reload_tls()  # before the new domains are routed to
        self._rehost(old)
        if new.log_level != old.log_level:
            logging.getLogger().setLevel(getattr(logging, new.log_level.upper()))
        await self.host.hooks.fire("config/reloaded", self.config)
        if certificates:
            changed.append("certificates")
        log.info(
            "configuration reloaded from %s; changed: %s%s",
            self.config.path,
            ", ".join(changed) or "nothing",
            f"; needs a restart: {', '.join(restart)}" if restart else "",
        )
        return Reloaded(changed, restart)

    def _rehost(self, old: Config) -> None:
        """Apply a changed set of hosted domains (the components reload joins here): routing,
        stream headers and TLS take the new set at once; sessions and streams of a removed
        domain end with <host-gone/>, RFC 6120 4.9.3.6's condition for a domain "no longer
        serviced" (not <host-unknown/>, which says it never was)."""
        domains = frozenset(self.config.domains)
        removed = frozenset(old.domains) - domains
        self.domains = self.router.domains = domains
        if not removed:
            return
        for conn in list(self.connections):
            stream = conn.stream
            jid = getattr(stream, "jid", None)
            domain = jid.domain if jid is not None else getattr(stream, "domain", None)
            if domain in removed:
                conn.close(StreamError("host-gone", f"{domain} is no longer served here"))
        log.warning("no longer serving %s: its streams were closed", ", ".join(sorted(removed)))

    def _apply_limits(self) -> None:
        """Push reloaded limits into what copied them at start; new connections see them."""
        limits = self.config.limits
        self.router.offline_quota = limits.offline_quota
        self.router.offline_bytes = limits.offline_bytes
        self.c2s_settings = c2s_settings(self.config, self.c2s_settings.fake_secret)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- per-IP protections (XEP-0205) ----------------------------------------------------

    def admit(self, ip: str | None) -> bool:
        """Count a new connection from `ip`; False when it is over the per-IP cap."""
        if ip is None:
            return True
        if self._per_ip[ip] >= self.config.limits.connections_per_ip:
            return False
        self._per_ip[ip] += 1
        return True

    def release(self, ip: str | None) -> None:
        if ip is not None and self._per_ip[ip] > 0:
            self._per_ip[ip] -= 1
            if not self._per_ip[ip]:
                del self._per_ip[ip]

    def note_auth_failure(self, ip: str | None) -> None:
        """N failures within the ban window ban the IP (ejabberd mod_fail2ban); no per-JID
        lockout, so an attacker cannot lock the real owner out from elsewhere (A-03)."""
        if ip is None or self.ban_exempt(ip):
            return
        limits = self.config.limits
        now = time.monotonic()
        times = self._auth_failures.pop(ip, None) or deque()
        while times and times[0] < now - limits.auth_ban_seconds:
            times.popleft()
        times.append(now)
        self._auth_failures[ip] = times  # re-inserted: the dict stays oldest-first
        if len(times) >= limits.auth_failures_per_ip:
            self._bans[ip] = time.time() + limits.auth_ban_seconds
            del self._auth_failures[ip]
            log.warning(
                "banned %s for %ss after failed authentications", ip, limits.auth_ban_seconds
            )
        while len(self._auth_failures) > MAX_TRACKED_IPS:  # bounded memory under many IPs
            del self._auth_failures[next(iter(self._auth_failures))]

    def ban_exempt(self, ip: str) -> bool:
        """In `[limits] ban_exempt` (loopback by default): never banned, so an administrator
        on the machine cannot lock the console out by mistyping a password."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:  # a dual-stack listener's IPv4 peer
            address = address.ipv4_mapped
        return any(
            address in ipaddress.ip_network(net, strict=False)
            for net in self.config.limits.ban_exempt
        )

    def unban(self, ip: str) -> bool:
        """Lift the ban of `ip` and forget its failures; False when it was not banned."""
        self._auth_failures.pop(ip, None)
        banned = self.banned_until(ip) is not None
        self._bans.pop(ip, None)
        return banned

    def bans(self) -> dict[str, float]:
        """Banned IP -> wall-clock end of its ban, for the ones still running."""
        return {ip: until for ip in list(self._bans) if (until := self.banned_until(ip))}

    def banned_until(self, ip: str | None) -> float | None:
        """Wall-clock time (epoch seconds) when the ban of `ip` ends, or None."""
        until = self._bans.get(ip) if ip is not None else None
        if until is not None and until <= time.time():
            del self._bans[ip]
            return None
        return until

    # ---- sessions ------------------------------------------------------------------------

    async def bind(self, conn: StreamConnection, resource: str | None) -> Session:
        """Bind a resource (RFC 6120 7): conflict replaces the old session, the cap refuses."""
        from vines_server.xmpp.jid import JID, JIDError

        bare = conn.stream.jid
        assert bare is not None
        if resource is None:
            resource = "vines-" + tokens.token_hex(6)
        try:
            full = JID.parse(f"{bare}/{resource}")
        except JIDError:
            raise StanzaError("bad-request", "that resource is not valid") from None
        cap = self.config.limits.sessions_per_account
        if self.cluster is not None:  # the cap and conflicts are the cluster's (decision 4)
            over = not await self.cluster.claim(full, conn.info, cap)
            old = self.cluster.sessions.local(full)  # one on another node: closed by claim()
        else:
            old = self.sessions.get(full)
            over = old is None and self.sessions.count(bare) >= cap
        if over:
            raise StanzaError(
                "resource-constraint",
                f"at most {cap} sessions per account",
                type="cancel",
                app=(ns.XMPP_ERRORS, "resource-limit-exceeded"),
            )
        session = Session(full, conn, info=conn.info)
        self.sessions.add(session)
        if old is not None:
            old.link.close(StreamError("conflict", "replaced by a new session"))
        # The last-login stamp is bookkeeping (the admin's last-login command): written behind
        # the bind result, not before it. Awaited, it put a storage round trip (a thread hop and
        # a commit) on every login's path, and a store locked by another writer held logins.
        # The store's one writer thread keeps it ahead of this session's record_logout.
        self.spawn(self._record_login(str(bare)))
        await self.host.hooks.fire("session/bound", session)
        return session

    async def _record_login(self, bare: str) -> None:
        from datetime import UTC, datetime

        try:
            await self.storage.record_login(bare, datetime.now(UTC))
        except Exception as exc:
            log.warning("could not record the last login of %s: %s", bare, describe(exc))

    async def unbind(self, session: Session) -> None:
        self.sessions.remove(session)
        await self.host.hooks.fire("session/closed", session)
