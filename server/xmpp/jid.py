"""RFC 7622 JIDs: parse, normalize (an approximation of the PRECIS profiles), compare.

Compare only prepared forms (RFC 7622 section 8): two JIDs are equal iff their dataclasses are.
The localpart approximates PRECIS UsernameCaseMapped with NFC + casefold; the resourcepart
approximates OpaqueString with NFC and no control characters.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass, replace

_MAX_PART = 1023  # bytes of UTF-8, per part
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")


class JIDError(ValueError):
    """A malformed JID (stanza error jid-malformed, or bad-request in a bind)."""


def _bad_char(c: str) -> bool:
    # Controls, separators (spaces of any kind), surrogates, unassigned and private use.
    return unicodedata.category(c)[0] in "CZ"


def _check_len(part: str, what: str) -> str:
    if not part:
        raise JIDError(f"empty {what}")
    if len(part.encode("utf-8")) > _MAX_PART:
        raise JIDError(f"{what} longer than {_MAX_PART} bytes")
    return part


def _local(s: str) -> str:
    s = unicodedata.normalize("NFC", s.casefold())
    for c in s:
        if c in _LOCAL_FORBIDDEN or _bad_char(c):
            raise JIDError(f"character {c!r} not allowed in a localpart")
    return _check_len(s, "localpart")


def _resource(s: str) -> str:
    s = unicodedata.normalize("NFC", s)
    for c in s:
        if c != " " and _bad_char(c):  # OpaqueString allows ASCII space
            raise JIDError(f"character {c!r} not allowed in a resourcepart")
    return _check_len(s, "resourcepart")


def _domain(s: str) -> str:
    if s.startswith("[") and s.endswith("]"):  # IPv6 literal
        try:
            return f"[{ipaddress.IPv6Address(s[1:-1]).compressed}]"
        except ValueError:
            raise JIDError("bad IPv6 literal") from None
    s = unicodedata.normalize("NFC", s.lower())
    if s.endswith("."):
        s = s[:-1]
    _check_len(s, "domainpart")
    for label in s.split("."):
        if not label:
            raise JIDError("empty label in domainpart")
        if len(label.encode("utf-8")) > 63:
            raise JIDError("domain label longer than 63 bytes")
        for c in label:
            if _bad_char(c) or c in "@/:<>\"&'\\[]":
                raise JIDError(f"character {c!r} not allowed in a domainpart")
    return s


@dataclass(frozen=True)
class JID:
    local: str | None
    domain: str
    resource: str | None = None

    @classmethod
    def parse(cls, s: str) -> JID:
        """Split at the first '/' (resource) then the first '@' before it (localpart)."""
        bare, slash, resource = s.partition("/")
        local, at, domain = bare.rpartition("@")
        if at and "@" in local:
            raise JIDError("more than one '@'")
        if at and not local:
            raise JIDError("empty localpart")
        if slash and not resource:
            raise JIDError("empty resourcepart")
        return cls(
            _local(local) if at else None,
            _domain(domain),
            _resource(resource) if slash else None,
        )

    @property
    def bare(self) -> JID:
        return replace(self, resource=None) if self.resource is not None else self

    @property
    def is_bare(self) -> bool:
        return self.resource is None

    def with_resource(self, resource: str) -> JID:
        return replace(self, resource=_resource(resource))

    def __str__(self) -> str:
        s = self.domain if self.local is None else f"{self.local}@{self.domain}"
        return s if self.resource is None else f"{s}/{self.resource}"
