# ruff: noqa: RUF001  (look-alike characters are what these tests are about)
"""RFC 7622 preparation table: PRECIS for local and resource parts, IDNA2008 for domains.

The cases of issue 9 (names a newcomer typed into the console) and the examples of RFC 7622
section 3.5, valid and invalid."""

from __future__ import annotations

import random

import idna
import precis_i18n
import pytest
from vines_server.xmpp.jid import (
    JID,
    JIDError,
    domain_to_ascii,
    legacy_localpart,
    normalize_domainpart,
    normalize_localpart,
    normalize_resourcepart,
)


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        # issue 9: each spelling maps to one account, never to another one
        ("ß@localhost", "ß@localhost"),
        ("straße@localhost", "straße@localhost"),
        ("STRASSE@localhost", "strasse@localhost"),
        ("ｊｏｅ@localhost", "joe@localhost"),  # width mapping: the same account as joe
        ("ＪＯＥ@ｌｏｃａｌｈｏｓｔ", "joe@localhost"),
        # RFC 7622 section 3.5.1 (valid)
        ("juliet@example.com", "juliet@example.com"),
        ("juliet@example.com/foo", "juliet@example.com/foo"),
        ("juliet@example.com/foo bar", "juliet@example.com/foo bar"),
        ("juliet@example.com/foo@bar", "juliet@example.com/foo@bar"),
        ("foo\\20bar@example.com", "foo\\20bar@example.com"),
        ("fussball@example.com", "fussball@example.com"),
        ("fußball@example.com", "fußball@example.com"),
        ("π@example.com", "π@example.com"),
        ("Σ@example.com/foo", "σ@example.com/foo"),
        ("σ@example.com/foo", "σ@example.com/foo"),
        ("ς@example.com/foo", "ς@example.com/foo"),
        ("king@example.com/♚", "king@example.com/♚"),
        ("example.com", "example.com"),
        ("example.com/foobar", "example.com/foobar"),
        ("a.example.com/b@example.net", "a.example.com/b@example.net"),
        # domains: UTS #46 non-transitional keeps ß; A-labels come back as U-labels
        ("u@Straße.Example.", "u@straße.example"),
        ("u@xn--strae-oqa.example", "u@straße.example"),
        ("u@ｅｘａｍｐｌｅ。ｃｏｍ", "u@example.com"),
        # OpaqueString keeps the case and width of a resource
        ("u@x/Ｈｏｍｅ", "u@x/Ｈｏｍｅ"),
    ],
)
def test_prepared(text: str, prepared: str) -> None:
    assert str(JID.parse(text)) == prepared
    assert str(JID.parse(prepared)) == prepared  # preparation is idempotent


@pytest.mark.parametrize(
    ("text", "named"),
    [
        # issue 9
        ("😀@localhost", "U+1F600 GRINNING FACE"),
        ("bad'q@localhost", "U+0027 APOSTROPHE"),
        ("a＇b@localhost", "U+FF07 FULLWIDTH APOSTROPHE"),  # excluded after width mapping too
        ("u@😀.example", "U+1F600 GRINNING FACE"),
        ("u@a_b.example", "U+005F LOW LINE"),
        # RFC 7622 section 3.5.2 (invalid)
        ('"juliet"@example.com', "U+0022 QUOTATION MARK"),
        ("foo bar@example.com", "U+0020 SPACE"),
        ("henry\u2163@example.com", "U+2163 ROMAN NUMERAL FOUR"),
        ("♚@example.com", "U+265A BLACK CHESS KING"),
        ("juliet@", "empty"),
        ("/foobar", "empty"),
        # the other RFC 7622 3.3.1 exclusions
        ("a&b@x", "U+0026 AMPERSAND"),
        ("a:b@x", "U+003A COLON"),
        ("a<b@x", "U+003C LESS-THAN SIGN"),
        ("a>b@x", "U+003E GREATER-THAN SIGN"),
        ("ﬁ@x", "U+FB01 LATIN SMALL LIGATURE FI"),
        ("u@x/a\x00", "U+0000"),
    ],
)
def test_refused_naming_the_character(text: str, named: str) -> None:
    with pytest.raises(JIDError, match=named.replace("+", r"\+")):
        JID.parse(text)


def test_length_limits_are_bytes_of_the_prepared_part() -> None:
    assert JID.parse("ß" * 511 + "a@x").local == "ß" * 511 + "a"  # 1023 bytes
    with pytest.raises(JIDError, match="1023 bytes"):
        JID.parse("ß" * 512 + "@x")
    with pytest.raises(JIDError, match="1023 bytes"):
        JID.parse("u@x/" + "😀" * 256)  # 1024 bytes
    with pytest.raises(JIDError, match="1023 bytes"):
        JID.parse("a" * 100_000 + "@x")


def test_domain_to_ascii_is_idna2008() -> None:
    # the standard library's IDNA2003 codec maps ß to ss; IDNA2008 keeps it
    assert domain_to_ascii("Straße.example") == "xn--strae-oqa.example"
    assert domain_to_ascii("localhost") == "localhost"
    assert domain_to_ascii("[::1]") == "[::1]"
    with pytest.raises(JIDError):
        domain_to_ascii("not a domain!!")


def test_legacy_rule_differs_from_precis_only_where_the_migration_must_look() -> None:
    assert legacy_localpart("straße") == "strasse" != normalize_localpart("straße")
    assert legacy_localpart("Joe") == normalize_localpart("Joe") == "joe"


# The ASCII fast paths skip the libraries: they must agree with them exactly (on a fixed set of
# random names, so a failure reproduces).


def _outcome(fn, s):
    try:
        return fn(s)
    except (JIDError, UnicodeError, idna.IDNAError):
        return None


def _names(alphabet: str, count: int = 3000, longest: int = 70) -> list[str]:
    rnd = random.Random(7622)
    return ["".join(rnd.choices(alphabet, k=rnd.randint(1, longest))) for _ in range(count)]


def test_ascii_domain_fast_path_agrees_with_idna():
    def reference(name):
        return idna.decode(idna.encode(name, uts46=True, transitional=False))

    for s in _names("abcXYZ019-.") + _names("ab-.", longest=8) + ["a" * 63, "a" * 64]:
        if not s.endswith("."):
            assert _outcome(normalize_domainpart, s) == _outcome(reference, s), s


def test_ascii_local_and_resource_fast_paths_agree_with_precis():
    username = precis_i18n.get_profile("UsernameCaseMapped").enforce
    opaque = precis_i18n.get_profile("OpaqueString").enforce

    def local_reference(name):
        return None if set(name) & set("\"&'/:<>@") else username(name)

    for s in _names("".join(map(chr, range(0x20, 0x7F))), longest=12):
        assert _outcome(normalize_localpart, s) == _outcome(local_reference, s), s
        assert _outcome(normalize_resourcepart, s) == _outcome(opaque, s), s
