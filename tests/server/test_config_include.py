"""vines.toml's top-level `include`: files that add [domains.X] (and [components.X]) tables and
nothing else; a table defined twice names both files."""

from __future__ import annotations

from pathlib import Path

import pytest
from vines_server.config import ConfigError, load, read_with_includes


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


MAIN = """include = ["conf.d/*.toml"]
[domains.localhost]
certificate = "localhost.crt"
key = "localhost.key"
"""


def test_an_included_file_adds_a_domain(tmp_path):
    main = write(tmp_path / "vines.toml", MAIN)
    fragment = write(
        tmp_path / "conf.d" / "new.example.toml",
        '[domains."new.example"]\ncertificate = "new.crt"\nkey = "new.key"\n',
    )
    config = load(main)
    assert sorted(config.domains) == ["localhost", "new.example"]
    # paths stay relative to vines.toml's directory, wherever the fragment is
    assert config.domains["new.example"].certificate == tmp_path / "new.crt"
    _, sources = read_with_includes(main)
    assert sources == {("domains", "localhost"): main, ("domains", "new.example"): fragment}


def test_no_matching_file_is_fine(tmp_path):
    assert list(load(write(tmp_path / "vines.toml", MAIN)).domains) == ["localhost"]


def test_a_table_defined_twice_names_both_files(tmp_path):
    main = write(tmp_path / "vines.toml", MAIN)
    fragment = write(
        tmp_path / "conf.d" / "dup.toml",
        '[domains.localhost]\ncertificate = "x.crt"\nkey = "x.key"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load(main)
    assert str(main) in str(caught.value) and str(fragment) in str(caught.value)
    assert "defined twice" in str(caught.value)


@pytest.mark.parametrize("text", ["[limits]\nstanza_size = 20000\n", 'include = ["x"]\n'])
def test_an_included_file_adds_only_domains_and_components(tmp_path, text):
    main = write(tmp_path / "vines.toml", MAIN)
    write(tmp_path / "conf.d" / "bad.toml", text)
    with pytest.raises(ConfigError, match="cannot be set in an included file"):
        load(main)


def test_include_must_be_a_list(tmp_path):
    main = write(tmp_path / "vines.toml", 'include = "conf.d/*.toml"\n' + MAIN.split("\n", 1)[1])
    with pytest.raises(ConfigError, match="include must be a list"):
        load(main)


def test_one_domain_spelled_two_ways_is_defined_twice(tmp_path):
    main = write(tmp_path / "vines.toml", MAIN)
    write(
        tmp_path / "conf.d" / "dup.toml",
        '[domains.LocalHost]\ncertificate = "x.crt"\nkey = "x.key"\n',
    )
    with pytest.raises(ConfigError, match="defined twice"):
        load(main)
