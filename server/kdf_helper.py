"""The PBKDF2 helper process (`python -m vines_server.kdf_helper`), started by `kdf.py`.

It imports nothing of the server: only cryptography, whose PBKDF2 runs on the OpenSSL its
wheel bundles. Requests come on stdin, answers go to stdout, one at a time:

* on start it writes `>d`: the CPU seconds its best of three probe derivations took (kdf.PROBE);
* request: `>I` length, then REQUEST (iterations, hash id from HASH_IDS, salt length), then the
  salt and the password's UTF-8; answer: the salted password (the hash's digest size).

The server imports this module for HASH_IDS and REQUEST only: cryptography (several MB of
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

HASH_IDS = {"sha1": 1, "sha256": 2}  # hashlib's names
REQUEST = struct.Struct(">IBB")  # iterations, hash id, salt length


def derive(hash_id: int, password: bytes, salt: bytes, iterations: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    algorithm = {1: hashes.SHA1, 2: hashes.SHA256}[hash_id]()
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
        began = time.thread_time()
        derive(2, b"probe", b"probe-salt-16-by", probe_iterations)
        best = min(best, time.thread_time() - began)
    _write_all(wfd, struct.pack(">d", best))
    while (size := _read_exactly(rfd, 4)) is not None:
        (n,) = struct.unpack(">I", size)
        body = _read_exactly(rfd, n)
        if body is None or n < REQUEST.size:
            return
        iterations, hash_id, salt_len = REQUEST.unpack_from(body)
        salt = body[REQUEST.size : REQUEST.size + salt_len]
        password = body[REQUEST.size + salt_len :]
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
