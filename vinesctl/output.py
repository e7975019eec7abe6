"""One shared `--json` option and `emit()`: the same data object prints as JSON or through a
Rich renderer, so the two views never drift apart.

The JSON rules (README, "JSON output"): one object per command on stdout (`presence --watch`:
one object per line), numbers as numbers, an absent value as null, times in ISO 8601, and a
failure as `{"error": {...}}` with the same exit code as without --json.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

# whether the running command was given --json: `cli.main` reads it to print an error as JSON
_json_requested = False


def _note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _json_requested
    if value:
        _json_requested = True
    return value


def json_requested() -> bool:
    return _json_requested


def reset_json_requested() -> None:
    global _json_requested
    _json_requested = False


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_note_json,
    help="Print machine-readable JSON instead of a table.",
)


def to_jsonable(value: Any) -> Any:
    """Plain JSON values; an object with a `to_json()` method chooses its own shape."""
    if hasattr(value, "to_json") and not isinstance(value, type):
        return to_jsonable(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def emit(data: Any, as_json: bool, render: Callable[[Any], Any] | None = None) -> None:
    """Print `data` as JSON (stdout) or as what `render(data)` returns (Rich renderable or str)."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")
        return
    renderable = render(data) if render else data
    console().print(renderable)


def emit_error(message: str, fix: str | None, code: int, condition: str | None = None) -> None:
    """A failure as JSON on stdout, for a script that parses stdout whatever happened."""
    error = {"message": message, "fix": fix, "code": code, "condition": condition or None}
    sys.stdout.write(json.dumps({"error": error}, indent=2) + "\n")
    sys.stdout.flush()


def typed(text: str | None) -> int | float | str | None:
    """A form value as JSON wants it: '' -> None, '42' -> 42, '0.5' -> 0.5, else the text.
    Only for fields known to hold numbers (statistics): a version '1.0' must stay text."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if number == number and abs(number) != float("inf") else text


def counted(number: int, noun: str) -> str:
    """'1 user', '2 users', '0 users' (regular plurals only)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def console(stderr: bool = False):
    from rich.console import Console

    # emoji off: "jabber:x:data" must not print as "jabber❌data"
    return Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False)
