"""Ad-hoc commands (XEP-0050) as data, and the state machine that runs them.

A module registers a `Command` with the registry the `adhoc` module provides:

    registry = api.use("adhoc")                 # a CommandRegistry
    registry.add(Command(
        node="urn:example#hello", name="Say hello",
        stages=(ask_name,),                     # form builders, shown in order
        run=greet,                              # gets every submitted value, returns a Result
        allowed=lambda requester, service: True,
    ))

A stage is a function `(Context) -> Form` (sync or async) that builds the form of that step;
`Context.values` holds what earlier stages returned, so a later form can depend on them. After
the last stage (or at once, for a command without stages) `run(Context)` returns a `Result`
(notes and an optional result form) or raises `CommandFailed` (completed with an error note).
`allowed(requester, service)` is asked on every request and when listing, so a requester who
may not run a command neither sees it nor reaches it.

Actions: a one-stage command offers `complete`; a longer one offers `next`, then `prev`/`next`,
then `prev`/`complete`; `cancel` is always allowed; `execute` means the offered default.
Sessions have unguessable ids, belong to the requester's full JID, and expire after `ttl`
seconds without activity.
"""

from __future__ import annotations

import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vines_server.xmpp import ns, tokens
from vines_server.xmpp.errors import StanzaError
from vines_server.xmpp.forms import Form, FormError, prefill, validate
from vines_server.xmpp.jid import JID

if TYPE_CHECKING:
    from vines_server.core.sessions import Session

ACTIONS = ("execute", "next", "prev", "complete", "cancel")
MAX_SESSIONS_PER_REQUESTER = 16
ENDED_REMEMBERED = 4096  # completed/expired ids kept to answer session-expired


def command_error(condition: str, app: str, text: str | None = None) -> StanzaError:
    kind = "cancel" if condition == "not-allowed" else "modify"
    return StanzaError(condition, text, type=kind, app=(ns.COMMANDS, app))


def bad_payload(text: str) -> StanzaError:
    return command_error("bad-request", "bad-payload", text)


class CommandFailed(Exception):
    """The command ran and could not do what was asked: completed with an error note."""


@dataclass(frozen=True)
class Note:
    type: str  # info | warn | error
    text: str


@dataclass
class Result:
    notes: list[Note] = field(default_factory=list)
    form: Form | None = None

    @classmethod
    def info(cls, text: str, form: Form | None = None) -> Result:
        return cls([Note("info", text)], form)


@dataclass
class Context:
    requester: JID  # full JID
    service: JID  # the JID the command was sent to (a domain we host)
    origin: Session | None
    values: dict[str, Any] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)  # notes a stage adds to its response


FormBuilder = Callable[[Context], Form | Awaitable[Form]]
Runner = Callable[[Context], Awaitable[Result]]
Allowed = Callable[[JID, JID], bool]


def anyone(requester: JID, service: JID) -> bool:
    return True


@dataclass(frozen=True)
class Command:
    node: str
    name: str
    run: Runner
    stages: tuple[FormBuilder, ...] = ()
    allowed: Allowed = anyone


@dataclass
class Response:
    status: str  # executing | completed | canceled
    session_id: str
    form: Form | None = None
    notes: list[Note] = field(default_factory=list)
    actions: tuple[str, ...] = ()  # offered among prev, next, complete
    default: str | None = None


