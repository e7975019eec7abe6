"""Rich renderers for ad-hoc commands: the command list, notes, forms and result tables."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

NOTE_STYLE = {"info": "green", "warn": "yellow", "error": "bold red"}


def commands_table(data: dict[str, list[Any]]) -> Any:
    """{'commands': [CommandItem]}."""
    items = data["commands"]
    if not items:
        return Text("no commands offered to this account", style="dim")
    show_jid = len({item.jid for item in items}) > 1  # all at the queried entity: say nothing
    table = Table(box=None, pad_edge=False)
    table.add_column("node", no_wrap=True, style="cyan", overflow="fold")
    table.add_column("name")
    if show_jid:
        table.add_column("jid", style="dim")
    for item in items:
        row = [item.node, item.name] + ([item.jid] if show_jid else [])
        table.add_row(*row)
    return table


def note_text(note: Any) -> Text:
    style = NOTE_STYLE.get(note.type, "")
    return Text.assemble((f"{note.type}: ", style), note.text)


def _value(f: Any) -> str:
    if f.type == "text-private":
        return "********" if f.values else ""
    if f.type == "boolean":
        return "yes" if f.value.lower() in ("1", "true") else "no"
    labels = {o.value: o.label for o in f.options}
    return "\n".join(labels.get(v) or v for v in f.values)


def form_view(form: Any) -> Group:
    """A result form: title, instructions, fields as label/value rows, items as a table."""
    parts: list[Any] = []
    if form.title:
        parts.append(Text(form.title, style="bold"))
    parts += [Text(i, style="italic") for i in form.instructions if i]
    shown = [f for f in form.fields if f.type != "hidden" and f.var != "FORM_TYPE"]
    if shown:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for f in shown:
            table.add_row(f.title if f.type != "fixed" else "", _value(f))
        parts.append(table)
    if form.items:
        columns = [(f.var, f.title) for f in form.reported]
        if not columns:
            seen: dict[str, None] = {}
            for row in form.items:
                seen.update(dict.fromkeys(row))
            columns = [(v, v) for v in seen]
        items = Table(pad_edge=False)
        for _var, title in columns:
            items.add_column(title, overflow="fold")
        for row in form.items:
            items.add_row(*("\n".join(row.get(var, [])) for var, _ in columns))
        parts.append(items)
    return Group(*parts)


def result_view(result: dict[str, Any]) -> Group:
    """The outcome of `vinesctl adhoc run` (see commands/adhoc.py): notes, then the form."""
    parts: list[Any] = [note_text(n) for n in result["notes"]]
    if result["form"] is not None:
        parts.append(form_view(result["form"]))
    if result["status"] == "canceled":
        parts.append(Text("canceled", style="yellow"))
    elif not parts:
        parts.append(Text(f"{result['node']}: {result['status']}", style="green"))
    return Group(*parts)
