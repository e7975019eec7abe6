"""Stored XML back into elements: offline messages, subscription requests, vCards, private XML.

What the server stores is the output of `stanza.serialize`, which escapes more than a client has
to (a raw `>` becomes `&gt;`, a raw quote in an attribute `&quot;`) and may declare a namespace
again on elements whose parent is in another one, so the stored form can be several times the
size the client sent. The stanza passed the wire limits when it arrived, and its stored size was
checked against the account's quotas when it was stored; reading it back under the wire's
stanza size would refuse what was accepted (a login once failed on it, taking the other offline
messages with it). So stored XML is read with the element, depth and attribute limits only.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from vines_server.config import Limits
from vines_server.xmpp.parser import NAMES_PER_BYTE, ParserLimits, parse_fragment

# serialize() writes a raw quote of an attribute value as `&quot;` or `&apos;`: at most six
# bytes stored per byte received. What exceeds the wire limit times this is not kept as is.
MAX_EXPANSION = 6


def parse_stored(xml: str, limits: Limits) -> Element:
    """Raises StreamError when `xml` is not one well-formed element within `limits`."""
    data = xml.encode("utf-8")
    room = len(data) + 1024  # parse_fragment's wrapper header counts as a unit too
    # Names as parsed are bounded by what the wire allowed, however compact the stored form.
    names = NAMES_PER_BYTE * limits.stanza_size
    stored = ParserLimits(room, limits.elements, limits.depth, limits.attributes, names)
    return parse_fragment(data, limits=stored)


def storable(xml: str, limits: Limits) -> bool:
    """Whether a stanza's stored form is within what escaping alone can make of the wire limit
    (serialize() bounds repeated namespace declarations; this is the backstop)."""
    return len(xml.encode("utf-8")) <= limits.stanza_size * MAX_EXPANSION
