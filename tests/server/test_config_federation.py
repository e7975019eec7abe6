"""The federation and s2s listener keys of vines.toml: defaults, parsing, and one-line errors
that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from vines_server.config import ConfigError, FederationConfig, PeerConfig, parse

BASE = Path("/srv/vines/vines.toml")
DOMAINS = '[domains.localhost]\ncertificate = "c.crt"\nkey = "c.key"\n'


def cfg(text: str):
    return parse(tomllib.loads(DOMAINS + text), BASE)


def test_defaults_keep_federation_closed_and_s2s_on_5269_starttls():
    c = cfg("")
    assert c.listeners.s2s_port == 5269
    assert c.listeners.s2s_direct_tls_port is None
    assert c.federation == FederationConfig()
    assert c.federation.peer("example.net") == PeerConfig("example.net")
    assert not c.federation.peer("example.net").dialback


def test_full_federation_section():
    c = cfg(
        """
[listeners]
s2s_port = 15269
s2s_direct_tls_port = 15270
[federation]
allow = ["example.net", "Straße.example"]
ca_file = "peers-ca.pem"
[federation.peers."example.net"]
dialback = true
host = "xmpp.example.net"
port = 5299
[federation.peers."Straße.example"]
host = "127.0.0.1"
"""
    )
    assert (c.listeners.s2s_port, c.listeners.s2s_direct_tls_port) == (15269, 15270)
    fed = c.federation
    assert fed.allow == ("example.net", "straße.example")
    assert fed.ca_file == Path("/srv/vines/peers-ca.pem")  # relative to the config file
    assert fed.peer("example.net") == PeerConfig("example.net", True, "xmpp.example.net", 5299)
    # keyed by the prepared domain; the default port with a static host
    assert fed.peer("straße.example") == PeerConfig("straße.example", False, "127.0.0.1", 5269)


def test_static_host_is_kept_as_a_labels():
    c = cfg('[federation.peers."example.net"]\nhost = "XMPP.Bücher.example"\n')
    assert c.federation.peer("example.net").host == "xmpp.xn--bcher-kva.example"


def test_s2s_direct_tls_false_and_zero():
    assert cfg("[listeners]\ns2s_direct_tls_port = false\n").listeners.s2s_direct_tls_port is None
    assert cfg("[listeners]\ns2s_direct_tls_port = 0\n").listeners.s2s_direct_tls_port == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[listeners]\ns2s_port = 70000\n", "listeners.s2s_port must be a port number"),
        ("[listeners]\ns2s_port = true\n", "listeners.s2s_port must be a port number"),
        ('[listeners]\ns2s_direct_tls_port = "5270"\n', "listeners.s2s_direct_tls_port must be"),
        ("[listeners]\ns2s_port = 5222\n", "listeners.s2s_port 5222 is also listeners.c2s_port"),
        (
            "[listeners]\ns2s_direct_tls_port = 5269\n",
            "listeners.s2s_direct_tls_port 5269 is also listeners.s2s_port",
        ),
        ("[federation]\nca_file = 3\n", "federation.ca_file must be a file path string"),
        ("[federation]\nblock = []\n", "unknown key federation.block"),
        ("[federation]\npeers = 1\n", "federation.peers must be a table"),
        ('[federation.peers]\n"example.net" = 1\n', 'federation.peers."example.net" must be a'),
        (
            '[federation.peers."example.net"]\ndialback = "yes"\n',
            'federation.peers."example.net".dialback must be true or false',
        ),
        (
            '[federation.peers."example.net"]\nhost = ""\n',
            'federation.peers."example.net".host must be a host name',
        ),
        (
            '[federation.peers."example.net"]\nhost = "bad..name"\n',
            "federation.peers.\"example.net\".host: 'bad..name' is not a host name",
        ),
        (
            '[federation.peers."example.net"]\nhost = "h.example"\nport = 0\n',
            'federation.peers."example.net".port must be a port number 1-65535',
        ),
        (
            '[federation.peers."example.net"]\nport = 5270\n',
            'federation.peers."example.net".port needs federation.peers."example.net".host',
        ),
        (
            '[federation.peers."example.net"]\nsecret = "x"\n',
            'unknown key federation.peers."example.net".secret',
        ),
        ('[federation.peers."not a domain!!"]\n', 'federation.peers."not a domain!!": '),
        (
            '[federation.peers."Example.net"]\n[federation.peers."example.net"]\n',
            "repeats federation.peers.'example.net'",
        ),
    ],
)
def test_errors_are_one_line_and_name_the_key(text, message):
    with pytest.raises(ConfigError) as caught:
        cfg(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_check_files_reads_the_ca_file(tmp_path: Path):
    from vines_server import certs
    from vines_server.config import check_files

    cert, key = certs.make_certificate(["localhost"])
    certs.write_pem(cert, key, tmp_path / "c.crt", tmp_path / "c.key")
    config_path = tmp_path / "vines.toml"
    text = DOMAINS + '[federation]\nca_file = "peers-ca.pem"\n'
    with pytest.raises(ConfigError, match=r"federation\.ca_file: cannot read .*peers-ca\.pem"):
        check_files(parse(tomllib.loads(text), config_path))
    (tmp_path / "peers-ca.pem").write_text("not PEM\n")
    with pytest.raises(ConfigError, match=r"federation\.ca_file: .* holds no PEM certificate"):
        check_files(parse(tomllib.loads(text), config_path))
    (tmp_path / "peers-ca.pem").write_bytes((tmp_path / "c.crt").read_bytes())
    check_files(parse(tomllib.loads(text), config_path))
