#!/usr/bin/env python3
"""XMPP c2s load generator: raw asyncio + ssl, no XMPP library, for any server.

Each simulated client does what a real one does: TCP connect, stream header, STARTTLS (or direct
TLS with --direct-tls), TLS handshake verifying the certificate against --ca, SASL (PLAIN, or
SCRAM-SHA-1 / SCRAM-SHA-256 without channel binding), stream restart, resource binding, legacy
session when the server requires it, initial presence.

Scenarios (each prints one JSON object on stdout):

  logins    N logins (--logins) with C concurrent (--concurrency), each closing its stream after
            binding: logins/s and login latency percentiles (connect -> bind result).
  messages  U users (--users) log in, then exchange chat messages in pairs at a total target rate
            (--rate msg/s) for --duration seconds. Each body carries the sender, a per-sender
            sequence number and a send timestamp; receivers compute latency and count lost,
            duplicated and out-of-order messages (a jump ahead: out_of_order; a message that
            arrives after a later one of its sender: late, still received, not lost; one sent
            by an earlier run, kept by the server and delivered at this run's login: stale).
  idle      K authenticated sessions (--sessions) are opened and kept idle; the server's RSS
            (/proc/PID/status VmRSS, --pid) is read before and after: KiB per idle session.

Users are PREFIX0 .. PREFIX{U-1} at --domain (--users-prefix, --users); they all share one password,
read from the environment variable named by --password-env (never from argv). Several processes
(--procs) share the work so the generator is not the bottleneck; latencies use CLOCK_MONOTONIC,
which is shared by all processes of the machine.

    LOADGEN_PASSWORD=secret python bench/loadgen.py logins --host 127.0.0.1 --port 5222 \\
        --domain example.test --ca ca.crt --users-prefix bench --users 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import gc
import hashlib
import hmac
import importlib.util
import json
import math
import multiprocessing as mp
import os
import re
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
FEATURES_END = re.compile(rb"</(?:[\w-]+:)?features>|<(?:[\w-]+:)?features\s*/>")
STREAM_ERROR = re.compile(rb"<(?:[\w-]+:)?error[\s>].*?</(?:[\w-]+:)?error>", re.S)
BODY = re.compile(rb"<body>(\d+) (\d+) (\d+)</body>")
JID = re.compile(rb"<jid>([^<]+)</jid>")
SM_ENABLED = re.compile(rb"<enabled[^>]*>|<failed.*?(?:/>|</failed>)", re.S)
STARTTLS_REPLY = re.compile(rb"<proceed[^>]*>|<failure[^>]*>")
IQ_END = re.compile(rb"</iq>|<iq[^>]*/>")
SESSION = re.compile(rb"<session[^>]*xmpp-session[^>]*(/>|>(.*?)</session>)", re.S)
SASL_DONE = re.compile(
    rb"<success[^>]*/>|<success[^>]*>.*?</success>|<failure.*?</failure>"
    rb"|<challenge[^>]*>.*?</challenge>",
    re.S,
)


class LoginError(Exception):
    pass


def now_ns() -> int:
    return time.monotonic_ns()


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def until_due(t0: float, sent: int, rate: float) -> None:
    """Sleep until the next of `rate` messages a second from `t0` is due, `sent` being sent.

    Each message leaves at its own time (to the loop's 1 ms timer resolution), not in bursts of
    a fixed tick, whose queueing (at the server, and at the generator's own reads) would count
    as the server's latency: with 2 ms ticks p95 was 1.4 ms instead of 0.8 at 2000 msg/s, on the
    same server."""
    next_due = t0 + (sent + 1) / rate if rate > 0 else math.inf
    await asyncio.sleep(min(0.05, next_due - time.monotonic()))


def summary_ms(values_ns: list[int]) -> dict[str, float | None]:
    values = sorted(v / 1e6 for v in values_ns)
    out: dict[str, float | None] = {}
    for p in (50, 95, 99):
        v = percentile(values, p)
        out[f"p{p}_ms"] = None if v is None else round(v, 3)
    out["max_ms"] = round(values[-1], 3) if values else None
    return out


# ---- SCRAM (RFC 5802), client side, without channel binding ---------------------------------

_SALTED_CACHE: dict[tuple[str, str, bytes, int], bytes] = {}


class Scram:
    def __init__(self, hash_name: str, user: str, password: str) -> None:
        self.algo = {"SHA-1": "sha1", "SHA-256": "sha256"}[hash_name]
        self.password = password
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={name},r={self.nonce}"
        self.gs2 = "n,,"
        self.server_signature = b""

    def first(self) -> bytes:
        return (self.gs2 + self.first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs = dict(part.split("=", 1) for part in text.split(","))
        nonce, salt, iterations = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(self.nonce):
            raise LoginError("SCRAM: server nonce does not extend ours")
        key = (self.algo, self.password, salt, iterations)
        salted = _SALTED_CACHE.get(key)
        if salted is None:
            salted = hashlib.pbkdf2_hmac(self.algo, self.password.encode(), salt, iterations)
            _SALTED_CACHE[key] = salted
        client_key = hmac.new(salted, b"Client Key", self.algo).digest()
        stored_key = hashlib.new(self.algo, client_key).digest()
        without_proof = f"c={base64.b64encode(self.gs2.encode()).decode()},r={nonce}"
        auth_message = f"{self.first_bare},{text},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self.algo).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", self.algo).digest()
        self.server_signature = hmac.new(server_key, auth_message, self.algo).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = dict(part.split("=", 1) for part in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            raise LoginError("SCRAM: wrong server signature")


# ---- one client connection ----------------------------------------------------------------


@dataclass
class Options:
    host: str
    port: int
    domain: str
    prefix: str
    users: int
    password: str
    mechanism: str = "PLAIN"
    ca: str | None = None
    direct_tls: bool = False
    timeout: float = 30.0
    ports: tuple[int, ...] = ()  # several nodes of one service: each user on one of them
    placement: str = "cross"

    def port_for(self, index: int) -> int:
        """The port client `index` connects to: with several --ports, its node's."""
        if not self.ports:
            return self.port
        return self.ports[node_of(index, len(self.ports), self.placement)]


def node_of(index: int, nodes: int, placement: str) -> int:
    """Which of `nodes` nodes the user at `index` logs in to. Message partners are the pairs
    (2k, 2k+1): "cross" puts the two of a pair on different nodes (round-robin by user), "same"
    on one node (round-robin by pair)."""
    return (index if placement == "cross" else index // 2) % nodes


def client_context(opts: Options) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=opts.ca) if opts.ca else ssl.create_default_context()
    if not opts.ca:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if opts.direct_tls:
        ctx.set_alpn_protocols(["xmpp-client"])
    return ctx


class _Feed(asyncio.Protocol):
    """The application side of a logged-in client's TLS transport, once it only receives."""

    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self.data_received = on_data  # type: ignore[method-assign]

    def eof_received(self) -> bool:
        return False  # close


class Client:
    """A logged-in XMPP session over asyncio streams (client-side memory is not what we measure)."""

    def __init__(self, opts: Options, ctx: ssl.SSLContext, index: int) -> None:
        self.opts, self.ctx, self.index = opts, ctx, index
        self.user = f"{opts.prefix}{index % opts.users}"
        self.resource = f"lg{index}"  # unique: one account may carry several sessions
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buf = b""
        self.jid = ""

    async def _read_until(self, pattern: re.Pattern[bytes] | bytes) -> bytes:
        """Read until pattern matches the buffer; return and consume everything up to its end."""
        assert self.reader is not None
        while True:
            m = pattern.search(self.buf) if isinstance(pattern, re.Pattern) else None
            if m is None and isinstance(pattern, bytes):
                i = self.buf.find(pattern)
                end = -1 if i < 0 else i + len(pattern)
            else:
                end = m.end() if m else -1
            if end >= 0:
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            err = STREAM_ERROR.search(self.buf)
            if err:
                raise LoginError("stream error: " + err.group().decode(errors="replace")[:200])
            data = await self.reader.read(65536)
            if not data:
                raise LoginError("connection closed by the server")
            self.buf += data

    def receive_into(self, on_data: Callable[[bytes], None]) -> None:
        """From now on, hand what arrives straight to `on_data` from the transport's callback:
        no StreamReader and no task wake-up per read, so a message's arrival time is taken
        when its bytes are decrypted and the generator spends less CPU per message (it shares
        the machine with the server it measures)."""
        assert self.reader is not None and self.writer is not None
        # what the stream reader buffered but nobody read yet (read() takes all it has)
        pending = bytes(self.reader._buffer)  # asyncio keeps no public accessor
        self.writer.transport.set_protocol(_Feed(on_data))
        if pending:
            on_data(pending)

    def send(self, data: str | bytes) -> None:
        assert self.writer is not None
        self.writer.write(data.encode() if isinstance(data, str) else data)

    async def _open_stream(self) -> bytes:
        self.buf = b""
        self.send(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' "
            f"to='{self.opts.domain}' version='1.0'>"
        )
        return await self._read_until(FEATURES_END)

    async def login(self) -> None:
        opts = self.opts
        if opts.direct_tls:
            self.reader, self.writer = await asyncio.open_connection(
                opts.host, opts.port_for(self.index), ssl=self.ctx, server_hostname=opts.domain
            )
            features = await self._open_stream()
        else:
            self.reader, self.writer = await asyncio.open_connection(
                opts.host, opts.port_for(self.index)
            )
            features = await self._open_stream()
            if b"starttls" not in features:
                raise LoginError("server offers no STARTTLS")
            self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            reply = await self._read_until(STARTTLS_REPLY)
            if b"<proceed" not in reply:
                raise LoginError("STARTTLS refused")
            await self.writer.start_tls(self.ctx, server_hostname=opts.domain)
            features = await self._open_stream()
        await self._authenticate(features)
        features = await self._open_stream()
        self.send(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            f"<resource>{self.resource}</resource></bind></iq>"
        )
        reply = await self._read_until(IQ_END)
        m = JID.search(reply)
        if not m:
            raise LoginError("bind failed: " + reply.decode(errors="replace")[:200])
        self.jid = m.group(1).decode()
        session = SESSION.search(features)
        if session and b"optional" not in session.group(0):
            self.send(
                "<iq type='set' id='sess1'>"
                "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
            )
            await self._read_until(IQ_END)

    async def _authenticate(self, features: bytes) -> None:
        mech = self.opts.mechanism
        if f"<mechanism>{mech}</mechanism>".encode() not in features:
            raise LoginError(f"server does not offer SASL {mech}")
        if mech == "PLAIN":
            token = base64.b64encode(f"\0{self.user}\0{self.opts.password}".encode()).decode()
            self.send(f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{token}</auth>")
            reply = await self._read_until(SASL_DONE)
        else:
            scram = Scram(mech.removeprefix("SCRAM-"), self.user, self.opts.password)
            first = base64.b64encode(scram.first()).decode()
            self.send(f"<auth xmlns='{SASL_NS}' mechanism='{mech}'>{first}</auth>")
            reply = await self._read_until(SASL_DONE)
            if b"<challenge" not in reply:
                raise LoginError("SCRAM: no challenge: " + reply.decode(errors="replace")[:200])
            final = scram.final(base64.b64decode(_inner(reply)))
            self.send(f"<response xmlns='{SASL_NS}'>{base64.b64encode(final).decode()}</response>")
            reply = await self._read_until(SASL_DONE)
            if b"<challenge" in reply:  # server-final as a challenge (old style)
                scram.verify(base64.b64decode(_inner(reply)))
                self.send(f"<response xmlns='{SASL_NS}'/>")
                reply = await self._read_until(SASL_DONE)
            elif b"<success" in reply and _inner(reply):
                scram.verify(base64.b64decode(_inner(reply)))
        if b"<success" not in reply:
            raise LoginError(f"authentication failed for {self.user}: " + reply.decode()[:200])

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.write(b"</stream:stream>")
                self.writer.transport.abort()
            self.writer = None


def _inner(element: bytes) -> bytes:
    start = element.find(b">")
    end = element.rfind(b"</")
    if start < 0 or end < 0 or end <= start or element[start - 1 : start] == b"/":
        return b""
    return element[start + 1 : end].strip()


async def wait_barrier(barrier) -> None:
    if barrier is not None:
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)


async def login_many(
    opts: Options,
    ctx: ssl.SSLContext,
    indices: list[int],
    concurrency: int,
    then: Callable[[Client], Awaitable[None]] | None = None,
) -> tuple[list[Client], list[int], list[str]]:
    """Log in the users at `indices` with at most `concurrency` logins in flight, each client
    going on with `then` once bound (not timed as part of its login); the clients come back in
    the order of `indices` (failed ones left out)."""
    clients: list[Client] = []
    latencies: list[int] = []
    errors: list[str] = []
    queue = list(reversed(indices))

    async def worker() -> None:
        while queue:
            client = Client(opts, ctx, queue.pop())
            t0 = now_ns()
            try:
                async with asyncio.timeout(opts.timeout):  # no task per login, as wait_for makes
                    await client.login()
                    latencies.append(now_ns() - t0)
                    if then is not None:
                        await then(client)
            except (LoginError, OSError, ssl.SSLError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                client.close()
                continue
            clients.append(client)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    clients.sort(key=lambda c: c.index)
    return clients, latencies, errors


# ---- scenarios, per worker process --------------------------------------------------------


async def logins_worker(opts: Options, args: dict, share: list[int], barrier) -> dict:
    ctx = client_context(opts)
    await wait_barrier(barrier)
    t0, cpu0 = time.monotonic(), time.process_time()
    done: list[int] = []
    errors: list[str] = []
    queue = list(reversed(share))

    async def worker() -> None:
        while queue:
            index = queue.pop()
            client = Client(opts, ctx, index)
            start = now_ns()
            try:
                async with asyncio.timeout(opts.timeout):  # no task per login, as wait_for makes
                    await client.login()
                client.send("<presence/>")
                done.append(now_ns() - start)
            except (LoginError, OSError, ssl.SSLError, TimeoutError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            finally:
                client.close()

    await asyncio.gather(*(worker() for _ in range(args["concurrency"])))
    # this process's CPU over the logins alone, without interpreter start-up and fork
    cpu = time.process_time() - cpu0
    return {"latencies": done, "errors": errors, "wall": time.monotonic() - t0, "cpu": cpu}


async def messages_worker(opts: Options, args: dict, share: list[int], barrier) -> dict:
    """Users in `share` (an even count) pair up: share[2k] <-> share[2k+1]."""
    ctx = client_context(opts)
    clients, _, errors = await login_many(opts, ctx, share, args["concurrency"])
    if len(clients) % 2:
        clients.pop().close()
    for c in clients:
        c.send("<presence/>")
    n = len(clients)
    partner = [clients[i ^ 1].jid for i in range(n)]
    sent = [0] * n
    received = [0] * n  # by sender index
    last_seq = [-1] * n  # highest sequence number received from each sender
    seen: list[set[int]] = [set() for _ in range(n)]  # every one received, for duplicates
    duplicated = out_of_order = late = stale = 0
    started = now_ns()  # a body stamped earlier was sent by an earlier run (stored, then
    # delivered at this run's login): its sequence numbers are not this run's
    latencies: list[int] = []
    measuring = False

    def on_data(i: int, data: bytes) -> None:
        nonlocal duplicated, out_of_order, late, stale
        t = now_ns()
        buf = clients[i].buf + data
        last = 0
        for m in BODY.finditer(buf):
            last = m.end()
            sender, seq, stamp = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if stamp < started:
                stale += 1
                continue
            if seq in seen[sender]:
                duplicated += 1
                continue
            seen[sender].add(seq)
            if seq < last_seq[sender]:
                late += 1
            else:
                if seq != last_seq[sender] + 1:
                    out_of_order += 1
                last_seq[sender] = seq
            received[sender] += 1
            if measuring:
                latencies.append(t - stamp)
        cut = buf.rfind(b"</message>")
        buf = buf[max(last, cut + 10 if cut >= 0 else 0) :]
        clients[i].buf = buf if len(buf) <= 1 << 20 else buf[-4096:]

    for i, c in enumerate(clients):
        c.receive_into(functools.partial(on_data, i))
    # the clients live to the end of the run: out of the collector's view, so that a full
    # collection in the generator does not stall its reads and add its pause to the latencies
    gc.collect()
    gc.freeze()
    await wait_barrier(barrier)
    rate = args["rate"] * n / max(1, args["total_users"])  # this process's share of the rate
    duration, warmup = args["duration"], args["warmup"]
    pid = args.get("pid")
    cpu_window: list[tuple[float, float]] = []  # the server's (user, system) CPU seconds
    t0 = time.monotonic()
    total = 0
    next_sender = 0
    stalled = 0
    sent_before = 0
    own_cpu = 0.0  # this process's CPU over the measured window
    while n:
        now = time.monotonic()
        elapsed = now - t0
        if elapsed >= duration + warmup:
            break
        if elapsed >= warmup and not measuring:
            if pid:
                cpu_window.append(cpu_seconds(pid))
            sent_before, own_cpu = sum(sent), time.process_time()
        measuring = elapsed >= warmup
        due = int(rate * elapsed) - total
        for _ in range(max(0, due)):
            i = next_sender
            next_sender = (next_sender + 1) % n
            c = clients[i]
            assert c.writer is not None
            if c.writer.transport.get_write_buffer_size() > 1 << 20:
                stalled += 1
                continue
            seq = sent[i]
            sent[i] += 1
            c.writer.write(
                f"<message to='{partner[i]}' type='chat' id='m{i}-{seq}'>"
                f"<body>{i} {seq} {now_ns()}</body></message>".encode()
            )
        total += max(0, due)
        await until_due(t0, total, rate)
    send_time = time.monotonic() - t0
    if cpu_window:
        cpu_window.append(cpu_seconds(pid))
    own_cpu = time.process_time() - own_cpu if measuring else 0.0
    # drain: wait until everything sent has arrived, or the drain timeout
    deadline = time.monotonic() + args["drain"]
    while time.monotonic() < deadline and sum(received) < sum(sent):
        await asyncio.sleep(0.05)
    for c in clients:
        c.close()
    return {
        "clients": n,
        "sent": sum(sent),
        "received": sum(received),
        "lost": sum(sent) - sum(received),
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "late": late,
        "stale": stale,
        "stalled": stalled,
        "send_time": send_time,
        "cpu_window": cpu_window,
        "sent_measured": sum(sent) - sent_before,
        "cpu_measured": own_cpu,
        "latencies": latencies,
        "errors": errors,
    }


async def enable_sm(c: Client) -> None:
    """XEP-0198 with resumption on a logged-in client; LoginError if the server refuses."""
    c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    reply = await c._read_until(SM_ENABLED)
    if b"<enabled" not in reply:
        raise LoginError("stream management refused: " + reply.decode()[:200])


async def idle_worker(opts: Options, args: dict, share: list[int], barrier) -> dict:
    ctx = client_context(opts)
    sm = args["sm"]  # XEP-0198 on every session: its state is part of what idle costs

    async def settle_in(c: Client) -> None:
        if sm:
            await enable_sm(c)
        c.send("<presence/>")

    # Each client enables SM and sends its presence once bound, as a real client does. With
    # --burst, every client does so only once all are logged in, all at once: the thundering
    # herd after a restart, which leaves the server's heap fragmented (issue 14: +7 KiB a session
    # at 10 000, in pools the allocator keeps but no session holds).
    burst = args["burst"]
    clients, latencies, errors = await login_many(
        opts, ctx, share, args["concurrency"], None if burst else settle_in
    )
    if burst:
        results = await asyncio.gather(
            *(asyncio.wait_for(settle_in(c), opts.timeout) for c in clients),
            return_exceptions=True,
        )
        for c, result in zip(clients, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(f"{type(result).__name__}: {result}")
                c.close()
        clients = [c for c in clients if c.writer is not None]
    await wait_barrier(barrier)  # 1: all workers logged in; the parent measures RSS
    await wait_barrier(barrier)  # 2: measured; check that every session is still alive
    alive = sum(await asyncio.gather(*(still_alive(c) for c in clients)))
    for c in clients:
        c.close()
    return {"opened": len(clients), "alive": alive, "latencies": latencies, "errors": errors}


async def still_alive(c: Client, timeout: float = 10) -> bool:
    """The session answers a ping within `timeout` seconds."""
    c.send(f"<iq type='get' id='idleping' to='{c.opts.domain}'><ping xmlns='urn:xmpp:ping'/></iq>")
    try:
        await asyncio.wait_for(c._read_until(b"idleping"), timeout)
        return True
    except (LoginError, OSError, TimeoutError, ssl.SSLError):
        return False


WORKERS = {"logins": logins_worker, "messages": messages_worker, "idle": idle_worker}


# where uvloop costs the generator less CPU than asyncio's loop (measured on the 2-core bench
# machine, one run each: logins 1.7 vs 2.4 ms of generator CPU per login; messages at 6000 msg/s
# 8.8 vs 7.4 s of generator CPU and 11.8 vs 9.9 s of the server's)
UVLOOP_CHEAPER = {"logins"}


def loop_factory(choice: str, scenario: str):
    """The loop that takes less of the CPU the generator shares with the server it measures:
    uvloop's (TLS transport and sockets in C) for the scenarios in UVLOOP_CHEAPER when it is
    installed (`auto`), or as --loop says."""
    if choice == "asyncio" or (choice == "auto" and scenario not in UVLOOP_CHEAPER):
        return None
    try:
        import uvloop
    except ImportError:  # main() refused --loop uvloop already
        return None
    return uvloop.new_event_loop


def _worker_main(scenario, opts, args, share, barrier, queue) -> None:
    try:
        with asyncio.Runner(loop_factory=loop_factory(args["loop"], scenario)) as runner:
            result = runner.run(WORKERS[scenario](opts, args, share, barrier))
    except BaseException as exc:  # report, never hang the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
        if barrier is not None:
            barrier.abort()
    queue.put(result)


# ---- parent: split the work, collect, report ----------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(parts[11]) / tick, int(parts[12]) / tick


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Run:
    scenario: str
    opts: Options
    args: dict
    shares: list[list[int]]
    results: list[dict] = field(default_factory=list)


def run(scenario: str, opts: Options, args: dict, shares: list[list[int]], pid: int | None) -> dict:
    procs = len(shares)
    parties = procs + (1 if scenario == "idle" else 0)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(parties, timeout=args.get("barrier_timeout", 600))
    queue = ctx.Queue()
    extra: dict = {}
    if scenario == "idle" and pid:
        extra["rss_before_kib"] = rss_kib(pid)
    workers = [
        ctx.Process(target=_worker_main, args=(scenario, opts, args, share, barrier, queue))
        for share in shares
    ]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    if scenario == "idle":
        try:
            barrier.wait()
            extra["login_wall_s"] = round(time.monotonic() - t0, 2)
            time.sleep(args["settle"])
            if pid:
                extra["rss_after_kib"] = rss_kib(pid)
            barrier.wait()
        except Exception as exc:  # a worker failed and aborted the barrier
            extra["barrier"] = f"{type(exc).__name__}"
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        return {"scenario": scenario, "error": fatal[0]}
    return summarize(scenario, opts, args, results, extra)


def summarize(scenario: str, opts: Options, args: dict, results: list[dict], extra: dict) -> dict:
    latencies = [v for r in results for v in r["latencies"]]
    errors = [e for r in results for e in r["errors"]]
    out: dict = {
        "scenario": scenario,
        "host": opts.host,
        "port": opts.port,
        "ports": list(opts.ports) or None,
        "placement": opts.placement if opts.ports else None,
        "domain": opts.domain,
        "mechanism": opts.mechanism,
        "procs": len(results),
        "errors": len(errors),
        "first_errors": errors[:3],
    }
    if scenario == "logins":
        wall = max(r["wall"] for r in results)
        out.update(
            logins=len(latencies),
            concurrency=args["concurrency"] * len(results),
            wall_s=round(wall, 3),
            logins_per_s=round(len(latencies) / wall, 1) if wall else None,
            latency=summary_ms(latencies),
        )
        if latencies:  # the generator shares the cores with the server it measures
            cpu = sum(r["cpu"] for r in results)
            out["generator_cpu_ms_per_login"] = round(cpu * 1e3 / len(latencies), 3)
    elif scenario == "messages":
        sent = sum(r["sent"] for r in results)
        received = sum(r["received"] for r in results)
        send_time = max(r["send_time"] for r in results)
        out.update(
            users=sum(r["clients"] for r in results),
            target_rate=args["rate"],
            duration_s=args["duration"],
            warmup_s=args["warmup"],
            sent=sent,
            received=received,
            lost=sent - received,
            duplicated=sum(r["duplicated"] for r in results),
            out_of_order=sum(r["out_of_order"] for r in results),
            late=sum(r["late"] for r in results),
            stale=sum(r["stale"] for r in results),
            stalled_sends=sum(r["stalled"] for r in results),
            sent_per_s=round(sent / send_time, 1) if send_time else None,
            latency=summary_ms(latencies),
        )
        windows = [r["cpu_window"] for r in results if len(r.get("cpu_window", ())) == 2]
        measured = sum(r.get("sent_measured", 0) for r in results)
        if measured:  # sending and receiving, all processes: it shares the cores with the server
            cpu = sum(r["cpu_measured"] for r in results)
            out["generator_cpu_us_per_msg"] = round(cpu * 1e6 / measured, 1)
        if windows and measured:
            # the server's CPU while the generator measured, per message sent meanwhile:
            # meaningful below saturation, where what is sent is also routed
            for i, name in enumerate(("user", "sys")):
                cpu = max(w[1][i] for w in windows) - min(w[0][i] for w in windows)
                out[f"server_{name}_us_per_msg_measured"] = round(cpu * 1e6 / measured, 1)
    else:
        opened = sum(r["opened"] for r in results)
        out.update(
            opened=opened,
            alive=sum(r["alive"] for r in results),
            sm=bool(args["sm"]),
            burst=bool(args["burst"]),
            **extra,
        )
        if "rss_before_kib" in extra and "rss_after_kib" in extra and opened:
            delta = extra["rss_after_kib"] - extra["rss_before_kib"]
            out["kib_per_session"] = round(delta / opened, 1)
        out["login_latency"] = summary_ms(latencies)
    return out


def split(indices: list[int], procs: int, pairs: bool = False) -> list[list[int]]:
    """Round-robin shares; with pairs, consecutive pairs stay together in one share."""
    procs = max(1, min(procs, len(indices) // (2 if pairs else 1) or 1))
    shares: list[list[int]] = [[] for _ in range(procs)]
    step = 2 if pairs else 1
    for k, start in enumerate(range(0, len(indices), step)):
        shares[k % procs].extend(indices[start : start + step])
    return [s for s in shares if s]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=sorted(WORKERS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument(
        "--ports",
        type=lambda v: tuple(int(x) for x in v.split(",")),
        default=(),
        help="several nodes of one service, e.g. 5222,5223: each user logs in to one of them"
        " (overrides --port)",
    )
    p.add_argument(
        "--placement",
        choices=["cross", "same"],
        default="cross",
        help="with --ports: message partners on different nodes (cross) or on one (same)",
    )
    p.add_argument("--domain", required=True)
    p.add_argument("--users-prefix", default="bench")
    p.add_argument("--users", type=int, default=1000, help="accounts PREFIX0..PREFIX{N-1}")
    p.add_argument("--password-env", default="LOADGEN_PASSWORD")
    p.add_argument(
        "--mechanism", default="PLAIN", choices=["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    )
    p.add_argument(
        "--ca", help="PEM file of the CA to verify the server (default: no verification)"
    )
    p.add_argument("--direct-tls", action="store_true", help="XEP-0368 port instead of STARTTLS")
    p.add_argument("--procs", type=int, default=2, help="generator processes")
    p.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default="auto",
        help="the generator's event loop (auto: uvloop for logins when installed: cheaper there)",
    )
    p.add_argument("--concurrency", type=int, default=20, help="logins in flight (all processes)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per login")
    p.add_argument("--logins", type=int, default=400, help="logins: how many")
    p.add_argument("--rate", type=float, default=2000.0, help="messages: total msg/s")
    p.add_argument("--duration", type=float, default=10.0, help="messages: measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="messages: unmeasured seconds first")
    p.add_argument(
        "--drain", type=float, default=10.0, help="messages: seconds to wait for stragglers"
    )
    p.add_argument("--sessions", type=int, default=1000, help="idle: sessions to open")
    p.add_argument("--settle", type=float, default=3.0, help="idle: seconds before reading RSS")
    p.add_argument(
        "--pid",
        type=int,
        help="the server's pid: idle reads its RSS, messages its CPU time while measuring",
    )
    p.add_argument(
        "--sm", action="store_true", help="idle: enable stream management (XEP-0198) per session"
    )
    p.add_argument(
        "--burst",
        action="store_true",
        help="idle: SM and presence from every client at once after the last login, not each "
        "once bound",
    )
    ns = p.parse_args(argv)

    if ns.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        p.error("--loop uvloop: uvloop is not installed (pip install uvloop, or --loop auto)")
    password = os.environ.get(ns.password_env)
    if password is None:
        p.error(f"set the password in the environment variable {ns.password_env}")
    opts = Options(
        host=ns.host,
        port=ns.port,
        domain=ns.domain,
        prefix=ns.users_prefix,
        users=ns.users,
        password=password,
        mechanism=ns.mechanism,
        ca=ns.ca,
        direct_tls=ns.direct_tls,
        timeout=ns.timeout,
        ports=ns.ports,
        placement=ns.placement,
    )
    procs = max(1, ns.procs)
    if ns.scenario == "logins":
        shares = split(list(range(ns.logins)), procs)
    elif ns.scenario == "messages":
        shares = split(list(range(ns.users - ns.users % 2)), procs, pairs=True)
    else:
        if ns.sessions > ns.users * 10:
            p.error(
                "idle: --sessions may be at most 10 x --users (servers cap sessions per account)"
            )
        shares = split(list(range(ns.sessions)), procs)
    per_proc = max(1, ns.concurrency // len(shares))
    args = {
        "concurrency": per_proc,
        "rate": ns.rate,
        "duration": ns.duration,
        "warmup": ns.warmup,
        "drain": ns.drain,
        "settle": ns.settle,
        "sm": ns.sm,
        "burst": ns.burst,
        "total_users": sum(len(s) for s in shares),
        "pid": ns.pid,
        "loop": ns.loop,
    }
    result = run(ns.scenario, opts, args, shares, ns.pid)
    print(json.dumps(result, indent=2))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
