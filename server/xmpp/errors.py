"""RFC 6120 error conditions, raised by the sans-I/O core and turned into XML by the stream."""

from __future__ import annotations

from dataclasses import dataclass

STREAM_CONDITIONS = frozenset(
    """bad-format bad-namespace-prefix conflict connection-timeout host-gone host-unknown
    improper-addressing internal-server-error invalid-from invalid-namespace invalid-xml
    not-authorized not-well-formed policy-violation remote-connection-failed reset
    resource-constraint restricted-xml see-other-host system-shutdown undefined-condition
    unsupported-encoding unsupported-feature unsupported-stanza-type unsupported-version""".split()
)

# condition -> default error type (RFC 6120 section 8.3.3)
STANZA_CONDITIONS = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}


@dataclass
class StreamError(Exception):
    """Fatal to the stream: the peer gets <stream:error>, then </stream:stream>, then close.

    `app` is an optional application-specific condition as (namespace, name),
    e.g. (ns.XMPP_ERRORS, "stanza-too-big").
    """

    condition: str
    text: str | None = None
    app: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.condition not in STREAM_CONDITIONS:
            raise ValueError(f"unknown stream error condition {self.condition!r}")
        super().__init__(self.condition, self.text)

    def __str__(self) -> str:
        return self.condition + (f": {self.text}" if self.text else "")


@dataclass
class StanzaError(Exception):
    """Answered with a stanza of type='error'; the stream stays open."""

    condition: str
    text: str | None = None
    type: str | None = None
    app: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.condition not in STANZA_CONDITIONS:
            raise ValueError(f"unknown stanza error condition {self.condition!r}")
        if self.type is None:
            self.type = STANZA_CONDITIONS[self.condition]
        super().__init__(self.condition, self.text)

    def __str__(self) -> str:
        return self.condition + (f": {self.text}" if self.text else "")
