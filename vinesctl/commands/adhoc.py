"""`vinesctl adhoc list|run`: any server's ad-hoc commands (XEP-0050).

`run` follows a command to its end. On a terminal it renders each form as prompts (by field
type: hidden input for text-private, choices for lists, one line per value for multi-valued
fields) and, where the server offers more than one action, asks prev/next/complete/cancel.
Without a terminal (or with --json) it fills the fields from `--set VAR=VALUE` (repeat a VAR for
several values), takes the default action at each stage, and prints the result.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from vinesctl.commands.remote import run_remote, timeout_option
from vinesctl.connection import connect_options
from vinesctl.errors import UsageError, VinesctlError
from vinesctl.output import emit, json_option

TRUE = ("1", "true", "yes", "y", "on")
FALSE = ("0", "false", "no", "n", "off")


@click.group("adhoc")
def command() -> None:
    """List and run any server's ad-hoc commands (XEP-0050)."""


to_option = click.option(
    "--to", "to", metavar="JID", help="The entity offering the commands (default: your domain)."
)


@command.command("list")
@to_option
@timeout_option
@connect_options
@json_option
@click.pass_context
def list_(
    ctx: click.Context,
    to: str | None,
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """List the commands JID offers this account (disco#items on the commands node)."""

    async def work(client: Any, conn: Any, _s: Any) -> Any:
        from vinesctl.xmpp import adhoc

        return {"commands": await adhoc.list_commands(client, _target(to, conn), timeout)}

    from vinesctl.render.adhoc import commands_table

    emit(run_remote(ctx, server, ca, insecure, as_json, work, timeout), as_json, commands_table)


def _target(to: str | None, conn: Any) -> str:
    if to is None:
        return conn.domain
    to = to.strip()
    if not to or " " in to:
        raise UsageError(f"{to!r} is not a JID", "give e.g. example.org or bot@example.org")
    return to


def parse_sets(pairs: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pair in pairs:
        var, eq, value = pair.partition("=")
        if not eq or not var.strip():
            raise UsageError(f"--set {pair!r} is not VAR=VALUE", "write e.g. --set max_items=25")
        out.setdefault(var.strip(), []).append(value)
    return out


def _boolean(value: str) -> str:
    v = value.strip().lower()
    if v in TRUE:
        return "1"
    if v in FALSE:
        return "0"
    raise UsageError(f"{value!r} is not a boolean", "use true or false")


def fill(form: Any, given: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Answers from --set for the fields this form shows; and the required fields that are
    still without a value."""
    answers: dict[str, list[str]] = {}
    missing = []
    for f in form.fields if form else []:
        if not f.var or f.type in ("fixed", "hidden"):
            continue
        if f.var in given:
            values = given[f.var]
            if f.type == "boolean":
                values = [_boolean(v) for v in values[-1:]]
            elif not f.multi:
                values = values[-1:]
            answers[f.var] = values
        elif f.required and not any(v.strip() for v in f.values):
            missing.append(f.var)
    return answers, missing


# ---- prompts ---------------------------------------------------------------------------------


def _say(text: str, style: str | None = None) -> None:
    click.secho(text, err=True, fg=style)


def _choose(f: Any, multi: bool) -> list[str]:
    for n, o in enumerate(f.options, 1):
        mark = "*" if o.value in f.values else " "
        _say(f"  {mark}{n:>2}. {o.label or o.value}" + (f" ({o.value})" if o.label else ""))
    by_number = {str(n): o.value for n, o in enumerate(f.options, 1)}
    values = {o.value for o in f.options}
    default = ",".join(str(n) for n, o in enumerate(f.options, 1) if o.value in f.values)
    while True:
        hint = "numbers or values, comma-separated" if multi else "number or value"
        text = click.prompt(
            f"{f.title} ({hint})",
            default=default or ("" if not f.required else None),
            show_default=bool(default),
            err=True,
        )
        picked = [p.strip() for p in text.split(",")] if multi else [text.strip()]
        picked = [by_number.get(p, p) for p in picked if p]
        bad = [p for p in picked if values and p not in values]
        if bad:
            _say(f"not a choice: {', '.join(bad)}", "red")
            continue
        if f.required and not picked:
            _say("a value is required", "red")
            continue
        return picked


def _lines(f: Any) -> list[str]:
    current = [v for v in f.values if v]
    hint = "one per line, an empty line ends"
    if current:
        _say(f"  now: {', '.join(current)}  (an empty first line keeps it)")
    _say(f"{f.title} ({hint}):")
    values: list[str] = []
    while True:
        line = click.prompt(
            f"  {f.var} #{len(values) + 1}", default="", show_default=False, err=True
        )
        if not line:
            break
        values.append(line)
    if not values and current:
        return current
    if f.required and not values:
        _say("a value is required", "red")
        return _lines(f)
    return values


def prompt_field(f: Any) -> list[str]:
    if f.desc:
        _say(f"  {f.desc}")
    if f.type == "boolean":
        default = f.value.lower() in TRUE
        return ["1" if click.confirm(f.title, default=default, err=True) else "0"]
    if f.type in ("list-single", "list-multi") and f.options:
        return _choose(f, f.type == "list-multi")
    if f.multi:
        return _lines(f)
    hidden = f.type == "text-private"
    while True:
        value = click.prompt(
            f.title + ("" if f.required else " (optional)"),
            default=f.value if (f.value and not hidden) else ("" if not f.required else None),
            show_default=bool(f.value) and not hidden,
            hide_input=hidden,
            err=True,
        )
        if value or not f.required:
            return [value] if value else []
        _say("a value is required", "red")


def ask(stage: Any, given: dict[str, list[str]]) -> tuple[str, dict[str, list[str]]]:
    """Prompts for one stage: notes, title, instructions, each field not given by --set, and
    the action when there is a choice."""
    for note in stage.notes:
        _say(f"{note.type}: {note.text}", {"info": "green", "warn": "yellow"}.get(note.type, "red"))
    form = stage.form
    answers, _ = fill(form, given)
    if form is not None:
        if form.title:
            click.secho(form.title, err=True, bold=True)
        for line in form.instructions:
            _say(line)
        for f in form.fields:
            if f.type == "hidden" or f.var in answers:
                continue
            if f.type == "fixed":
                _say("\n".join(f.values))
                continue
            if not f.var:
                continue
            answers[f.var] = prompt_field(f)
    action = stage.forward
    if len(stage.actions) > 1:
        choices = [*stage.actions, "cancel"]
        action = click.prompt("action", type=click.Choice(choices), default=stage.forward, err=True)
    return action, answers


# ---- run -------------------------------------------------------------------------------------


@command.command("run")
@click.argument("node")
@to_option
@click.option(
    "--set",
    "sets",
    metavar="VAR=VALUE",
    multiple=True,
    help="Answer the field VAR (repeat for several values or fields).",
)
@timeout_option
@connect_options
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    node: str,
    to: str | None,
    sets: tuple[str, ...],
    timeout: float,
    server: str | None,
    ca: str | None,
    insecure: bool,
    as_json: bool,
) -> None:
    """Run the command NODE at JID (default: your domain) to its end.

    Example: vinesctl adhoc run http://jabber.org/protocol/admin#get-online-users-list
    --set max_items=25 --json
    """
    given = parse_sets(sets)
    try:
        interactive = sys.stdin.isatty() and not as_json
    except (AttributeError, ValueError):
        interactive = False
    used: set[str] = set()

    async def work(client: Any, conn: Any, spinner: Any) -> Any:
        import asyncio

        from vinesctl.xmpp import adhoc

        target = _target(to, conn)

        async def answer(stage: Any) -> tuple[str, dict[str, list[str]]]:
            shown = {f.var for f in (stage.form.fields if stage.form else [])}
            used.update(shown & set(given))
            if interactive:
                spinner.stop()
                return await asyncio.to_thread(ask, stage, given)
            answers, missing = fill(stage.form, given)
            if missing:
                raise UsageError(
                    f"{node} needs a value for {', '.join(missing)}",
                    "give them with --set VAR=VALUE (or run it on a terminal)",
                )
            return stage.forward, answers

        try:
            return await adhoc.run(client, target, node, answer, timeout)
        except adhoc.AdhocError as exc:
            if exc.condition in ("forbidden", "not-authorized"):
                raise VinesctlError(
                    f"forbidden: {conn.jid} may not run {node} at {target}"
                    + (f" ({exc.text})" if exc.text else ""),
                    "log in with an account allowed to run it (--profile)",
                ) from None
            if exc.condition == "item-not-found":
                exc.fix = f"see the commands offered with 'vinesctl adhoc list --to {target}'"
            raise

    history = run_remote(ctx, server, ca, insecure, as_json, work, timeout)
    unused = sorted(set(given) - used)
    if unused:
        click.echo(f"warning: no form asked for {', '.join(unused)} (ignored)", err=True)
    last = history[-1]
    result = {
        "jid": last.jid,
        "node": last.node,
        "status": last.status,
        "stages": len(history),
        "notes": [n for stage in history for n in stage.notes],
        "form": last.form,
    }
    from vinesctl.render.adhoc import result_view

    if interactive:  # notes of earlier stages were shown before their prompts
        emit({**result, "notes": last.notes}, False, result_view)
    else:
        emit(result, as_json, result_view)
    if any(n.type == "error" for n in last.notes):
        ctx.exit(1)
