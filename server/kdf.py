"""PBKDF2 for PLAIN logins, off the event loop: in helper processes when they derive faster than
this one, else in a thread (issue 14).

A PLAIN login costs one PBKDF2 (10 000 rounds by default). hashlib derives on the OpenSSL the
system's Python links; OpenSSL 3.0 sets up a digest context on every round, so 10 000 rounds of
SHA-256 take it about 2.4 ms, where cryptography's wheel (its own OpenSSL) takes 1.3. But
cryptography holds the GIL while it derives: in a thread it would stall the event loop as long.
So the server (`start_helpers`) derives in helper processes (`kdf_helper.py`) over pipes the
event loop watches like sockets: a request is one write, its answer a readable pipe, and a
helper finds its next request waiting in the pipe. Nothing waits in a thread: a thread per
derivation cost every login two hand-overs between threads (a wait for the GIL, a wake-up of
the loop), and the helper sat idle until the loop had handed it the next request: at 300
logins/s on two cores, about 17 of a login's 60 ms.

A helper starts at the first derivation (a fresh server has none) and when all are busy, up to
one per spare core. Its first words say how long its probe derivation took: unless that is
clearly faster than hashlib here (a cryptography built on the system's OpenSSL is not), no
helper is used and hashlib derives in a thread (it releases the GIL). A helper that fails, or
answers nothing for STALL seconds while requests wait (stopped, traced), costs them nothing:
they are derived in threads, and the next request starts another helper.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import select
import subprocess
import sys
from collections import deque
from collections.abc import Callable

from vines_server.kdf_helper import ANSWER_SIZES, PROBE_TIME, probe, read_exactly, request

log = logging.getLogger("vines_server.kdf")

PROBE = 2000  # rounds of the probe derivation both sides time at a helper's start
FASTER = 0.8  # a helper is used when its probe takes at most this share of hashlib's
MAX_HELPERS = 4
# Seconds without an answer while requests wait: the helper is stuck (stopped, traced) and is
# killed, its requests go to threads. One derivation of 1 000 000 rounds (the most an imported
# account may have) takes ~0.15 s, so a busy helper never comes near.
STALL = 10.0


async def pbkdf2(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC (hashlib's hash names), without holding up the event loop: in a helper when
    the server started them and they are faster, else in a thread."""
    pool = _pool
    if pool is not None and (salted := await pool.derive(hash_name, password, salt, iterations)):
        return salted
    return await asyncio.to_thread(hashlib.pbkdf2_hmac, hash_name, password, salt, iterations)


def start_helpers(size: int | None = None) -> None:
    """Derive in helper processes from now on (the server's process calls it, not the CLI)."""
    global _pool
    if _pool is None:
        spare = len(os.sched_getaffinity(0)) - 1
        _pool = HelperPool(size or min(MAX_HELPERS, max(1, spare)))


async def stop_helpers() -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        await pool.close()


_pool: HelperPool | None = None


