"""PBKDF2 in helper processes (server/kdf.py): real child processes over real pipes, read by the
event loop.

What must hold: every derivation equals hashlib's, whatever the hash, salt, password or the
number of derivations at once; a helper that dies, or whose caller goes away, costs no request
its answer; a helper that is not faster is not used; a stopped pool leaves no process; and no
password is on a command line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import select
import signal
from pathlib import Path

import pytest
from vines_server import kdf

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
async def pool(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", float("inf"))  # use helpers even on a slow wheel
    pool = kdf.HelperPool(size=2)
    yield pool
    await pool.close()


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


def _pids(pool: kdf.HelperPool) -> set[int]:
    return {helper.pid for helper in pool._helpers}


@pytest.mark.parametrize(("hash_name", "password", "salt", "iterations"), CASES)
async def test_a_helper_derives_what_hashlib_derives(pool, hash_name, password, salt, iterations):
    expected = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
    assert await pool.derive(hash_name, password, salt, iterations) == expected


async def test_what_a_request_cannot_say_is_derived_in_a_thread(pool, monkeypatch):
    monkeypatch.setattr(kdf, "_pool", pool)
    salt = b"s" * 300  # an imported account's salt may be long; the request has a byte for it
    assert await pool.derive("sha256", b"pw", salt, 10) == b""
    expected = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 10)
    assert await kdf.pbkdf2("sha256", b"pw", salt, 10) == expected
    assert await pool.derive("sha256", b"p" * 4096, b"salt", 10) == b""  # not one pipe write
    assert _pids(pool) == set()  # none was started for them


async def test_concurrent_derivations_share_at_most_size_helpers_each_its_own_answer(pool):
    def case(n: int) -> tuple[bytes, bytes]:
        return f"pw{n}".encode(), f"salt-{n}".encode()

    results = await asyncio.gather(*(pool.derive("sha256", *case(n), 500) for n in range(40)))
    for n, salted in enumerate(results):
        assert salted == hashlib.pbkdf2_hmac("sha256", *case(n), 500)
    assert 1 <= len(_pids(pool)) <= 2


async def test_requests_wait_rather_than_overfill_a_helpers_pipe(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", float("inf"))
    pool = kdf.HelperPool(size=1)
    most = 0
    write = kdf.Helper.derive

    def counted(helper, request, size):
        nonlocal most
        answer = write(helper, request, size)
        most = max(most, helper.queued)
        return answer

    monkeypatch.setattr(kdf.Helper, "derive", counted)
    # the longest PLAIN password and the longest salt a request can carry: ~520 bytes each
    cases = [(bytes([n]) * 255, bytes([n + 1]) * 255) for n in range(30)]
    try:
        results = await asyncio.gather(*(pool.derive("sha1", pw, salt, 300) for pw, salt in cases))
        assert results == [hashlib.pbkdf2_hmac("sha1", pw, salt, 300) for pw, salt in cases]
        assert 2 * 520 < most <= select.PIPE_BUF  # several queued, never more than fits
    finally:
        await pool.close()


async def test_a_caller_that_goes_away_leaves_the_helper_to_the_next(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", float("inf"))
    pool = kdf.HelperPool(size=1)
    try:
        first = asyncio.ensure_future(pool.derive("sha256", b"gone", b"salt", 1_000_000))
        await process.wait_for(lambda: any(h.busy for h in pool._helpers), timeout=10)
        (pid,) = _pids(pool)
        first.cancel()
        # the next request queues behind the abandoned derivation, then gets
        # an answer of its own, not the one given up on
        salted = await pool.derive("sha256", b"next", b"salt", 100)
        assert salted == hashlib.pbkdf2_hmac("sha256", b"next", b"salt", 100)
        assert _pids(pool) == {pid} and first.cancelled()
    finally:
        await pool.close()


async def test_a_helper_that_dies_costs_its_request_nothing_and_is_replaced(pool, monkeypatch):
    monkeypatch.setattr(kdf, "_pool", pool)  # what start_helpers() installs
    busy = asyncio.ensure_future(kdf.pbkdf2("sha256", b"pw", b"salt", 1_000_000))
    await process.wait_for(lambda: any(h.busy for h in pool._helpers), timeout=10)
    (pid,) = _pids(pool)
    os.kill(pid, signal.SIGKILL)  # while it derives: that request is derived in a thread
    assert await busy == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1_000_000)
    assert await pool.derive("sha256", b"pw", b"salt", 100) == hashlib.pbkdf2_hmac(
        "sha256", b"pw", b"salt", 100
    )
    (replacement,) = _pids(pool)
    assert replacement != pid
    os.kill(replacement, signal.SIGKILL)  # while idle: let go of at once, not at a request
    await process.wait_for(lambda: not pool._helpers, timeout=5)


async def test_a_stuck_helper_is_stopped_and_its_requests_derived_in_threads(
    pool, monkeypatch, caplog
):
    monkeypatch.setattr(kdf, "_pool", pool)
    monkeypatch.setattr(kdf, "STALL", 0.5)
    assert await kdf.pbkdf2("sha256", b"pw", b"salt", 100)  # a helper started
    (pid,) = _pids(pool)
    os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        expected = [hashlib.pbkdf2_hmac("sha256", b"pw%d" % n, b"salt", 100) for n in range(3)]
        waiting = [kdf.pbkdf2("sha256", b"pw%d" % n, b"salt", 100) for n in range(3)]
        assert await asyncio.wait_for(asyncio.gather(*waiting), 10) == expected
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed and reaped: nothing to resume
            os.kill(pid, signal.SIGCONT)
    await process.wait_for(lambda: not _alive(pid), timeout=5)
    assert f"PBKDF2 helper {pid} answered nothing" in caplog.text
    assert caplog.text.count("PBKDF2 helper") == 1  # one line, not one per request
    assert pid not in _pids(pool)
    salted = await pool.derive("sha256", b"pw", b"salt", 100)  # by a new helper
    assert salted == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 100)


async def test_a_helper_that_is_not_faster_is_not_used(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", 0.0)  # nothing is fast enough
    pool = kdf.HelperPool(size=1)
    monkeypatch.setattr(kdf, "_pool", pool)
    try:
        expected = hashlib.pbkdf2_hmac("sha1", b"pw", b"salt", 50)
        waiting = [pool.derive("sha1", b"pw", b"salt", 50) for _ in range(3)]
        assert await asyncio.gather(*waiting) == [b""] * 3  # the callers derive
        assert _pids(pool) == set() and pool._faster is False
        assert await kdf.pbkdf2("sha1", b"pw", b"salt", 50) == expected
    finally:
        await pool.close()


async def test_stopping_the_helpers_ends_their_processes(monkeypatch):
    monkeypatch.setattr(kdf, "FASTER", float("inf"))
    kdf.start_helpers(size=1)
    try:
        salted = await kdf.pbkdf2("sha256", b"secret", b"s" * 16, 300)
        assert salted == hashlib.pbkdf2_hmac("sha256", b"secret", b"s" * 16, 300)
        (pid,) = _pids(kdf._pool)
        assert b"vines_server.kdf_helper" in _cmdline(pid)
        assert b"secret" not in _cmdline(pid)
    finally:
        await kdf.stop_helpers()
    assert not _alive(pid)
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
