"""Ad-hoc commands (XEP-0050) over a logged-in session, with the flow controlled by the caller.

    commands = await list_commands(client, "example.org")
    stage = await execute(client, "example.org", node)
    while stage.status == "executing":
        stage = await submit(client, stage, {"accountjid": ["a@example.org"]}, stage.forward)

or `run(client, jid, node, answer)` with `answer(stage) -> (action, values)` doing that loop.

Data forms (XEP-0004) are parsed into plain dataclasses (`Form`, `Field`, `Option`, `Note`,
`Stage`): nothing from slixmpp leaves `vinesctl.xmpp`. Errors become `AdhocError` with the stanza
error condition and the XEP-0050 specific condition (bad-sessionid, session-expired, ...).
"""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

from vines_server.xmpp import forms as core_forms
from vines_server.xmpp import ns

from vinesctl.errors import VinesctlError

# namespaces and XEP-0004 rules from the server's sans-I/O core: one copy of each
NS_COMMANDS, NS_DATA, NS_ITEMS = ns.COMMANDS, ns.XDATA, ns.DISCO_ITEMS
NS_STANZAS = ns.STANZAS_ERR
MULTI_TYPES = core_forms.MULTI
STEP_ACTIONS = ("prev", "next", "complete")
MAX_STAGES = 64  # a runaway multi-stage command ends here


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass
class Option:
    value: str
    label: str = ""


@dataclass
class Field:
    var: str = ""
    type: str = "text-single"
    label: str = ""
    desc: str = ""
    required: bool = False
    values: list[str] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""

    @property
    def multi(self) -> bool:
        return self.type in MULTI_TYPES

    @property
    def title(self) -> str:
        return self.label or self.var


@dataclass
class Form:
    type: str = "form"  # form | submit | cancel | result
    title: str = ""
    instructions: list[str] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    reported: list[Field] = field(default_factory=list)  # columns of a multi-item result
    items: list[dict[str, list[str]]] = field(default_factory=list)  # rows, var -> values
    payloads: list[str] = field(default_factory=list)  # foreign elements inside, as XML text

    @property
    def form_type(self) -> str:
        f = self.field("FORM_TYPE")
        return f.value if f is not None and f.type == "hidden" else ""

    def field(self, var: str) -> Field | None:
        return next((f for f in self.fields if f.var == var), None)

    def values(self) -> dict[str, list[str]]:
        """var -> values of every named field except FORM_TYPE."""
        return {f.var: list(f.values) for f in self.fields if f.var and f.var != "FORM_TYPE"}


@dataclass
class Note:
    type: str  # info | warn | error
    text: str


@dataclass
class CommandItem:
    jid: str
    node: str
    name: str = ""


@dataclass
class Stage:
    """One response of the responder."""

    jid: str
    node: str
    sessionid: str
    status: str  # executing | completed | canceled
    actions: list[str] = field(default_factory=list)  # offered among prev, next, complete
    default: str = ""  # the <actions execute='...'> attribute
    notes: list[Note] = field(default_factory=list)
    form: Form | None = None

    @property
    def forward(self) -> str:
        """The action that moves on: the offered default, else next or complete; 'execute'
        when the responder offered no <actions/> (a single-stage form, XEP-0050 3.4)."""
        if not self.actions:
            return "execute"
        if self.default in self.actions and self.default != "prev":
            return self.default
        if "next" in self.actions:
            return "next"
        return "complete" if "complete" in self.actions else self.actions[-1]

    @property
    def errors(self) -> list[str]:
        return [n.text for n in self.notes if n.type == "error"]


class AdhocError(VinesctlError):
    """The responder refused a request (an iq error) or did not answer."""

    def __init__(
        self,
        jid: str,
        node: str,
        condition: str,
        text: str = "",
        specific: str = "",
        fix: str | None = None,
    ) -> None:
        self.jid, self.node = jid, node
        self.condition, self.text, self.specific = condition, text, specific
        what = f"{condition}/{specific}" if specific else condition
        detail = f"{what}: {text}" if text else what
        super().__init__(f"command {node or '(list)'} at {jid} failed ({detail})", fix)


