"""The PBKDF2 helper process (`python -m vines_server.kdf_helper`), started by `kdf.py`.

It imports nothing of the server: only cryptography, whose PBKDF2 runs on the OpenSSL its
wheel bundles. Requests come on stdin, answers go to stdout, one at a time:

* on start it writes `>d`: the seconds its best of three probe derivations took (kdf.PROBE);
* request: `>I` length, then `>IBB` iterations, hash id (kdf.HASH_IDS), salt length, then the
  salt and the password's UTF-8; answer: the salted password (the hash's digest size).

It exits at EOF (the server closed the pipe or died) and on any malformed request, printing
nothing: a request holds a password, and a traceback is no place for one.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

_HASHES = {1: hashes.SHA1, 2: hashes.SHA256}  # kdf.HASH_IDS
_HEAD = struct.Struct(">IBB")


def derive(hash_id: int, password: bytes, salt: bytes, iterations: int) -> bytes:
    algorithm = _HASHES[hash_id]()
    kdf = PBKDF2HMAC(algorithm, algorithm.digest_size, salt, iterations)
    return kdf.derive(password)


def _read_exactly(fd: int, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(rfd: int, wfd: int, probe_iterations: int) -> None:
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        derive(2, b"probe", b"probe-salt-16-by", probe_iterations)
        best = min(best, time.perf_counter() - began)
    _write_all(wfd, struct.pack(">d", best))
    while (size := _read_exactly(rfd, 4)) is not None:
        (n,) = struct.unpack(">I", size)
        body = _read_exactly(rfd, n)
        if body is None or n < _HEAD.size:
            return
        iterations, hash_id, salt_len = _HEAD.unpack_from(body)
        salt, password = body[_HEAD.size : _HEAD.size + salt_len], body[_HEAD.size + salt_len :]
        _write_all(wfd, derive(hash_id, password, salt, iterations))


def main() -> None:
    # the server's terminal or service manager signals the server, which closes our pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.stdin.fileno(), sys.stdout.fileno(), int(sys.argv[1]))
    except Exception:
        os._exit(3)  # the server sees EOF and derives in its own process


if __name__ == "__main__":
    main()
