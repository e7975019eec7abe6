"""The PBKDF2 helper process (`python -m vines_server.kdf_helper`), started by `kdf.py`.

It imports nothing of the server: only cryptography, whose PBKDF2 runs on the OpenSSL its
wheel bundles. Requests come on stdin, answers go to stdout, one at a time:

* on start it writes PROBE_TIME: the CPU seconds of its `probe()` (kdf.PROBE rounds);
* request: LENGTH, then REQUEST (iterations, index into HASH_NAMES, salt length), the salt and
  the password's UTF-8; answer: the salted password (the hash's digest size).

The server imports this module for the format and `probe()`: cryptography (several MB of
memory) loads in the helper alone.

It exits at EOF (the server closed the pipe or died) and on any malformed request, printing
nothing: a request holds a password, and a traceback is no place for one.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time
from collections.abc import Callable

HASH_NAMES = ("sha1", "sha256")  # hashlib's names; a request says the index
ANSWER_SIZES = {"sha1": 20, "sha256": 32}  # the salted password: the hash's digest size
LENGTH = struct.Struct(">I")  # before each request: its length
REQUEST = struct.Struct(">IBB")  # iterations, hash index, salt length
PROBE_TIME = struct.Struct(">d")


def request(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes | None:
    """The request's bytes, or None for what the format cannot say (another hash, a salt over
    255 bytes, a round count outside 32 bits)."""
    if hash_name not in ANSWER_SIZES or len(salt) > 255 or not 0 < iterations < 1 << 32:
        return None
    body = REQUEST.pack(iterations, HASH_NAMES.index(hash_name), len(salt)) + salt + password
    return LENGTH.pack(len(body)) + body


def derive(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    algorithm = getattr(hashes, hash_name.upper())()  # hashes.SHA1, hashes.SHA256
    kdf = PBKDF2HMAC(algorithm, algorithm.digest_size, salt, iterations)
    return kdf.derive(password)


def probe(pbkdf2: Callable[[str, bytes, bytes, int], bytes], rounds: int) -> float:
    """CPU seconds of the best of seven derivations of the same input (both sides time this)."""
    best = float("inf")
    # seven, not three: with three, one busy moment on a shared host once made a helper that
    # derives in half the time look no faster (0.40 against 0.45 ms), and logins went to threads
    for _ in range(7):
        began = time.thread_time()
        pbkdf2("sha256", b"probe", b"probe-salt-16-by", rounds)
        best = min(best, time.thread_time() - began)
    return best


def read_exactly(fd: int, n: int) -> bytes | None:
    """`n` bytes, or None at EOF."""
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(rfd: int, wfd: int, probe_rounds: int) -> None:
    write_all(wfd, PROBE_TIME.pack(probe(derive, probe_rounds)))
    while (size := read_exactly(rfd, LENGTH.size)) is not None:
        (n,) = LENGTH.unpack(size)
        body = read_exactly(rfd, n)
        if body is None or n < REQUEST.size:
            return
        iterations, hash_index, salt_len = REQUEST.unpack_from(body)
        salt = body[REQUEST.size : REQUEST.size + salt_len]
        password = body[REQUEST.size + salt_len :]
        write_all(wfd, derive(HASH_NAMES[hash_index], password, salt, iterations))


def main() -> None:
    # the server's terminal or service manager signals the server, which closes our pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.stdin.fileno(), sys.stdout.fileno(), int(sys.argv[1]))
    except Exception:
        os._exit(3)  # the server sees EOF and derives in its own process


if __name__ == "__main__":
    main()