# ---- forms -----------------------------------------------------------------------------------


def _view(f: core_forms.Field) -> Field:
    return Field(
        var=f.var or "",
        type=f.type or "text-single",
        label=f.label or "",
        desc=(f.desc or "").strip(),
        required=f.required,
        values=list(f.values),
        options=[Option(value, label or "") for label, value in f.options],
    )


def parse_form(el: Element) -> Form:
    """A `jabber:x:data` element as a `Form` (fields, reported columns and item rows), read by
    the server's own XEP-0004 code; a form it refuses raises FormError."""
    core = core_forms.Form.from_element(el)
    form = Form(
        type=core.type,
        title=(core.title or "").strip(),
        instructions=list(core.instructions),
        fields=[_view(f) for f in core.fields],
        reported=[_view(f) for f in core.reported or []],
        payloads=[ET.tostring(child, encoding="unicode") for child in core.extra],
    )
    for item in core.items:
        row: dict[str, list[str]] = {}
        for f in item:
            row.setdefault(f.var or "", []).extend(f.values)
        form.items.append(row)
    return form


def submit_element(form: Form | None, answers: dict[str, list[str]] | None) -> Element:
    """A `type='submit'` form answering `form`: each field's answer, or the value it showed
    (defaults and FORM_TYPE travel back as they came); fixed fields are left out."""
    answers = dict(answers or {})
    fields = []
    for f in form.fields if form else []:
        if not f.var or f.type == "fixed":
            continue
        values = answers.pop(f.var, None)
        typ = None if f.type == "text-single" else f.type  # the default goes unsaid
        fields.append(core_forms.Field(f.var, typ, values=f.values if values is None else values))
    # answers for fields the form did not show
    fields += [core_forms.Field(var, None, values=values) for var, values in answers.items()]
    return core_forms.Form("submit", fields=fields).to_element()


# ---- the wire --------------------------------------------------------------------------------


def _stage(jid: str, node: str, el: Element | None) -> Stage:
    if el is None:
        raise AdhocError(jid, node, "bad-reply", "the answer holds no <command/>")
    actions_el = el.find(_q(NS_COMMANDS, "actions"))
    actions: list[str] = []
    default = ""
    if actions_el is not None:
        default = actions_el.get("execute", "")
        actions = [a for a in STEP_ACTIONS if actions_el.find(_q(NS_COMMANDS, a)) is not None]
        if default and default not in actions:
            actions.append(default)
        if not default and "next" in actions:
            default = "next"
    form_el = el.find(_q(NS_DATA, "x"))
    try:
        form = parse_form(form_el) if form_el is not None else None
    except core_forms.FormError as exc:
        raise AdhocError(jid, node, "bad-reply", f"a malformed data form ({exc})") from None
    return Stage(
        jid=jid,
        node=el.get("node", node),
        sessionid=el.get("sessionid", ""),
        status=el.get("status", "completed"),
        actions=actions,
        default=default,
        notes=[
            Note(n.get("type", "info"), (n.text or "").strip())
            for n in el.findall(_q(NS_COMMANDS, "note"))
        ],
        form=form,
    )


def _error(jid: str, node: str, exc: Any) -> AdhocError:
    err_el = exc.iq.xml.find("{jabber:client}error")
    if err_el is None:
        err_el = next((c for c in exc.iq.xml if c.tag.endswith("}error")), None)
    condition, text, specific = "undefined-condition", "", ""
    if err_el is not None:
        for child in err_el:
            ns, _, tag = child.tag[1:].partition("}")
            if ns == NS_STANZAS:
                if tag == "text":
                    text = (child.text or "").strip()
                else:
                    condition = tag
            elif ns == NS_COMMANDS:
                specific = tag
    return AdhocError(jid, node, condition, text, specific)


