"""`kill -9` loop for stream management (issue 12): nothing acknowledged is ever lost.

    python bench/sm_kill_loop.py [--runs 50] [--senders 4] [--json FILE]

One server process (the bundled server, `compare.VinesSide`) is started per run. In each run,
`--senders` clients enable XEP-0198 and send numbered chat messages as fast as the server takes
them, alternately to a recipient that is online (it enables XEP-0198 too and acknowledges
whatever it receives when asked) and to one that is offline, asking for acks every few
messages. At a random moment (0.2 to 1.5 s in) the server is killed with SIGKILL, then
restarted; both recipients log in, send presence and read what the store delivers.

Printed per run and in total: messages acknowledged to their senders (the server's h passed
them), delivered (seen by a recipient before the kill or after the restart), lost (acknowledged
and never delivered: the goal is 0), and duplicated (delivered more than once; decision 6
allows them only for messages whose recipient's ack the server never processed), and bounced
(came back to their sender as errors, e.g. the offline user's quota of 1000 was full: not lost,
the sender was told).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from compare import PREFIX, VinesSide
from loadgen import Client, Options, client_context, enable_sm

PASSWORD = "kill-loop-password"
SM = "urn:xmpp:sm:3"
ACK = re.compile(rb"<a xmlns=.urn:xmpp:sm:3. h=.(\d+).\s*/>")
REQUEST = re.compile(rb"<r xmlns=.urn:xmpp:sm:3.\s*/>")
MESSAGE_ID = re.compile(rb"<message[^>]*\sid=[\"'](k\d+-\d+-\d+)[\"']")
# a bounce (offline quota full, say): h passed it, and the sender was told it was not kept
BOUNCE_ID = re.compile(rb"<message[^>]*type=[\"']error[\"'][^>]*>|<message[^>]*>")
ONLINE, OFFLINE = 0, 1  # account indices of the two recipients; senders follow
ASK_EVERY = 5


async def sender(
    client: Client, run: int, index: int, online_jid: str, acked: list[str], bounced: set[str]
):
    """Sends until the connection dies; `acked` gets the ids the server's h passed, `bounced`
    those that came back as errors (the offline quota was full, say): h passes a bounced
    message too, but its sender was told it was not kept, so it is not counted as lost."""
    await enable_sm(client)
    sent: list[str] = []
    offline_jid = f"{PREFIX}{OFFLINE}@{client.opts.domain}"

    async def read_acks() -> None:
        assert client.reader is not None
        buf = b""
        while data := await client.reader.read(65536):
            buf += data
            cut = buf.rfind(b">") + 1
            chunk, buf = buf[:cut], buf[cut:]
            for match in ACK.finditer(chunk):
                acked[:] = sent[: int(match.group(1))]
            bounced.update(mid.decode() for mid in MESSAGE_ID.findall(chunk))

    reading = asyncio.ensure_future(read_acks())
    try:
        n = 0
        while not reading.done():
            to = online_jid if n % 2 == 0 else offline_jid
            mid = f"k{run}-{index}-{n}"
            sent.append(mid)
            client.send(f"<message to='{to}' type='chat' id='{mid}'><body>{mid}</body></message>")
            n += 1
            if n % ASK_EVERY == 0:
                client.send(f"<r xmlns='{SM}'/>")
                await client.writer.drain()
                await asyncio.sleep(0.002)
    except (ConnectionError, OSError):
        pass
    finally:
        await asyncio.gather(reading, return_exceptions=True)


async def online_recipient(client: Client, delivered: Counter) -> None:
    """Acknowledges every message it received whenever the server asks."""
    await enable_sm(client)
    handled = 0
    buf = b""
    assert client.reader is not None
    try:
        while data := await client.reader.read(65536):
            buf += data
            cut = buf.rfind(b">") + 1
            chunk, buf = buf[:cut], buf[cut:]
            for mid in MESSAGE_ID.findall(chunk):
                delivered[mid.decode()] += 1
                handled += 1
            if REQUEST.search(chunk):
                client.send(f"<a xmlns='{SM}' h='{handled}'/>")
    except (ConnectionError, OSError):
        pass


async def collect_after_restart(opts: Options, index: int, delivered: Counter) -> None:
    client = Client(opts, client_context(opts), index)
    await client.login()
    client.send("<presence/>")
    assert client.reader is not None
    buf = b""
    while True:
        try:
            data = await asyncio.wait_for(client.reader.read(65536), 1.5)
        except TimeoutError:
            break
        if not data:
            break
        buf += data
    for mid in MESSAGE_ID.findall(buf):
        delivered[mid.decode()] += 1
    client.writer.close()


async def one_run(side: VinesSide, opts: Options, run: int, senders: int) -> dict:
    side.start()
    opts.port = side.port
    ctx = client_context(opts)
    delivered: Counter = Counter()
    recipient = Client(opts, ctx, ONLINE)
    await recipient.login()
    online = asyncio.ensure_future(online_recipient(recipient, delivered))
    acked: list[list[str]] = [[] for _ in range(senders)]
    bounced: set[str] = set()
    clients = [Client(opts, ctx, 2 + i) for i in range(senders)]
    await asyncio.gather(*(c.login() for c in clients))
    tasks = [
        asyncio.ensure_future(sender(c, run, i, recipient.jid, acked[i], bounced))
        for i, c in enumerate(clients)
    ]
    await asyncio.sleep(random.uniform(0.2, 1.5))
    assert side.process is not None
    os.kill(side.process.pid, signal.SIGKILL)
    side.process.wait()
    side.process = None
    await asyncio.wait([*tasks, online], timeout=10)
    for c in [recipient, *clients]:
        c.writer.close()

    side.start()
    opts.port = side.port
    await collect_after_restart(opts, ONLINE, delivered)
    await collect_after_restart(opts, OFFLINE, delivered)
    side.stop()
    acknowledged = {mid for ids in acked for mid in ids} - bounced
    lost = acknowledged - set(delivered)
    return {
        "run": run,
        "acknowledged": len(acknowledged),
        "delivered": len(delivered),
        "lost": len(lost),
        "bounced": len(bounced),
        "duplicated": sum(1 for n in delivered.values() if n > 1),
    }


async def main_async(ns: argparse.Namespace, side: VinesSide) -> dict:
    opts = Options("127.0.0.1", 0, side.domain, PREFIX, 2 + ns.senders, PASSWORD)
    opts.ca = str(side.ca_file)
    rows = []
    for run in range(ns.runs):
        row = await one_run(side, opts, run, ns.senders)
        rows.append(row)
        print(
            f"run {run:3d}: acknowledged {row['acknowledged']:6d}  delivered {row['delivered']:6d}"
            f"  lost {row['lost']}  duplicated {row['duplicated']}"
            f"  bounced {row['bounced']}",
            flush=True,
        )
    keys = ("acknowledged", "delivered", "lost", "duplicated", "bounced")
    total = {k: sum(r[k] for r in rows) for k in keys}
    print(
        f"runs {len(rows)}: acknowledged {total['acknowledged']}, delivered {total['delivered']}, "
        f"lost {total['lost']} (goal 0), duplicated {total['duplicated']}, "
        f"bounced {total['bounced']} (offline quota full: the sender got an error)"
    )
    return {"runs": rows, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args()
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # closing sockets of a dead server
    random.seed(ns.seed if ns.seed is not None else time.time_ns())
    side = VinesSide(Path(tempfile.mkdtemp(prefix="sm-kill-")), 2 + ns.senders, PASSWORD, 10_000)
    result = asyncio.run(main_async(ns, side))
    if ns.json:
        ns.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
