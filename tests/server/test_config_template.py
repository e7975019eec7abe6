"""The vines.toml template documents every key the schema accepts: the key list comes from the
schema's dataclasses (vines_server.config), so a key added there without a line and a note in
the template fails here. Uncommented, the template is a valid config with the same defaults."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest
from vines_server import config as schema
from vines_server.config_template import render_config


def schema_keys() -> dict[str, set[str]]:
    """Section -> keys, from the dataclasses: each dataclass field of Config is a [section];
    [domains.NAME] holds DomainConfig's fields but its name; Config's plain fields (bar the file
    path and the domains table) are [server] keys."""
    hints = typing.get_type_hints(schema.Config)
    sections: dict[str, set[str]] = {"server": set()}
    for f in dataclasses.fields(schema.Config):
        kind = hints[f.name]
        if f.metadata.get("toml") is False:  # set at run time (--node-index), not in the file
            continue
        if dataclasses.is_dataclass(kind):
            sections[f.name] = {g.name for g in dataclasses.fields(kind)}
        elif f.name in ("domains", "components"):
            value = typing.get_args(kind)[1]
            unnamed = {"name"} if f.name == "domains" else {"domain"}
            sections[f"{f.name}.NAME"] = {g.name for g in dataclasses.fields(value)} - unnamed
        elif f.name != "path":
            sections["server"].add(f.name)
    return sections


@pytest.fixture
def template(tmp_path: Path) -> str:
    cert, key = tmp_path / "localhost.crt", tmp_path / "localhost.key"
    return render_config("localhost", "admin@localhost", "127.0.0.1", 5222, 5223, cert, key)


def sections_of(text: str) -> dict[str, list[str]]:
    """Section -> its lines, led by the comment block written just above its header."""
    out: dict[str, list[str]] = {}
    current = ""
    block: list[str] = []  # the comment lines since the last other line
    for line in text.splitlines():
        header = re.fullmatch(r"(?:# )?\[([^\]]+)\]", line)
        if header:
            current = re.sub(r"^(domains|components)\..*", r"\1.NAME", header[1])
            out[current] = list(block)
        elif current:
            out[current].append(line)
        block = [*block, line] if line.startswith("#") and not KEY.match(line) else []
    return out


KEY = re.compile(r"#?\s*\w+\s*=")  # a key line, set or commented out


def documented(lines: list[str], at: int) -> bool:
    """A note after the value, or (for set keys) a comment above the group of set keys."""
    if re.search(r"=\s*\S.*\s#\s*\S", lines[at]):
        return True
    if lines[at].startswith("#"):  # a commented-out default carries its own note
        return False
    while at > 0 and KEY.match(lines[at - 1]) and not lines[at - 1].startswith("#"):
        at -= 1
    return at > 0 and lines[at - 1].startswith("#") and not KEY.match(lines[at - 1])


def test_every_schema_key_is_in_the_template_with_a_note(template: str) -> None:
    keys = schema_keys()
    assert {"limits", "deadlines", "presence", "listeners"} <= set(keys)  # derived, not empty
    assert "auth_ban_seconds" in keys["limits"] and "hibernate" in keys["deadlines"]
    sections = sections_of(template)
    assert set(sections) == set(keys)
    for section, names in keys.items():
        lines = sections[section]
        for name in names:
            at = [i for i, line in enumerate(lines) if re.match(rf"#?\s*{name}\s*=", line)]
            assert at, f"[{section}] {name} is not in the vines.toml template"
            assert documented(lines, at[0]), f"[{section}] {name} has no note in the template"


def test_the_uncommented_template_is_valid_with_the_schema_defaults(template: str) -> None:
    # the component example stays commented: it names a secret file that does not exist
    text, _, _ = template.partition("# [components.")
    text = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.MULTILINE)
    cfg = schema.parse(tomllib.loads(text), Path("/srv/vines/vines.toml"))
    assert cfg.limits == schema.Limits()
    assert cfg.deadlines == schema.Deadlines()
    assert cfg.presence == schema.PresenceConfig()
