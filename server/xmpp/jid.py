"""RFC 7622 JIDs: parse, normalise, compare. The one place that prepares an address.

Every path (wire, routing, storage keys, SASL user names, administration, certificates, DNS and
the console) prepares JIDs and domain names here, so one account has one spelling everywhere:
- localpart: PRECIS UsernameCaseMapped (RFC 8265) plus RFC 7622 section 3.3.1's exclusions;
- resourcepart: PRECIS OpaqueString (RFC 8265);
- domainpart: IDNA2008 with UTS #46 non-transitional mapping, kept as U-labels (RFC 7622
  section 3.2); `domain_to_ascii` gives the A-label form for DNS and certificates.
Compare only prepared forms (RFC 7622 section 8): two JIDs are equal iff their dataclasses are.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import precis_i18n.profile

_MAX_PART = 1023  # bytes of UTF-8, per part (RFC 7622 section 3.1)
# No prepared part of 1023 bytes comes from more characters than this (NFC composes at most
# three characters into one); longer input is refused before any table lookup.
_MAX_INPUT_CHARS = 4 * _MAX_PART
_LOCAL_EXCLUDED = frozenset("\"&'/:<>@")  # RFC 7622 section 3.3.1, beyond the PRECIS profile
# Printable ASCII is left as it is by both profiles (apart from case): no table lookup needed.
_ASCII_LOCAL = re.compile(r"[!#-%(-.0-9;=?A-~]+")
_ASCII_RESOURCE = re.compile(r"[ -~]+")
# An NR-LDH label (RFC 5890): IDNA2008 leaves it as it is, apart from case.
_LDH_LABEL = re.compile(r"(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_CODEPOINT = re.compile(r"U\+([0-9A-Fa-f]{4,6})")
_CACHE = 1024  # prepared parts remembered (the same few addresses recur on every stanza)


class JIDError(ValueError):
    """A malformed JID (stanza error jid-malformed, or bad-request in a bind)."""


def describe(char: str) -> str:
    """'U+1F600 GRINNING FACE': how errors name a character."""
    import unicodedata  # like the PRECIS tables, only beyond ASCII (0.1 MB resident)

    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')}"


def _check_len(part: str, what: str) -> str:
    if not part:
        raise JIDError(f"empty {what}")
    if len(part.encode("utf-8")) > _MAX_PART:
        raise JIDError(f"{what} longer than {_MAX_PART} bytes")
    return part


@functools.cache
def _profile(name: str) -> precis_i18n.profile.Profile:
    """A PRECIS profile, loaded at the first non-ASCII part: its tables take memory that a
    server whose addresses are all ASCII never needs."""
    import precis_i18n

    return precis_i18n.get_profile(name)


def _precis(profile: str, s: str, what: str) -> str:
    if len(s) > _MAX_INPUT_CHARS:
        raise JIDError(f"{what} longer than {_MAX_PART} bytes")
    try:
        return _profile(profile).enforce(s)
    except UnicodeEncodeError as exc:
        reason = exc.reason.removeprefix("DISALLOWED/").replace("_", " ")
        if reason == "empty":
            raise JIDError(f"empty {what}") from None
        # the position is in the mapped text; name the character as typed where they line up
        text = s if len(exc.object) == len(s) else exc.object
        bad = text[exc.start : exc.end] if exc.end > exc.start else ""
        if bad:
            raise JIDError(f"{describe(bad[0])} is not allowed in a {what} ({reason})") from None
        raise JIDError(f"{what} refused by PRECIS ({reason})") from None


@functools.lru_cache(maxsize=_CACHE)
def normalize_localpart(s: str) -> str:
    """The prepared localpart (UsernameCaseMapped + RFC 7622 exclusions), or JIDError."""
    if _ASCII_LOCAL.fullmatch(s):
        return _check_len(s.lower(), "localpart")
    import unicodedata

    for c in s:  # named as typed, also when width mapping would turn it into ASCII
        if c in _LOCAL_EXCLUDED or unicodedata.normalize("NFKC", c) in _LOCAL_EXCLUDED:
            raise JIDError(f"{describe(c)} is not allowed in a localpart (RFC 7622 3.3.1)")
    return _check_len(_precis("UsernameCaseMapped", s, "localpart"), "localpart")


@functools.lru_cache(maxsize=_CACHE)
def normalize_resourcepart(s: str) -> str:
    """The prepared resourcepart (OpaqueString), or JIDError."""
    if _ASCII_RESOURCE.fullmatch(s):
        return _check_len(s, "resourcepart")
    return _check_len(_precis("OpaqueString", s, "resourcepart"), "resourcepart")


def _idna_error(exc: Exception, s: str) -> JIDError:
    found = _CODEPOINT.search(str(exc))
    if found:
        char = chr(int(found.group(1), 16))
        return JIDError(f"{describe(char)} is not allowed in a domainpart")
    return JIDError(f"{s!r} is not a valid domain name ({exc})")


@functools.lru_cache(maxsize=_CACHE)
def _domain_labels(s: str) -> tuple[str, str]:
    """(U-label form, A-label form) of a domain name, or JIDError."""
    if len(s) > _MAX_INPUT_CHARS:
        raise JIDError(f"domainpart longer than {_MAX_PART} bytes")
    if s.endswith("."):  # a final dot is not part of the domainpart (RFC 7622 3.2)
        s = s[:-1]
    _check_len(s, "domainpart")
    if any(not label for label in re.split(r"[.\u3002\uff0e\uff61]", s)):
        raise JIDError("empty label in domainpart")
    lowered = s.lower()
    if len(lowered) <= 253 and all(_LDH_LABEL.fullmatch(x) for x in lowered.split(".")):
        return lowered, lowered
    import idna  # only for names beyond plain ASCII labels

    try:
        ascii_form = idna.encode(s, uts46=True, transitional=False).decode("ascii")
        unicode_form = idna.decode(ascii_form)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise _idna_error(exc, s) from None
    return _check_len(unicode_form, "domainpart"), ascii_form


def normalize_domainpart(s: str) -> str:
    """The prepared domainpart: U-labels (IDNA2008, UTS #46 non-transitional) or an IP
    literal, or JIDError."""
    if s.startswith("[") and s.endswith("]"):  # IPv6 literal
        try:
            return f"[{ipaddress.IPv6Address(s[1:-1]).compressed}]"
        except ValueError:
            raise JIDError("bad IPv6 literal") from None
    return _domain_labels(s)[0]


def domain_to_ascii(s: str) -> str:
    """The A-label form of a domain name, for DNS queries and certificate names; JIDError
    when the name is not valid IDNA2008."""
    if s.startswith("[") and s.endswith("]"):
        return normalize_domainpart(s)
    return _domain_labels(s)[1]


def legacy_localpart(s: str) -> str:
    """The localpart as servers before the PRECIS rule stored it (NFC + casefold, so 'straße'
    became 'strasse'). Only for finding accounts created then; never a new storage key."""
    if s.isascii():  # NFC leaves ASCII as it is: every login asks, most with an ASCII name
        return s.casefold()
    import unicodedata

    return unicodedata.normalize("NFC", s.casefold())


@dataclass(frozen=True)
class JID:
    local: str | None
    domain: str
    resource: str | None = None

    @classmethod
    def parse(cls, s: str) -> JID:
        """Split at the first '/' (resource) then the last '@' before it (localpart), and
        prepare each part."""
        return _parse_cached(s) if len(s) <= _CACHED_JID_CHARS else _parse(s)

    @property
    def bare(self) -> JID:
        # on every routed stanza: the constructor directly, dataclasses.replace() costs 3x
        return JID(self.local, self.domain) if self.resource is not None else self

    @property
    def is_bare(self) -> bool:
        return self.resource is None

    def with_resource(self, resource: str) -> JID:
        return replace(self, resource=normalize_resourcepart(resource))

    def __str__(self) -> str:
        s = self.domain if self.local is None else f"{self.local}@{self.domain}"
        return s if self.resource is None else f"{s}/{self.resource}"


# Every routed stanza's `to` (and a claimed `from`) is parsed: the same few addresses recur, and
# a JID is immutable, so one instance per spelling serves them all (a lookup instead of three
# prepared parts and a new frozen dataclass: 1.1 -> 0.1 us). Only usual lengths: the cache
# keeps its keys and JIDs, a few hundred KB at most that way.
_CACHED_JID_CHARS = 256


def _parse(s: str) -> JID:
    bare, slash, resource = s.partition("/")
    local, at, domain = bare.rpartition("@")
    if at and "@" in local:
        raise JIDError("more than one '@'")
    if at and not local:
        raise JIDError("empty localpart")
    if slash and not resource:
        raise JIDError("empty resourcepart")
    return JID(
        normalize_localpart(local) if at else None,
        normalize_domainpart(domain),
        normalize_resourcepart(resource) if slash else None,
    )


_parse_cached = functools.lru_cache(maxsize=_CACHE)(_parse)