def _spawn() -> tuple[subprocess.Popen[bytes], float]:
    """A new helper and the CPU seconds of its probe (blocking: its start-up takes ~0.1 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vines_server.kdf_helper", str(PROBE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None
    words = read_exactly(proc.stdout.fileno(), PROBE_TIME.size)
    if words is None:
        _end(proc)
        raise EOFError("the PBKDF2 helper exited at start")
    return proc, PROBE_TIME.unpack(words)[0]


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Close the helper's pipes (it exits at EOF) and reap it (blocking)."""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Helper:
    """One helper process, read by the event loop. Requests queue in its pipe, so it goes from
    one derivation to the next without waiting for the loop to hand it another; the answers come
    back in order. It tells `changed` of each answer (True) and of its end (False)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        probe: float,
        changed: Callable[[Helper, bool], None],
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._proc, self.probe, self._changed = proc, probe, changed
        self._in, self._out = proc.stdin.fileno(), proc.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        # the requests in flight, oldest first: the answer's future, its size, the request's
        self._pending: deque[tuple[asyncio.Future[bytes], int, int]] = deque()
        self.queued = 0  # bytes of the requests in flight: at most what its pipe holds
        self._received = b""
        self._ended: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._progress = 0.0  # loop time of its last answer, or of the request that woke it
        self._watch: asyncio.TimerHandle | None = None  # for a stall, while requests wait
        self._loop.add_reader(self._out, self._readable)

    @classmethod
    async def start(cls, changed: Callable[[Helper, bool], None]) -> Helper:
        return cls(*await asyncio.to_thread(_spawn), changed)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def busy(self) -> int:
        return len(self._pending)

    def fits(self, request: bytes) -> bool:
        """Whether its pipe surely has room for `request`: a pipe holds at least PIPE_BUF
        bytes, and a write of at most that much goes in whole or not at all (POSIX)."""
        return self._ended is None and self.queued + len(request) <= select.PIPE_BUF

    def derive(self, request: bytes, size: int) -> asyncio.Future[bytes]:
        """The future of the answer (`size` bytes) to `request`, which must fit(); it fails
        with EOFError if the helper goes first."""
        answer = self._loop.create_future()
        if not self._pending:  # it was idle: the wait for an answer starts now
            self._progress = self._loop.time()
            if self._watch is None:
                self._watch = self._loop.call_later(STALL, self._check_progress)
        self._pending.append((answer, size, len(request)))
        self.queued += len(request)
        try:
            os.write(self._in, request)
        except OSError:  # EPIPE: it died since its last answer
            self._gone("exited")
        return answer

    def _readable(self) -> None:
        try:
            chunk = os.read(self._out, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._gone("exited")
            return
        self._received += chunk
        answered = False
        while self._pending and len(self._received) >= self._pending[0][1]:
            answer, size, length = self._pending.popleft()
            salted, self._received = self._received[:size], self._received[size:]
            self.queued -= length
            answered = True
            if not answer.cancelled():  # its caller went away: the answer is dropped
                answer.set_result(salted)
        if self._received and not self._pending:
            self._gone("wrote what nobody asked for")
        elif answered:
            self._progress = self._loop.time()
            self._changed(self, True)

    def _check_progress(self) -> None:
        self._watch = None
        if not self._pending or self._ended is not None:
            return
        quiet = self._loop.time() - self._progress
        if quiet < STALL:
            self._watch = self._loop.call_later(STALL - quiet, self._check_progress)
            return
        self._proc.kill()
        self._gone(f"answered nothing for {quiet:.0f} s and was stopped")

    def _gone(self, why: str) -> None:
        if self._ended is None:
            # once per helper, not once per request it leaves behind
            log.warning("PBKDF2 helper %d %s: its requests are derived in threads", self.pid, why)
            self.close()
            self._changed(self, False)

    def close(self) -> asyncio.Future[None]:
        """Let the helper go; the future is done once the process is reaped. Requests in flight
        fail with EOFError (their callers derive elsewhere)."""
        if self._ended is None:
            if self._watch is not None:
                self._watch.cancel()
            self._loop.remove_reader(self._out)
            for answer, _, _ in self._pending:
                if not answer.done():
                    answer.set_exception(EOFError("the PBKDF2 helper exited"))
            self._pending.clear()
            self._ended = self._loop.run_in_executor(None, _end, self._proc)
        return self._ended


class HelperPool:
    """Helpers for the event loop: a derivation goes to the least busy helper with room in its
    pipe; another helper starts while all are busy and fewer than `size` run."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._helpers: set[Helper] = set()
        self._waiting: deque[asyncio.Future[None]] = deque()  # for room in a pipe
        self._starting = 0
        self._launches: set[asyncio.Task[None]] = set()
        self._faster: bool | None = None  # decided at the first helper's start
        self._closed = False

    async def derive(self, hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        """The salted password, or b"" when the caller must derive it another way."""
        asked = request(hash_name, password, salt, iterations)
        if asked is None or len(asked) > select.PIPE_BUF:
            return b""  # what a request cannot say, or not in one write
        while self._faster is not False and not self._closed:
            helper = min(
                (h for h in self._helpers if h.fits(asked)), key=lambda h: h.busy, default=None
            )
            running = len(self._helpers) + self._starting
            # another only once the first has shown that helpers are faster
            busy = helper is None or helper.busy
            if busy and running < self.size and (self._faster or not running):
                self._launch()
            if helper is not None:
                try:
                    return await helper.derive(asked, ANSWER_SIZES[hash_name])
                except EOFError:  # the helper went (and said why)
                    return b""
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            await waiter
        return b""

    async def close(self) -> None:
        self._closed = True
        self._wake()
        await asyncio.gather(*self._launches, return_exceptions=True)  # each closes its own
        helpers, self._helpers = self._helpers, set()
        await asyncio.gather(*(helper.close() for helper in helpers))

    def _launch(self) -> None:
        self._starting += 1
        task = asyncio.ensure_future(self._start())
        self._launches.add(task)
        task.add_done_callback(self._launches.discard)

    async def _start(self) -> None:
        helper = None
        try:
            helper = await Helper.start(self._changed)
            if self._faster is None:
                self._faster = await self._decide(helper.probe)
        except (OSError, EOFError) as exc:
            log.warning("cannot start a PBKDF2 helper (%s): deriving in threads", exc)
            self._faster = False  # not again at every login
        finally:
            self._starting -= 1
        if helper is not None and self._faster and not self._closed:
            self._helpers.add(helper)
        elif helper is not None:
            await helper.close()
        self._wake()  # the waiting look again: at the new helper, or to derive in threads

    async def _decide(self, helper_time: float) -> bool:
        # CPU time on both sides: wall time here would count the wait for the GIL, which a
        # busy event loop holds, and favour a helper that is no faster
        own = await asyncio.to_thread(probe, hashlib.pbkdf2_hmac, PROBE)
        faster = helper_time <= FASTER * own
        log.info(
            "PBKDF2 of %d rounds: %.2f ms here, %.2f ms in a helper process: %s",
            PROBE,
            own * 1000,
            helper_time * 1000,
            "helpers derive" if faster else "threads derive",
        )
        return faster

    def _changed(self, helper: Helper, alive: bool) -> None:
        """A helper answered (room in its pipe), or is gone (a new one may start)."""
        if not alive or self._closed:
            self._helpers.discard(helper)
            helper.close()
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
