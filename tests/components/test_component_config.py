"""Component configuration: one-line errors naming the key; plaintext only on loopback; the
secret never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from vines_server.config import ConfigError, parse

from tests.components.conftest import WORK

BASE = {"domains": {"vines.test": {"certificate": "c.pem", "key": "k.pem"}}}


def config(tmp: Path, listeners: dict | None = None, components: dict | None = None):
    raw = {**BASE, "listeners": listeners or {}, "components": components or {}}
    return parse(raw, tmp / "vines.toml")


def test_defaults_no_listener_loopback_plaintext(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert cfg.listeners.component_port is None
    assert cfg.listeners.component_bind == ("127.0.0.1",) and not cfg.listeners.component_tls
    assert cfg.components == {}


def test_a_component_with_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "work.secret").write_text("from-a-file\n")
    cfg = config(
        tmp_path,
        {"component_port": 5347},
        {WORK: {"secret_file": "work.secret", "name": "Work queue", "conflict": "kick_old"}},
    )
    work = cfg.components[WORK]
    assert (work.secret, work.name, work.conflict) == ("from-a-file", "Work queue", "kick_old")
    assert "from-a-file" not in repr(cfg)  # never in logs or debug output


@pytest.mark.parametrize(
    ("listeners", "components", "names"),
    [
        ({"component_port": 5347, "component_bind": ["0.0.0.0"]}, {}, "listeners.component_tls"),
        ({"component_port": 5347, "component_bind": ["::1", "10.0.0.1"]}, {}, "component_tls"),
        ({"component_bind": ["127.0.0.999"]}, {}, "listeners.component_bind"),
        ({"component_tls": "yes"}, {}, "listeners.component_tls"),
        ({"component_port": 70000}, {}, "listeners.component_port"),
        ({}, {WORK: {"name": "x"}}, f'components."{WORK}"'),
        ({}, {WORK: {"secret": "a", "secret_file": "b"}}, f'components."{WORK}"'),
        ({}, {WORK: {"secret_file": "missing.secret"}}, f'components."{WORK}".secret_file'),
        ({}, {WORK: {"secret": "a", "conflict": "both"}}, f'components."{WORK}".conflict'),
        ({}, {WORK: {"secret": "a", "colour": "red"}}, f'components."{WORK}".colour'),
        ({}, {"vines.test": {"secret": "a"}}, 'components."vines.test"'),
        ({}, {"not a domain!": {"secret": "a"}}, 'components."not a domain!"'),
    ],
)
def test_errors_name_the_key(tmp_path: Path, listeners, components, names: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, listeners, components)
    message = str(err.value)
    assert names in message and "\n" not in message
    assert "secret_file = " not in message


def test_off_loopback_with_tls_is_fine_and_unused_bind_does_not_matter(tmp_path: Path) -> None:
    cfg = config(
        tmp_path, {"component_port": 5347, "component_bind": ["0.0.0.0"], "component_tls": True}
    )
    assert cfg.listeners.component_tls
    # sites binding c2s everywhere are unaffected while component_port stays false
    assert config(tmp_path, {"bind": ["0.0.0.0"], "component_bind": ["0.0.0.0"]})
