"""PBKDF2, in helper processes when they derive faster than this one (issue 14).

A PLAIN login costs one PBKDF2 (10 000 rounds by default). hashlib derives on the OpenSSL the
system's Python links; OpenSSL 3.0 sets up a digest context on every round, so 10 000 rounds of
SHA-256 take it about 2.4 ms, where cryptography's wheel (its own OpenSSL) takes 1.3. But
cryptography holds the GIL while it derives: in a thread it would stall the event loop as long.
So the server (`start_helpers`) derives in helper processes (`kdf_helper.py`), one derivation
at a time each, over a pipe; the thread that asked waits there with the GIL released.

A helper starts at the first derivation (a fresh server has none) and when all are busy, up to
one per spare core. Its first words say how long its probe derivation took: unless that is
clearly faster than hashlib here (a cryptography built on the system's OpenSSL is not), no
helper is used. A helper that fails costs its request nothing: it is derived here instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import sys
import threading
from typing import IO

from vines_server.kdf_helper import (
    HASH_NAMES,
    LENGTH,
    PROBE_TIME,
    REQUEST,
    probe,
    read_exactly,
    write_all,
)

log = logging.getLogger("vines_server.kdf")

PROBE = 2000  # rounds of the probe derivation both sides time at a helper's start
FASTER = 0.8  # a helper is used when its probe takes at most this share of hashlib's
MAX_HELPERS = 4


def pbkdf2(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC (hashlib's hash names): in a helper when the server started them and they
    are faster, else here. Blocking: the event loop calls it from a thread."""
    pool = _pool
    if pool is not None and (salted := pool.derive(hash_name, password, salt, iterations)):
        return salted
    return hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)


def start_helpers(size: int | None = None) -> None:
    """Derive in helper processes from now on (the server's process calls it, not the CLI)."""
    global _pool
    if _pool is None:
        spare = len(os.sched_getaffinity(0)) - 1
        _pool = HelperPool(size or min(MAX_HELPERS, max(1, spare)))


def stop_helpers() -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.close()


_pool: HelperPool | None = None


def _read(stream: IO[bytes], n: int) -> bytes:
    data = read_exactly(stream.fileno(), n)
    if data is None:
        raise EOFError("the PBKDF2 helper exited")
    return data


class Helper:
    """One helper process."""

    def __init__(self) -> None:
        import subprocess  # only a server that derives needs it

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "vines_server.kdf_helper", str(PROBE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in, self._out = self._proc.stdin, self._proc.stdout
        try:
            (self.probe,) = PROBE_TIME.unpack(_read(self._out, PROBE_TIME.size))
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def derive(self, hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        """Raises OSError or EOFError when the helper is gone."""
        body = REQUEST.pack(iterations, HASH_NAMES.index(hash_name), len(salt)) + salt + password
        write_all(self._in.fileno(), LENGTH.pack(len(body)) + body)
        return _read(self._out, hashlib.new(hash_name).digest_size)

    def close(self) -> None:
        self._in.close()  # the helper exits at EOF
        try:
            self._proc.wait(timeout=1)
        except Exception:
            self._proc.kill()
            self._proc.wait()
        self._out.close()


class HelperPool:
    """Helpers for the threads that derive: each takes an idle one, or starts one while fewer
    than `size` run, or waits for one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: queue.SimpleQueue[Helper] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0
        self._faster: bool | None = None  # decided at the first helper's start
        self._closed = False

    def derive(self, hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        """The salted password, or b"" when the caller must derive it itself."""
        if hash_name not in HASH_NAMES or len(salt) > 255 or not 0 < iterations < 1 << 32:
            return b""  # what the helpers' requests cannot say
        helper = self._take()
        if helper is None:
            return b""
        try:
            salted = helper.derive(hash_name, password, salt, iterations)
        except (OSError, EOFError) as exc:
            log.warning("PBKDF2 helper failed (%s): deriving in the server's process", exc)
            self._retire(helper)
            return b""
        if self._closed:
            self._retire(helper)
        else:
            self._idle.put(helper)
        return salted

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                helper = self._idle.get_nowait()
            except queue.Empty:
                return
            self._retire(helper)

    def _take(self) -> Helper | None:
        while self._faster is not False and not self._closed:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                start = self._running < self.size
                self._running += start
            if start:
                return self._start()
            try:
                return self._idle.get(timeout=0.05)  # a busy helper may free up, or fail
            except queue.Empty:
                pass
        return None

    def _start(self) -> Helper | None:
        try:
            helper = Helper()
        except (OSError, EOFError) as exc:
            log.warning("cannot start a PBKDF2 helper (%s): this process derives", exc)
            with self._lock:
                self._running -= 1
            self._faster = False  # not again at every login
            return None
        if self._faster is None:
            self._faster = self._decide(helper.probe)
            if not self._faster:
                self._retire(helper)
                return None
        return helper

    def _decide(self, helper_time: float) -> bool:
        # CPU time on both sides: wall time here would count the wait for the GIL, which a
        # busy event loop holds, and favour a helper that is no faster
        own = probe(hashlib.pbkdf2_hmac, PROBE)
        faster = helper_time <= FASTER * own
        log.info(
            "PBKDF2 of %d rounds: %.2f ms here, %.2f ms in a helper process: %s",
            PROBE,
            own * 1000,
            helper_time * 1000,
            "helpers derive" if faster else "this process derives",
        )
        return faster

    def _retire(self, helper: Helper) -> None:
        helper.close()
        with self._lock:
            self._running -= 1
