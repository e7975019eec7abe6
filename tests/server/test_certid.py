"""RFC 6125 identities and matching (server/xmpp/certid.py), the one implementation that s2s
and the console's TLS probe share."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from vines_server.certs import make_certificate
from vines_server.xmpp import certid
from vines_server.xmpp.certid import OID_SRV_NAME, OID_XMPP_ADDR, Identities, identities, match


@pytest.mark.parametrize(
    ("pattern", "domain", "ok"),
    [
        ("example.test", "EXAMPLE.test", True),
        ("example.test.", "example.test", True),
        ("*.example.test", "chat.example.test", True),
        ("*.example.test", "example.test", False),
        ("*.example.test", "a.b.example.test", False),
        ("*.test", "example.test", False),
        ("ex*.example.test", "exa.example.test", False),
        ("*.*.example.test", "a.b.example.test", False),
        ("chat.*.test", "chat.example.test", False),
        ("", "example.test", False),
    ],
)
def test_dns_id_wildcard_only_as_whole_left_most_label(pattern, domain, ok):
    assert certid.dns_id_matches(pattern, domain) is ok


def test_identities_of_a_generated_certificate():
    cert, _ = make_certificate(["example.net"])
    ids = identities(cert)
    assert ids.dns_names == ("example.net",)
    assert ids.xmpp_addrs == ("example.net",)
    assert set(ids.srv_names) == {"_xmpp-client.example.net", "_xmpp-server.example.net"}


def test_srv_name_only_certificate_matches_its_service_only():
    cert, _ = make_certificate(["example.net"], dns_name=False, xmpp_addr=False)
    ids = identities(cert)
    assert ids.dns_names == () and ids.xmpp_addrs == ()
    assert match(ids, "example.net", "server") == "SRV-ID _xmpp-server.example.net"
    only_client = Identities(srv_names=("_xmpp-client.example.net",))
    assert match(only_client, "example.net", "server") == ""
    assert match(only_client, "example.net", "client") == "SRV-ID _xmpp-client.example.net"
    direct = Identities(srv_names=("_xmpps-server.example.net",))
    assert match(direct, "example.net") == "SRV-ID _xmpps-server.example.net"


def test_xmpp_addr_only_certificate_matches():
    cert, _ = make_certificate(["example.net"], dns_name=False, srv_names=False)
    assert match(identities(cert), "example.net") == "XmppAddr example.net"


def test_xmpp_addr_of_a_user_or_resource_is_not_a_domain_identity():
    ids = Identities(xmpp_addrs=("admin@example.net", "example.net/res"))
    assert match(ids, "example.net") == ""


def test_cn_is_never_an_identity():
    cert, _ = make_certificate(
        [], common_name="example.net", dns_name=False, xmpp_addr=False, srv_names=False
    )
    assert cert.subject.rfc4514_string() == "CN=example.net"
    assert identities(cert) == Identities()
    assert match(identities(cert), "example.net") == ""


def test_idn_compared_as_a_labels():
    cert, _ = make_certificate(["straße.example"])
    ids = identities(cert)
    assert ids.dns_names == ("xn--strae-oqa.example",)
    assert match(ids, "Straße.Example") == "DNS-ID xn--strae-oqa.example"
    assert match(ids, "xn--strae-oqa.example") == "DNS-ID xn--strae-oqa.example"
    assert match(ids, "strasse.example") == ""  # IDNA2003 would call it the same
    # the xmppAddr holds the U-label; an SRVName with an A-label host still matches
    assert match(Identities(xmpp_addrs=("straße.example",)), "xn--strae-oqa.example")
    assert match(Identities(srv_names=("_xmpp-server.xn--strae-oqa.example",)), "straße.example")


def test_other_name_for_another_domain_does_not_match():
    cert, _ = make_certificate(["other.net"])
    assert match(identities(cert), "example.net") == ""


def test_hostile_other_names_match_nothing():
    san = x509.SubjectAlternativeName(
        [
            x509.OtherName(OID_SRV_NAME, b"\x04\x0c_xmpp-server"),  # an OCTET STRING
            x509.OtherName(OID_XMPP_ADDR, b"\x0c\x02\xff\xfe"),  # not UTF-8
            x509.OtherName(OID_SRV_NAME, b"\x16\x10_xmpp-server.*.t"),
        ]
    )
    cert, key = make_certificate(["x.test"], dns_name=False, xmpp_addr=False, srv_names=False)
    rebuilt = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    ids = identities(rebuilt)
    assert ids.xmpp_addrs == () and ids.srv_names == ("_xmpp-server.*.t",)
    assert match(ids, "example.net") == ""
    assert match(ids, "x.t") == ""
