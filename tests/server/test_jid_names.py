"""Domain names in certificates, SNI and the configuration take the one JID rule (IDNA2008,
UTS #46 non-transitional); the standard library's IDNA2003 codec maps ß to ss (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from vines_server.certs import dns_names, make_certificate, xmpp_addrs
from vines_server.config import ConfigError, load

from vinesctl.probes.tls import cert_info, match_identity

IDN = "Straße.Example"


def test_certificate_names_are_idna2008():
    cert, _ = make_certificate([IDN])
    assert dns_names(cert) == ["xn--strae-oqa.example"]  # IDNA2003 gives xn--strasse-...
    assert xmpp_addrs(cert) == ["straße.example"]
    info = cert_info(cert.public_bytes(Encoding.DER))
    assert match_identity(info, "straße.example") == "DNS-ID xn--strae-oqa.example"
    assert match_identity(info, "xn--strae-oqa.example") == "DNS-ID xn--strae-oqa.example"
    assert match_identity(info, "strasse.example") == ""  # another domain


def write_config(tmp_path: Path, domain: str, allow: str = "[]") -> Path:
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.touch()
    key.touch()
    path = tmp_path / "vines.toml"
    path.write_text(
        f'[domains."{domain}"]\ncertificate = "{cert}"\nkey = "{key}"\n'
        f"[federation]\nallow = {allow}\n",
        encoding="utf-8",
    )
    return path


def test_config_domains_are_prepared(tmp_path):
    cfg = load(write_config(tmp_path, IDN, '["XN--STRAE-OQA.example", "Other.Example."]'))
    assert list(cfg.domains) == ["straße.example"]
    assert cfg.federation.allow == ("straße.example", "other.example")


@pytest.mark.parametrize(
    ("domain", "allow", "named"),
    [
        ("a_b.example", "[]", "U+005F LOW LINE"),
        ("ok.example", '["not a domain!!"]', "federation.allow"),
    ],
)
def test_config_refuses_a_name_idna2008_refuses(tmp_path, domain, allow, named):
    with pytest.raises(ConfigError, match=named.replace("+", r"\+")):
        load(write_config(tmp_path, domain, allow))
