"""What a sans-I/O stream asks its connection to do: the actions every stream kind returns.

`Send`, `StartTLS` and `Close` concern any stream; the others are the questions and events of a
client stream (an account lookup, authentication, a bind, a stanza in), each answered by the
connection's handler for that kind. An action that awaits an answer carries the number of its
exchange (design decision 11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from vines_server.xmpp.errors import StreamError
from vines_server.xmpp.jid import JID


@dataclass
class Send:
    data: bytes


@dataclass
class StartTLS:
    """Switch the transport to TLS now (after <proceed/> went out); then call tls_established()."""


@dataclass
class LookupAccount:
    """Fetch the account (or None) for this bare JID and pass it, with this request, to
    account(). `exchange` numbers the SASL exchange the answer belongs to."""

    jid: JID
    exchange: int


@dataclass
class DeriveKey:
    """Run PBKDF2-HMAC (`hash_name` as hashlib names it) off the event loop and pass the
    salted password, with this request, to derived()."""

    hash_name: str
    salt: bytes
    iterations: int
    password: bytes = field(repr=False)  # never in a log line or a traceback
    exchange: int


@dataclass
class Authenticated:
    jid: JID  # bare
    mechanism: str
    # the name the client gave, when the account was found through its pre-PRECIS form
    legacy_name: str | None = None


@dataclass
class BindRequest:
    """The client asks for a resource (None: the server picks); answer with bound() or
    bind_failed(), passing this request back."""

    resource: str | None
    iq_id: str
    exchange: int


@dataclass
class StanzaIn:
    """A message, presence or iq from a bound client, `from` already stamped."""

    element: Element


@dataclass
class AuthFailed:
    """A SASL exchange failed (counted per IP by the connection, XEP-0205 / A-03)."""

    condition: str
    # False when no password could have passed: the account exists but has no keys for this
    # SCRAM hash (imported from Prosody with SHA-1 keys only), so a client that tries
    # SCRAM-SHA-256 first and then SHA-1 is not walking towards a per-IP ban at every login.
    counts: bool = True


@dataclass
class SmEnable:
    """The client enabled stream management (XEP-0198): answer <enabled/>, with an id to
    resume with when `resume` was asked."""

    resume: bool


@dataclass
class SmAck:
    """The client acknowledged `h` stanzas in all: release them from the unacked queue."""

    h: int


@dataclass
class SendConfirming:
    """Bytes carrying the server's h (`<a/>`, `<failed h=.../>`): sent once every message
    they confirm is durable (design decision 6), the commits of its messages may still run."""

    data: bytes


@dataclass
class ResumeRequest:
    """The client asks to resume the session `previd` (XEP-0198), having handled `h` of its
    stanzas; answer with resumed() or resume_failed(), passing this request back."""

    previd: str
    h: int
    exchange: int


@dataclass
class Close:
    """Close the connection (after the bytes already sent). `error` is for logs and metrics."""

    error: StreamError | None = None


Action = (
    Send
    | StartTLS
    | LookupAccount
    | DeriveKey
    | Authenticated
    | AuthFailed
    | BindRequest
    | StanzaIn
    | SmEnable
    | SmAck
    | SendConfirming
    | ResumeRequest
    | Close
)

# actions whose answer the stream awaits
Request = LookupAccount | DeriveKey | BindRequest | ResumeRequest
