"""Ad-hoc commands (XEP-0050) on the wire: the `<command/>` iq, the command list in disco#items
on node `http://jabber.org/protocol/commands`, disco#info on each command node.

Provides "adhoc": the `CommandRegistry` (see `vines_server.core.commands`) other modules add
their commands to with `api.use("adhoc").add(Command(...))`. Commands are offered by the
domains we host (iq to the domain) and only to our own users' sessions: a request that did not
come from a local client session is refused (`forbidden`), as is one `allowed` refuses.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from vines_server.core.api import IqRequest, ModuleAPI
from vines_server.core.commands import (
    Command,
    CommandRegistry,
    Context,
    Response,
    bad_payload,
)
from vines_server.xmpp import ns
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.forms import Form, FormError
from vines_server.xmpp.stanza import make

COMMAND = ns.q(ns.COMMANDS, "command")
XDATA = ns.q(ns.XDATA, "x")


def setup(api: ModuleAPI) -> None:
    nodes = api.disco_nodes

    def may_run(command: Command, req: IqRequest) -> bool:
        return req.origin is not None and command.allowed(req.sender, req.target)

    class CommandNode:
        """disco#info and #items of one command node."""

        def __init__(self, command: Command) -> None:
            self.command = command

        async def info(self, req: IqRequest):
            if not may_run(self.command, req):
                raise StanzaError("forbidden", type="cancel")
            identity = ("automation", "command-node", self.command.name)
            return [identity], [ns.COMMANDS, ns.XDATA]

        async def items(self, req: IqRequest):
            if not may_run(self.command, req):
                raise StanzaError("forbidden", type="cancel")
            return []

    class CommandList:
        """Node http://jabber.org/protocol/commands: the commands this requester may run."""

        async def info(self, req: IqRequest):
            return [("automation", "command-list", "Commands")], []

        async def items(self, req: IqRequest):
            return [(str(req.target), c.node, c.name) for c in registry if may_run(c, req)]

    registry = CommandRegistry(
        ttl=api.config.deadlines.adhoc_session,
        on_add=lambda c: nodes.__setitem__(c.node, CommandNode(c)),
        on_remove=lambda c: nodes.pop(c.node, None),
    )
    nodes[ns.COMMANDS] = CommandList()

    async def handle(req: IqRequest) -> Element:
        if req.type != "set":
            raise StanzaError("bad-request", "commands are run with iq type 'set'")
        payload = req.payload
        if payload.tag != COMMAND:
            raise StanzaError("bad-request")
        node = payload.get("node")
        command = registry.get(node) if node else None
        if command is None:
            raise StanzaError("item-not-found", "no such command", type="cancel")
        if not may_run(command, req):
            raise StanzaError("forbidden", f"you may not run {command.name}", type="cancel")
        forms = payload.findall(XDATA)
        if len(forms) > 1:
            raise bad_payload("more than one data form")
        try:
            submitted = Form.from_element(forms[0]) if forms else None
        except FormError as exc:
            raise bad_payload(str(exc)) from None
        ctx = Context(req.sender, req.target, req.origin)
        action = payload.get("action", "execute")
        response = await registry.step(command, ctx, action, payload.get("sessionid"), submitted)
        return render(node, response)

    api.iq(ns.COMMANDS, handle, server=True)
    api.feature(ns.COMMANDS)
    api.feature(ns.XDATA)
    api.provide("adhoc", registry)


def render(node: str, response: Response) -> Element:
    el = make(COMMAND, {"node": node, "sessionid": response.session_id, "status": response.status})
    if response.actions:
        actions = make(ns.q(ns.COMMANDS, "actions"), {"execute": response.default or ""})
        actions.extend(make(ns.q(ns.COMMANDS, a)) for a in response.actions)
        el.append(actions)
    for note in response.notes:
        el.append(make(ns.q(ns.COMMANDS, "note"), {"type": note.type}, note.text))
    if response.form is not None:
        el.append(response.form.to_element())
    return el
