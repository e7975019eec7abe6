"""PBKDF2 in helper processes (server/kdf.py): real child processes over real pipes.

What must hold: every derivation equals hashlib's, whatever the hash, salt, password or the
number of threads asking; a helper that dies costs its request nothing; a helper that is not
faster is not used; a stopped pool leaves no process; and no password is on a command line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import queue
import signal
import threading
from pathlib import Path

import pytest
from vines_server import kdf
from vines_server.xmpp.sasl import credentials

from tests.server import test_admin_process as process
from tests.support.xmpp import PASSWORD, RawClient

CASES = [
    ("sha256", b"benchpw", b"0123456789abcdef", 10_000),
    ("sha1", b"benchpw", b"0123456789abcdef", 4_096),
    ("sha256", "pässwörd ☃".encode(), os.urandom(16), 1),
    ("sha1", b"\xff" * 255, b"", 2),  # the longest PLAIN password, an empty salt
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


@pytest.fixture
def pool(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", float("inf"))  # use helpers even on a slow wheel
    pool = kdf.HelperPool(size=2)
    yield pool
    pool.close()


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _helpers(pool: kdf.HelperPool) -> list[kdf.Helper]:
    """The idle helpers (taken out and put back)."""
    found = []
    while True:
        try:
            found.append(pool._idle.get_nowait())
        except queue.Empty:
            break
    for helper in found:
        pool._idle.put(helper)
    return found


@pytest.mark.parametrize(("hash_name", "password", "salt", "iterations"), CASES)
def test_a_helper_derives_what_hashlib_derives(pool, hash_name, password, salt, iterations):
    expected = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
    assert pool.derive(hash_name, password, salt, iterations) == expected


def test_what_a_request_cannot_say_is_derived_here(pool, monkeypatch):
    monkeypatch.setattr(kdf, "_pool", pool)
    salt = b"s" * 300  # an imported account's salt may be long; the request has a byte for it
    assert pool.derive("sha256", b"pw", salt, 10) == b""
    assert kdf.pbkdf2("sha256", b"pw", salt, 10) == hashlib.pbkdf2_hmac("sha256", b"pw", salt, 10)
    assert _helpers(pool) == []  # none was started for it


def test_threads_share_at_most_size_helpers_and_each_gets_its_own_answer(pool):
    results: dict[int, bytes] = {}

    def work(n: int) -> None:
        for k in range(5):
            salt = f"salt-{n}-{k}".encode()
            results[n * 10 + k] = pool.derive("sha256", f"pw{n}".encode(), salt, 500)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key, salted in results.items():
        n, k = divmod(key, 10)
        salt = f"salt-{n}-{k}".encode()
        assert salted == hashlib.pbkdf2_hmac("sha256", f"pw{n}".encode(), salt, 500)
    assert len(results) == 40
    assert 1 <= len(_helpers(pool)) <= 2


def test_a_helper_that_dies_costs_its_request_nothing_and_is_replaced(pool, monkeypatch):
    monkeypatch.setattr(kdf, "_pool", pool)  # what start_helpers() installs
    first = kdf.pbkdf2("sha256", b"pw", b"salt", 100)
    (helper,) = _helpers(pool)
    os.kill(helper.pid, signal.SIGKILL)
    # the request that finds it dead is derived in this process
    assert kdf.pbkdf2("sha256", b"pw", b"salt", 100) == first
    assert pool.derive("sha256", b"pw", b"salt", 100) == first  # by a new helper
    (replacement,) = _helpers(pool)
    assert replacement.pid != helper.pid


def test_a_helper_that_is_not_faster_is_not_used(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", 0.0)  # nothing is fast enough
    pool = kdf.HelperPool(size=1)
    try:
        expected = hashlib.pbkdf2_hmac("sha1", b"pw", b"salt", 50)
        assert pool.derive("sha1", b"pw", b"salt", 50) == b""  # the caller derives
        assert _helpers(pool) == [] and pool._running == 0
        assert kdf.pbkdf2("sha1", b"pw", b"salt", 50) == expected
    finally:
        pool.close()


def test_stopping_the_helpers_ends_their_processes(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", float("inf"))
    kdf.start_helpers(size=1)
    try:
        keys = credentials.derive("secret", "SHA-256", 300, b"s" * 16)
        plain = hashlib.pbkdf2_hmac("sha256", b"secret", b"s" * 16, 300)
        assert keys == credentials.keys_from_salted("SHA-256", b"s" * 16, 300, plain)
        (helper,) = _helpers(kdf._pool)
        assert b"vines_server.kdf_helper" in _cmdline(helper.pid)
        assert b"secret" not in _cmdline(helper.pid)
    finally:
        kdf.stop_helpers()
    assert not _alive(helper.pid)
    assert kdf._pool is None


async def test_the_server_process_checks_plain_passwords_in_a_helper(tmp_path, pki):
    await process.create_accounts(tmp_path, PASSWORD, process.ADMIN)
    config = process.write_config(tmp_path, pki)
    state_file, log = tmp_path / "vines.state.json", tmp_path / "vines.log"
    proc = await process.start_logged(config, log)
    try:
        await process.wait_for(state_file.exists)
        live = process.Live(pki, state_file)
        for password, answer in ((PASSWORD, rb"<success"), ("wrong", rb"<failure")):
            raw = await RawClient.connect(live.port(), pki.ca_file)
            await raw.starttls()
            await raw.auth_plain("admin", password)
            await raw.read_until(answer)
            raw.close()
        assert "PBKDF2 of 2000 rounds" in log.read_text()
        helpers = [pid for pid in _children(proc.pid) if b"kdf_helper" in _cmdline(pid)]
        used = "helpers derive" in log.read_text()
        assert len(helpers) == (1 if used else 0)
        token = base64.b64encode(f"\0admin\0{PASSWORD}".encode())
        for pid in helpers:
            assert PASSWORD.encode() not in _cmdline(pid) and token not in _cmdline(pid)
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    for pid in helpers:
        await process.wait_for(lambda pid=pid: not _alive(pid), timeout=5)
