"""Drives the sans-I/O `C2SStream` as the connection adapter does: the actions of one call are
executed in order, and a request (account lookup, PBKDF2, bind) is answered before the next action
runs, from an in-memory account table of real storage `Account` records."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from vines_server.storage.base import Account
from vines_server.xmpp import c2s
from vines_server.xmpp.jid import JID
from vines_server.xmpp.sasl.credentials import derive_all

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
ABORT = f"<abort xmlns='{SASL}'/>"
STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"


def derive(request: c2s.DeriveKey) -> bytes:
    return hashlib.pbkdf2_hmac(
        request.hash_name, request.password, request.salt, request.iterations
    )


def answer_lookup(
    stream: c2s.C2SStream, request: c2s.LookupAccount, account: Account | None
) -> list[c2s.Action]:
    """stream.account(), then the PBKDF2 a PLAIN exchange asks for next, as the connection
    runs them: every action of both, the DeriveKey request included."""
    out = stream.account(request, account)
    if out and isinstance(out[-1], c2s.DeriveKey):  # a request is the last action of a call
        out += stream.derived(out[-1], derive(out[-1]))
    return out


def stream_open(to: str) -> str:
    """A stream header to pipeline behind other elements: no XML declaration, which is only
    allowed at the very start of the bytes the parser sees (restricted-xml otherwise)."""
    return (
        f"<stream:stream to='{to}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>"
    )


def auth(mechanism: str, payload: bytes | None = None) -> str:
    text = base64.b64encode(payload).decode() if payload else ""
    return f"<auth xmlns='{SASL}' mechanism='{mechanism}'>{text}</auth>"


def plain(user: str, password: str) -> str:
    return auth("PLAIN", f"\0{user}\0{password}".encode())


def response(payload: bytes) -> str:
    return f"<response xmlns='{SASL}'>{base64.b64encode(payload).decode()}</response>"


def bind(iq_id: str = "b", resource: str | None = None) -> str:
    res = f"<resource>{resource}</resource>" if resource else ""
    inner = f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{res}</bind>"
    return f"<iq type='set' id='{iq_id}'>{inner}</iq>"


def accounts(domain: str, passwords: dict[str, str], iterations: int) -> dict[str, Account]:
    return {
        f"{local}@{domain}": Account(f"{local}@{domain}", derive_all(password, iterations))
        for local, password in passwords.items()
    }


@dataclass
class Driver:
    stream: c2s.C2SStream
    accounts: dict[str, Account]
    executed: list[c2s.Action] = field(default_factory=list)

    def feed(self, data: bytes | str) -> list[c2s.Action]:
        """One read: returns every action executed for it, answers' follow-ups included."""
        return self.execute(self.stream.receive(data.encode() if isinstance(data, str) else data))

    def execute(self, actions: list[c2s.Action]) -> list[c2s.Action]:
        done: list[c2s.Action] = []
        for action in actions:
            if self.closed:  # the connection stops at Close, as C2SConnection._execute does
                break
            done.append(action)
            self.executed.append(action)
            if isinstance(action, c2s.LookupAccount):
                done += self.execute(self.stream.account(action, self.answer(action)))
            elif isinstance(action, c2s.DeriveKey):
                done += self.execute(self.stream.derived(action, derive(action)))
            elif isinstance(action, c2s.BindRequest):
                full = JID.parse(f"{self.stream.jid}/{action.resource or 'auto'}")
                done += self.execute(self.stream.bound(action, full))
            elif isinstance(action, c2s.ResumeRequest):  # no session here to resume
                done += self.execute(self.stream.resume_failed(action, "item-not-found"))
        return done

    def answer(self, request: c2s.LookupAccount) -> Account | None:
        return self.accounts.get(str(request.jid))

    @property
    def closed(self) -> bool:
        return any(isinstance(a, c2s.Close) for a in self.executed)

    def authenticated(self) -> list[str]:
        return [str(a.jid) for a in self.executed if isinstance(a, c2s.Authenticated)]

    def failures(self) -> list[str]:
        return [a.condition for a in self.executed if isinstance(a, c2s.AuthFailed)]
