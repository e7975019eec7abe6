"""Ages on the command line: `30d`, `12h`, `2w`, `45m` (a number and one unit)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


class AgeType(click.ParamType):
    name = "AGE"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = _AGE.match(str(value).lower())
        if not match or int(match[1]) == 0:
            self.fail(f"{value!r} is not an age: give e.g. 30d, 12h, 2w or 45m", param, ctx)
        return timedelta(**{_UNITS[match[2]]: int(match[1])})


AGE = AgeType()
