"""One shared `--json` option and `emit()`: the same data object prints as JSON or through a
Rich renderer, so the two views never drift apart."""

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

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table."
)


def to_jsonable(value: Any) -> Any:
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


def console(stderr: bool = False):
    from rich.console import Console

    # emoji off: "jabber:x:data" must not print as "jabber❌data"
    return Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False)
