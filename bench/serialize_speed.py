#!/usr/bin/env python3
"""Micro-benchmark of stanza.serialize() on the hot path: a typical chat message (body, chat
state, receipt request, origin id, stanza id), a 200-item roster result, a stanza error with
text, and the namespace blow-up stanza (a long namespace declared once, used by 1 000 children).

    python bench/serialize_speed.py                       # this checkout's stanza.py
    git show main:server/xmpp/stanza.py > /tmp/old.py
    python bench/serialize_speed.py --stanza /tmp/old.py  # another version, for before/after

Prints the best of --repeat runs, in microseconds per call, and the output size in bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import timeit
from pathlib import Path
from types import ModuleType

from vines_server.xmpp import ns
from vines_server.xmpp.parser import ParserLimits, parse_fragment

CHAT = (
    "<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat'"
    " id='ktx72v49' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/>"
    "<request xmlns='urn:xmpp:receipts'/>"
    "<origin-id xmlns='urn:xmpp:sid:0' id='de305d54-75b4-431b-adb2-eb6b9e546014'/>"
    "<stanza-id xmlns='urn:xmpp:sid:0' id='5f3dbc5e' by='juliet@example.com'/></message>"
)
ROSTER = (
    "<iq type='result' id='r1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster'"
    " ver='ver7'>"
    + "".join(
        f"<item jid='contact{i}@example.org' name='Contact {i}' subscription='both'>"
        "<group>Friends</group></item>"
        for i in range(200)
    )
    + "</query></iq>"
)
ERROR = (
    "<message type='error' id='m1' to='a@x/r' from='b@y'><error type='cancel'>"
    "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
    "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>nobody home</text>"
    "</error></message>"
)
BLOWUP = (
    f"<message to='bob@example.com' xmlns:p='urn:{'u' * 200_000}'>" + "<p:x/>" * 1000 + "</message>"
)


def load(path: Path | None) -> ModuleType:
    if path is None:
        from vines_server.xmpp import stanza

        return stanza
    # Loaded inside the package so that its relative imports (ns, errors) resolve.
    name = "vines_server.xmpp._stanza_under_test"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stanza", type=Path, help="a stanza.py to measure instead of ours")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    serialize = load(args.stanza).serialize
    cases = [("chat message", CHAT, 20_000), ("roster, 200 items", ROSTER, 200)]
    cases += [("stanza error", ERROR, 20_000), ("blow-up, 1000 x 200 KB ns", BLOWUP, 1)]
    for label, xml, number in cases:
        # The parser now refuses the blow-up's 200 MB of names; built here past that limit.
        el = parse_fragment(xml, ns.CLIENT, ParserLimits(10**6, 1024, 64, 64, names=10**9))
        best = min(timeit.repeat(lambda el=el: serialize(el), number=number, repeat=args.repeat))
        size = len(serialize(el))
        print(f"{label:28} {best / number * 1e6:12.2f} us   {size:>12,} bytes out")


if __name__ == "__main__":
    main()