async def _send(
    client: Any, jid: str, node: str, payload: Element, timeout: float, kind: str = "set"
) -> Any:
    from slixmpp.exceptions import IqError, IqTimeout

    iq = client.make_iq_set(ito=jid) if kind == "set" else client.make_iq_get(ito=jid)
    iq.xml.append(payload)
    try:
        return await iq.send(timeout=timeout)
    except IqError as exc:
        raise _error(jid, node, exc) from None
    except IqTimeout:
        raise AdhocError(
            jid,
            node,
            "timeout",
            f"no answer within {timeout:g}s",
            fix="the entity may be offline or busy; try again or raise --timeout",
        ) from None


async def list_commands(client: Any, jid: str, timeout: float = 15.0) -> list[CommandItem]:
    """The commands `jid` offers this account (disco#items on the commands node)."""
    query = Element(_q(NS_ITEMS, "query"), {"node": NS_COMMANDS})
    reply = await _send(client, jid, "", query, timeout, kind="get")
    q = reply.xml.find(_q(NS_ITEMS, "query"))
    items = q.findall(_q(NS_ITEMS, "item")) if q is not None else []
    return [CommandItem(i.get("jid", jid), i.get("node", ""), i.get("name", "")) for i in items]


async def execute(client: Any, jid: str, node: str, timeout: float = 15.0) -> Stage:
    """Starts the command `node` at `jid`: the first stage (or the result)."""
    cmd = Element(_q(NS_COMMANDS, "command"), {"node": node, "action": "execute"})
    reply = await _send(client, jid, node, cmd, timeout)
    return _stage(jid, node, reply.xml.find(_q(NS_COMMANDS, "command")))


async def submit(
    client: Any,
    stage: Stage,
    answers: dict[str, list[str]] | None = None,
    action: str | None = None,
    timeout: float = 15.0,
) -> Stage:
    """Answers `stage` with `action` (default: its forward action). `prev` and `cancel` carry
    no form."""
    action = action or stage.forward
    attrs = {"node": stage.node, "action": action}
    if stage.sessionid:
        attrs["sessionid"] = stage.sessionid
    cmd = Element(_q(NS_COMMANDS, "command"), attrs)
    if action not in ("prev", "cancel"):
        cmd.append(submit_element(stage.form, answers))
    reply = await _send(client, stage.jid, stage.node, cmd, timeout)
    return _stage(stage.jid, stage.node, reply.xml.find(_q(NS_COMMANDS, "command")))


async def cancel(client: Any, stage: Stage, timeout: float = 15.0) -> Stage:
    """Ends an executing session; a failure to cancel is not an error for the caller."""
    if stage.status != "executing":
        return stage
    try:
        return await submit(client, stage, None, "cancel", timeout)
    except AdhocError:
        return Stage(stage.jid, stage.node, stage.sessionid, "canceled")


Answer = Callable[[Stage], "tuple[str, dict[str, list[str]]] | Awaitable[Any]"]


async def run(
    client: Any,
    jid: str,
    node: str,
    answer: Answer,
    timeout: float = 15.0,
) -> list[Stage]:
    """Runs `node` to its end. `answer(stage)` (sync or async) returns (action, answers) for
    each executing stage; the action is prev, next, complete, execute or cancel. Returns every
    stage seen, the last one completed or canceled."""
    stage = await execute(client, jid, node, timeout)
    history = [stage]
    while stage.status == "executing":
        if len(history) >= MAX_STAGES:
            await cancel(client, stage, timeout)
            raise AdhocError(jid, node, "too-many-stages", f"gave up after {MAX_STAGES} stages")
        try:
            reply = answer(stage)
            action, answers = await reply if inspect.isawaitable(reply) else reply
        except BaseException:
            await cancel(client, stage, timeout)  # the user gave up: end the session
            raise
        if action == "cancel":
            stage = await cancel(client, stage, timeout)
        else:
            try:
                stage = await submit(client, stage, answers, action, timeout)
            except AdhocError:
                await cancel(client, stage, timeout)  # a session left open would linger
                raise
        history.append(stage)
    return history
