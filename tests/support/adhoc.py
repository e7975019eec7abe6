"""Ad-hoc command helpers for tests: raw `<command/>` iqs from a slixmpp client, answers parsed
with the server's own data form model, errors as (type, condition, app condition)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp.exceptions import IqError
from vines_server.xmpp import ns
from vines_server.xmpp.forms import Field, Form

from tests.support.xmpp import DOMAIN

COMMAND = ns.q(ns.COMMANDS, "command")
ADMIN = ns.ADMIN


def admin(name: str) -> str:
    return f"{ns.ADMIN}#{name}"


def ours(name: str) -> str:
    return f"{ns.VINES_ADMIN}#{name}"


@dataclass
class Answer:
    status: str
    sessionid: str
    node: str
    form: Form | None
    notes: list[tuple[str, str]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    default: str | None = None
    xml: Element | None = None

    def value(self, var: str) -> str | None:
        assert self.form is not None, self
        found = self.form.field(var)
        return found.value if found is not None else None

    def values(self, var: str) -> list[str]:
        assert self.form is not None, self
        found = self.form.field(var)
        return list(found.values) if found is not None else []

    def rows(self) -> list[dict[str, str]]:
        assert self.form is not None
        return [{f.var: f.value or "" for f in row} for row in self.form.items]


@dataclass
class Refused(Exception):
    type: str
    condition: str
    app: str | None
    text: str | None


def submit(values: dict[str, Any], form_type: str | None = ADMIN, ftype: str = "submit") -> Form:
    fields = [Field("FORM_TYPE", "hidden", values=[form_type])] if form_type else []
    for var, value in values.items():
        if isinstance(value, bool):
            value = ["1" if value else "0"]
        elif isinstance(value, str):
            value = [value]
        fields.append(Field(var, None, values=list(value)))
    return Form(ftype, fields=fields)


async def command(
    client: Any,
    node: str,
    action: str | None = "execute",
    sessionid: str | None = None,
    values: dict[str, Any] | None = None,
    form: Form | None = None,
    to: str = DOMAIN,
    extra: list[Element] | None = None,
    iq_type: str = "set",
) -> Answer:
    iq = client.make_iq(ito=to, itype=iq_type)
    attrs = {"node": node}
    if action is not None:
        attrs["action"] = action
    if sessionid is not None:
        attrs["sessionid"] = sessionid
    cmd = Element(COMMAND, attrs)
    if values is not None:
        form = submit(values)
    if form is not None:
        cmd.append(form.to_element())
    for el in extra or []:
        cmd.append(el)
    iq.xml.append(cmd)
    try:
        reply = await iq.send(timeout=10)
    except IqError as err:
        error = err.iq.xml.find(ns.q(ns.CLIENT, "error"))
        assert error is not None
        condition = app = text = None
        for child in error:
            uri, _, local = child.tag[1:].partition("}")
            if uri == ns.STANZAS_ERR and local == "text":
                text = child.text
            elif uri == ns.STANZAS_ERR:
                condition = local
            else:
                app = local
        raise Refused(error.get("type", ""), condition or "", app, text) from None
    el = reply.xml.find(COMMAND)
    assert el is not None, reply
    x = el.find(ns.q(ns.XDATA, "x"))
    actions = el.find(ns.q(ns.COMMANDS, "actions"))
    return Answer(
        status=el.get("status", ""),
        sessionid=el.get("sessionid", ""),
        node=el.get("node", ""),
        form=Form.from_element(x) if x is not None else None,
        notes=[
            (n.get("type", "info"), n.text or "") for n in el.findall(ns.q(ns.COMMANDS, "note"))
        ],
        actions=[a.tag.split("}")[1] for a in actions] if actions is not None else [],
        default=actions.get("execute") if actions is not None else None,
        xml=el,
    )


async def run(
    client: Any,
    node: str,
    values: dict[str, Any] | None = None,
    form_type: str | None = ADMIN,
    **kw: Any,
) -> Answer:
    """execute, then (if a form came back) complete it with `values`."""
    first = await command(client, node, **kw)
    if first.status != "executing":
        return first
    form = submit(values or {}, form_type)
    return await command(client, node, "complete", first.sessionid, form=form, **kw)


async def refused(coro: Any) -> Refused:
    try:
        answer = await coro
    except Refused as err:
        return err
    raise AssertionError(f"not refused: {answer}")


async def listed(client: Any, to: str = DOMAIN) -> set[str]:
    items = await client.plugin["xep_0030"].get_items(jid=to, node=ns.COMMANDS, timeout=10)
    return {node for _jid, node, _name in items["disco_items"]["items"]}
