"""A-04: does a failed login tell an unknown user from a known one with a wrong password?

    python bench/auth_timing.py [--rounds 200] [--iterations 10000]

Starts the bundled server in-process on loopback (generated certificates, SQLite in a temp dir,
per-IP bans raised so the run is not banned), creates one account, then alternates failed logins
as that account with a wrong password and as a user that does not exist, each on a fresh TLS
connection. Per mechanism it times, from the client's send to the server's answer:

- SCRAM-SHA-256 and SCRAM-SHA-1: client-first -> server-first (account lookup, or the fake salt)
  and client-final -> <failure/> (proof check);
- PLAIN: <auth/> -> <failure/> (PBKDF2 of the offered password either way).

It prints each distribution (median, mean, p10, p90 in ms) and the difference of the medians
(unknown - known) in ms and in percent; the security plan asks for within 10 %. The answers
themselves are compared too: they must be byte-identical.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.support

from vines_server.xmpp.sasl.client import ScramClient  # noqa: E402
from vines_server.xmpp.sasl.credentials import derive_all  # noqa: E402

from tests.support.xmpp import DOMAIN, RawClient, make_pki, running_server  # noqa: E402

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
FAILURE = rb"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>.*?</failure>"
KNOWN, UNKNOWN = "alice", "nobody"


async def timed(client: RawClient, element: str, answer: bytes) -> tuple[float, bytes]:
    start = time.perf_counter()
    await client.send(element)
    got = await client.read_until(answer, 30)
    return (time.perf_counter() - start) * 1000, got


async def attempt(h, mechanism: str, user: str) -> dict[str, tuple[float, bytes]]:
    """One failed login on a fresh connection; returns {step: (ms, answer)}."""
    client = await RawClient.connect(h.port(), h.pki.ca_file)
    try:
        await client.starttls()
        if mechanism == "PLAIN":
            token = base64.b64encode(f"\0{user}\0wrong password".encode()).decode()
            auth = f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>"
            return {"auth": await timed(client, auth, FAILURE)}
        scram = ScramClient(mechanism.removeprefix("SCRAM-"), user, "wrong password")
        first = base64.b64encode(scram.first()).decode()
        auth = f"<auth xmlns='{SASL}' mechanism='{mechanism}'>{first}</auth>"
        ms_first, challenge = await timed(client, auth, rb"</challenge>")
        server_first = base64.b64decode(re.search(rb">([^<]*)</challenge>", challenge)[1])
        final = base64.b64encode(scram.final(server_first)).decode()
        response = f"<response xmlns='{SASL}'>{final}</response>"
        ms_final, failure = await timed(client, response, FAILURE)
        # the salt differs per user by design; the iteration count must not
        iterations = re.search(rb"i=(\d+)", server_first)[1]
        return {"first": (ms_first, iterations), "final": (ms_final, failure)}
    finally:
        client.close()


def summary(values: list[float]) -> str:
    q = statistics.quantiles(values, n=10)
    return (
        f"median {statistics.median(values):7.2f}  mean {statistics.fmean(values):7.2f}  "
        f"p10 {q[0]:7.2f}  p90 {q[-1]:7.2f}"
    )


async def run(rounds: int, iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp) / "pki")
        limits = {"pbkdf2_iterations": iterations, "auth_failures_per_ip": 10**9}
        async with running_server(Path(tmp), pki, limits=limits) as h:
            await h.server.storage.create_account(
                f"{KNOWN}@{DOMAIN}", derive_all("the real password", iterations)
            )
            print(f"{rounds} failed logins per user and mechanism, PBKDF2 {iterations} iterations")
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
                times: dict[tuple[str, str], list[float]] = {}
                answers: dict[tuple[str, str], set[bytes]] = {}
                for _ in range(rounds):
                    for user in (KNOWN, UNKNOWN):  # alternated, so drift hits both alike
                        for step, (ms, answer) in (await attempt(h, mechanism, user)).items():
                            times.setdefault((step, user), []).append(ms)
                            answers.setdefault((step, user), set()).add(answer)
                for step in dict.fromkeys(s for s, _ in times):
                    known, unknown = times[(step, KNOWN)], times[(step, UNKNOWN)]
                    diff = statistics.median(unknown) - statistics.median(known)
                    same = answers[(step, KNOWN)] == answers[(step, UNKNOWN)]
                    print(f"{mechanism} {step}:")
                    print(f"  wrong password  {summary(known)} ms")
                    print(f"  unknown user    {summary(unknown)} ms")
                    print(
                        f"  difference of medians {diff:+.2f} ms "
                        f"({100 * diff / statistics.median(known):+.1f} %); "
                        f"answers identical: {'yes' if same else 'NO'}",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.iterations))


if __name__ == "__main__":
    main()