@dataclass
class CommandSession:
    id: str
    node: str
    owner: JID
    service: JID
    expires: float
    stage: int = 0
    shown: Form | None = None  # the form of the current stage, to validate against
    answers: list[dict[str, Any]] = field(default_factory=list)  # per completed stage

    def values(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for answer in self.answers[: self.stage]:
            merged.update(answer)
        return merged


class SessionStore:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._live: dict[str, CommandSession] = {}
        self._ended: OrderedDict[str, JID] = OrderedDict()

    def open(self, node: str, owner: JID, service: JID, capped: bool = True) -> CommandSession:
        self._sweep()
        mine = sum(1 for s in self._live.values() if s.owner == owner)
        if capped and mine >= MAX_SESSIONS_PER_REQUESTER:
            raise StanzaError(
                "not-allowed",
                f"at most {MAX_SESSIONS_PER_REQUESTER} open command sessions: "
                "complete or cancel one first",
                type="cancel",
            )
        session_id = tokens.token_urlsafe(18)
        session = CommandSession(session_id, node, owner, service, self.clock() + self.ttl)
        self._live[session_id] = session
        return session

    def lookup(self, session_id: str, node: str, owner: JID) -> CommandSession:
        session = self._live.get(session_id)
        if session is not None and session.owner == owner and session.node == node:
            if session.expires > self.clock():
                session.expires = self.clock() + self.ttl
                return session
            self.end(session)
        if self._ended.get(session_id) == owner:
            raise command_error("not-allowed", "session-expired", "this session has ended")
        raise command_error("bad-request", "bad-sessionid", "no such command session")

    def end(self, session: CommandSession) -> None:
        self._live.pop(session.id, None)
        self._ended[session.id] = session.owner
        while len(self._ended) > ENDED_REMEMBERED:
            self._ended.popitem(last=False)

    def __len__(self) -> int:
        return len(self._live)

    def _sweep(self) -> None:
        now = self.clock()
        for session in [s for s in self._live.values() if s.expires <= now]:
            self.end(session)


class CommandRegistry:
    """The commands a service offers; `on_add`/`on_remove` keep disco in step."""

    def __init__(
        self,
        ttl: float = 600.0,
        on_add: Callable[[Command], None] | None = None,
        on_remove: Callable[[Command], None] | None = None,
    ) -> None:
        self._commands: dict[str, Command] = {}
        self._loaders: dict[str, Callable[[], None]] = {}  # declared node -> loads its module
        self.sessions = SessionStore(ttl)
        self._on_add, self._on_remove = on_add, on_remove

    def add(self, command: Command) -> None:
        """Register a command; one that was declared is replaced where it stands (the order
        disco lists them in stays that of the declarations)."""
        if command.node in self._commands and self._loaders.pop(command.node, None) is None:
            raise ValueError(f"command node {command.node} is already registered")
        self._commands[command.node] = command
        if self._on_add is not None:
            self._on_add(command)

    def declare(self, command: Command, load: Callable[[], None]) -> None:
        """A command of a module not loaded yet: listed and authorised from `command` (node,
        name, allowed), and at its first `get`, `load()` loads the module, whose `add` puts
        the real command in its place."""
        self.add(command)
        self._loaders[command.node] = load

    def declared(self, node: str) -> bool:
        """True while `node` is only declared: its module has not been loaded."""
        return node in self._loaders

    def remove(self, node: str) -> None:
        command = self._commands.pop(node, None)
        if command is not None and self._on_remove is not None:
            self._on_remove(command)

    def get(self, node: str) -> Command | None:
        load = self._loaders.get(node)
        if load is not None:
            load()
            if self._loaders.pop(node, None) is not None:
                raise LookupError(f"loading command {node} did not register it")
        return self._commands.get(node)

    def visible(self, requester: JID, service: JID) -> list[Command]:
        return [c for c in self._commands.values() if c.allowed(requester, service)]

    def __iter__(self):
        return iter(list(self._commands.values()))

    # ---- the state machine ---------------------------------------------------------------

    async def step(
        self,
        command: Command,
        ctx: Context,
        action: str,
        session_id: str | None,
        submitted: Form | None,
    ) -> Response:
        """One request: start (no session id) or continue a session. Authorization is the
        caller's job and happens before this."""
        if action not in ACTIONS:
            raise command_error("bad-request", "malformed-action", f"unknown action {action!r}")
        if session_id is None:
            if action != "execute":
                raise command_error("bad-request", "bad-action", "start a command with execute")
            # a command without stages ends within this request: it holds no session slot
            capped = bool(command.stages)
            session = self.sessions.open(command.node, ctx.requester, ctx.service, capped)
            return await self._show_or_run(command, session, ctx)
        session = self.sessions.lookup(session_id, command.node, ctx.requester)
        if action == "cancel":
            self.sessions.end(session)
            return Response("canceled", session.id)
        offered, default = _offered(session.stage, len(command.stages))
        if action == "execute":
            action = default
        if action not in offered:
            raise command_error(
                "bad-request", "bad-action", f"{action} is not possible at this stage"
            )
        if action == "prev":
            session.stage -= 1
            session.answers = session.answers[: session.stage + 1]
            return await self._show(command, session, ctx, session.answers.pop())
        try:
            answer = validate(session.shown or Form(), submitted or Form("submit"))
        except FormError as exc:
            raise bad_payload(str(exc)) from None
        session.answers.append(answer)
        session.stage += 1
        return await self._show_or_run(command, session, ctx)

    async def _show_or_run(
        self, command: Command, session: CommandSession, ctx: Context
    ) -> Response:
        if session.stage < len(command.stages):
            return await self._show(command, session, ctx, None)
        ctx.values = session.values()
        try:
            result = await command.run(ctx)
        except CommandFailed as exc:
            result = Result([Note("error", str(exc))])
        except StanzaError as err:
            if err.app == (ns.COMMANDS, "bad-payload") and command.stages:
                session.stage -= 1  # the last form stays open: fix it and submit again
                session.answers.pop()
            else:
                self.sessions.end(session)
            raise
        self.sessions.end(session)
        return Response("completed", session.id, result.form, ctx.notes + result.notes)

    async def _show(
        self,
        command: Command,
        session: CommandSession,
        ctx: Context,
        previous: dict[str, Any] | None,
    ) -> Response:
        ctx.values = session.values()
        try:
            built = command.stages[session.stage](ctx)
            form = await built if inspect.isawaitable(built) else built
        except CommandFailed as exc:
            self.sessions.end(session)
            return Response("completed", session.id, None, [Note("error", str(exc))])
        if previous:
            form = prefill(form, previous)
        session.shown = form
        offered, default = _offered(session.stage, len(command.stages))
        return Response("executing", session.id, form, list(ctx.notes), offered, default)


def _offered(stage: int, stages: int) -> tuple[tuple[str, ...], str]:
    last = stage >= stages - 1
    offered = ("prev",) if stage > 0 else ()
    offered += ("complete",) if last else ("next",)
    return offered, ("complete" if last else "next")
