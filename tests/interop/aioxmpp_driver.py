"""aioxmpp's side of the interop tests in test_clients.py, run by the python of the separate venv
the `aioxmpp_python` fixture builds: aioxmpp 0.13.3 pins pyOpenSSL<24.3 (and so an old
cryptography), which must not hold back the server's own dependencies. Standalone: aioxmpp and the
standard library only, nothing from this repository.

    python aioxmpp_driver.py --jid JID --port PORT --ca-file PEM [--direct-tls] [--roster]

The password comes from the environment (AIOXMPP_DRIVER_PASSWORD), never from argv, which any
local user can read. The driver logs in (SCRAM, PKIX verification against the CA file only) and
talks JSON lines:

- its first line on stdout is {"event": "connected", "jid": FULL_JID} or
  {"event": "connect-failed", "error": ERROR} (then it exits 1);
- then, for each command line {"cmd": NAME, ...arguments} read on stdin, exactly one reply line
  {"ok": true, ...result} or {"ok": false, "error": ERROR}, in order;
- end of stdin closes the stream and exits 0.

ERROR is {"types": [qualified class names, most specific first], "message": str(exc),
"condition": RFC 6120 condition or null, "context": the ERROR it was raised from, or null}.
What arrives unasked (messages, presences, subscription requests) is kept as a numbered list of
events that `wait` searches, so the test decides what it expects and in which order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from typing import Any

import aioxmpp
import aioxmpp.disco
import aioxmpp.dispatcher
import aioxmpp.ping
import aioxmpp.roster.xso
import aioxmpp.version
from aioxmpp import connector, security_layer

PASSWORD_VARIABLE = "AIOXMPP_DRIVER_PASSWORD"
WAIT_TIMEOUT = 10.0


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def describe_error(exc: BaseException | None) -> dict[str, Any] | None:
    """`exc`, and what it was raised from or while handling (`context`), as JSON."""
    if exc is None:
        return None
    condition = getattr(exc, "condition", None)
    return {
        "types": [f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__],
        "message": str(exc),
        "condition": condition.value[1] if isinstance(condition, aioxmpp.ErrorCondition) else None,
        "context": describe_error(exc.__cause__ or exc.__context__),
    }


def describe_message(msg: aioxmpp.Message) -> dict[str, Any]:
    error = None
    if msg.error is not None:
        error = {"type": msg.error.type_.value, "condition": msg.error.condition.value[1]}
    return {
        "kind": "message",
        "from": str(msg.from_),
        "type": msg.type_.value,
        "body": msg.body.any() if msg.body else None,
        "delays": [d.stamp.isoformat() if d.stamp else None for d in msg.xep0203_delay],
        "error": error,
    }


class Observer:
    """Everything that arrives unasked, in arrival order; `changed` wakes whoever waits on it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.poke()

    def poke(self, *_args: Any) -> None:  # aioxmpp disconnects a signal handler returning true
        self.changed.set()

    async def until(self, found: Any, what: str) -> Any:
        """The first true value of `found()`, re-checked on every change, within WAIT_TIMEOUT."""

        async def scan() -> Any:
            while True:
                result = found()
                if result:
                    return result
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(scan(), WAIT_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(f"timed out waiting for {what}; events {self.events!r}") from None


class Session:
    def __init__(self, client: aioxmpp.Client, roster: bool) -> None:
        self.client = client
        self.observer = Observer()
        dispatcher = client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        for type_ in aioxmpp.MessageType:
            dispatcher.register_callback(type_, None, self._on_message)
        # initial presence goes out as the stream is established (offline messages follow it)
        client.summon(aioxmpp.PresenceServer).set_presence(aioxmpp.PresenceState(True))
        self.roster = self.presence = None
        if roster:
            self.roster = client.summon(aioxmpp.RosterClient)
            self.presence = client.summon(aioxmpp.PresenceClient)
            self.presence.on_available.connect(self._on_available)
            self.presence.on_bare_unavailable.connect(self._on_bare_unavailable)
            self.roster.on_subscribe.connect(self._on_subscribe)
            for signal in (
                self.roster.on_entry_added,
                self.roster.on_entry_name_changed,
                self.roster.on_entry_subscription_state_changed,
                self.roster.on_entry_removed,
            ):
                signal.connect(self.observer.poke)

    def _on_message(self, msg: aioxmpp.Message) -> None:
        self.observer.record(describe_message(msg))

    def _on_available(self, full_jid: aioxmpp.JID, _stanza: Any) -> None:
        self.observer.record({"kind": "available", "from": str(full_jid)})

    def _on_bare_unavailable(self, stanza: Any) -> None:
        self.observer.record({"kind": "unavailable", "from": str(stanza.from_)})

    def _on_subscribe(self, stanza: Any) -> None:  # a --roster session approves every request
        self.observer.record({"kind": "subscribe", "from": str(stanza.from_)})
        self.roster.approve(stanza.from_)

    # ---- commands: each returns the reply's fields --------------------------------------------

    async def cmd_wait(self, since: int = 0, **fields: Any) -> dict[str, Any]:
        """The first event at or after index `since` whose fields include all of `fields`."""

        def found() -> dict[str, Any] | None:
            for index in range(since, len(self.observer.events)):
                event = self.observer.events[index]
                if all(event.get(k) == v for k, v in fields.items()):
                    return {"index": index, "event": event}
            return None

        return await self.observer.until(found, f"an event with {fields}")

    async def cmd_mark(self) -> dict[str, Any]:
        """The index the next event will get: `wait(since=...)` then ignores what came before."""
        return {"index": len(self.observer.events)}

    async def cmd_send_message(self, to: str, body: str, type: str = "chat") -> dict[str, Any]:
        msg = aioxmpp.Message(to=aioxmpp.JID.fromstr(to), type_=aioxmpp.MessageType(type))
        msg.body[None] = body
        await self.client.send(msg)
        return {}

    async def cmd_roster_set(self, jid: str, name: str, groups: list[str]) -> dict[str, Any]:
        await self.roster.set_entry(aioxmpp.JID.fromstr(jid), name=name, add_to_groups=set(groups))
        return {}

    async def cmd_subscribe(self, jid: str) -> dict[str, Any]:
        self.roster.subscribe(aioxmpp.JID.fromstr(jid))
        return {}

    async def cmd_roster_remove(self, jid: str) -> dict[str, Any]:
        await self.roster.remove_entry(aioxmpp.JID.fromstr(jid))
        return {}

    async def cmd_wait_roster(self, jid: str, subscription: str | None) -> dict[str, Any]:
        """Until the roster client's entry for `jid` has `subscription` (null: no entry)."""
        bare = aioxmpp.JID.fromstr(jid)

        def found() -> bool:
            item = self.roster.items.get(bare)
            return (item.subscription if item else None) == subscription

        await self.observer.until(found, f"{jid} with subscription {subscription}")
        return {}

    async def cmd_roster_get(self) -> dict[str, Any]:
        """A plain roster get, as a fresh client would send it (not the roster client's cache)."""
        query = aioxmpp.roster.xso.Query()
        result = await self.client.send(aioxmpp.IQ(type_=aioxmpp.IQType.GET, payload=query))
        return {
            "items": [
                {
                    "jid": str(item.jid),
                    "subscription": item.subscription,
                    "name": item.name,
                    "groups": sorted(group.name for group in item.groups),
                }
                for item in result.items
            ]
        }

    async def cmd_most_available(self, jid: str) -> dict[str, Any]:
        stanza = self.presence.get_most_available_stanza(aioxmpp.JID.fromstr(jid))
        return {"from": str(stanza.from_) if stanza is not None else None}

    async def cmd_disco_info(self, jid: str) -> dict[str, Any]:
        disco = self.client.summon(aioxmpp.DiscoClient)
        info = await disco.query_info(aioxmpp.JID.fromstr(jid), require_fresh=True)
        return {
            "identities": sorted([i.category, i.type_] for i in info.identities),
            "features": sorted(info.features),
        }

    async def cmd_disco_items(self, jid: str) -> dict[str, Any]:
        disco = self.client.summon(aioxmpp.DiscoClient)
        items = await disco.query_items(aioxmpp.JID.fromstr(jid), require_fresh=True)
        return {"items": [[str(item.jid), item.node] for item in items.items]}

    async def cmd_ping(self, jid: str) -> dict[str, Any]:
        await aioxmpp.ping.ping(self.client, aioxmpp.JID.fromstr(jid))
        return {}

    async def cmd_version(self, jid: str) -> dict[str, Any]:
        # query_version only needs .send(); Client.send is the non-deprecated one
        version = await aioxmpp.version.query_version(self.client, aioxmpp.JID.fromstr(jid))
        return {"name": version.name, "version": version.version}

    async def serve(self) -> None:
        """Answer command lines from stdin until it closes."""
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            request = json.loads(line)
            handler = getattr(self, "cmd_" + request.pop("cmd"))
            try:
                emit({"ok": True, **await handler(**request)})
            except Exception as exc:  # reported to the test, which decides what was expected
                emit({"ok": False, "error": describe_error(exc)})


def make_client(args: argparse.Namespace, password: str) -> aioxmpp.Client:
    def context_factory() -> Any:
        # aioxmpp's default PKIX verifier (chain plus host name) trusting the test CA: no
        # pinning, verification stays on
        ctx = security_layer.default_ssl_context()
        ctx.load_verify_locations(args.ca_file)
        return ctx

    if args.direct_tls:
        peer = [("127.0.0.1", args.port, connector.XMPPOverTLSConnector())]
    else:
        peer = [("127.0.0.1", args.port, connector.STARTTLSConnector())]
    return aioxmpp.Client(
        aioxmpp.JID.fromstr(args.jid),
        aioxmpp.make_security_layer(password, ssl_context_factory=context_factory),
        override_peer=peer,
        max_initial_attempts=1,
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jid", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--direct-tls", action="store_true", help="TLS from the first byte")
    parser.add_argument("--roster", action="store_true", help="roster and presence clients")
    args = parser.parse_args()
    password = os.environ.pop(PASSWORD_VARIABLE)
    session = Session(make_client(args, password), roster=args.roster)
    logged_in = False
    try:
        async with session.client.connected():
            logged_in = True
            emit({"event": "connected", "jid": str(session.client.local_jid)})
            await session.serve()
    except Exception as exc:
        if logged_in:
            raise
        traceback.print_exc()  # stderr: the test shows it when the failure was not the expected one
        emit({"event": "connect-failed", "error": describe_error(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
