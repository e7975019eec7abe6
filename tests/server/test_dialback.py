"""Dialback keys and answer correlation (XEP-0220, XEP-0185; 2012 XSF dialback advisory)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from vines_server.xmpp.dialback import (
    Answer,
    Correlation,
    DialbackError,
    check_key,
    make_key,
)

SECRET = b"s3cret shared by the cluster"
US, PEER, THIRD = "example.org", "example.net", "evil.example"
SID = "D60000229F"


def test_key_is_hmac_sha256_of_the_hashed_secret_over_the_pair_and_stream_id():
    # XEP-0185 section 3: HMAC-SHA256(SHA256(secret), receiving SP originating SP stream-id)
    expected = hmac.new(
        hashlib.sha256(SECRET).digest(), f"{PEER} {US} {SID}".encode(), hashlib.sha256
    ).hexdigest()
    assert make_key(SECRET, PEER, US, SID) == expected
    assert check_key(SECRET, PEER, US, SID, expected)
    assert check_key(SECRET, PEER, US, SID, expected.upper())


def test_key_for_another_domain_pair_is_refused():
    key = make_key(SECRET, PEER, US, SID)
    assert not check_key(SECRET, THIRD, US, SID, key)  # presented to another receiver
    assert not check_key(SECRET, US, PEER, SID, key)  # directions swapped
    assert not check_key(SECRET, PEER, THIRD, SID, key)  # claimed for another originator


def test_key_replayed_on_another_stream_is_refused():
    key = make_key(SECRET, PEER, US, SID)
    assert not check_key(SECRET, PEER, US, "another-stream-id", key)


def test_key_depends_on_the_secret_and_never_contains_it():
    key = make_key(SECRET, PEER, US, SID)
    assert not check_key(b"other secret", PEER, US, SID, key)
    assert SECRET.hex() not in key and hashlib.sha256(SECRET).hexdigest() not in key


def test_idn_domains_give_one_key_for_both_spellings():
    assert make_key(SECRET, "straße.example", US, SID) == make_key(
        SECRET, "xn--strae-oqa.example", US, SID
    )
    assert make_key(SECRET, "straße.example", US, SID) != make_key(
        SECRET, "strasse.example", US, SID
    )


@pytest.mark.parametrize("bad", ["", "a b"])
def test_key_needs_a_stream_id_without_separators(bad):
    with pytest.raises(DialbackError):
        make_key(SECRET, PEER, US, bad)
    assert not check_key(SECRET, PEER, US, bad, "00")


def test_malformed_key_is_refused_without_error():
    assert not check_key(SECRET, PEER, US, SID, "")
    assert not check_key(SECRET, PEER, US, SID, "zz\u00e9")
    assert not check_key(SECRET, "not a domain", US, SID, "00")


def test_result_answer_accepted_once_for_a_request_we_made():
    table = Correlation()
    table.expect_result(US, PEER)
    assert table.answer_result(US, PEER, "valid") is Answer.VALID
    assert table.answer_result(US, PEER, "valid") is None  # replayed answer: ignored


def test_uncorrelated_answers_are_ignored():
    table = Correlation()
    assert table.answer_result(US, PEER, "valid") is None
    assert table.answer_verify(US, PEER, SID, "valid") is None
    table.expect_result(US, PEER)
    table.expect_verify(US, PEER, SID)
    # another domain declaring itself valid, or answering for another stream
    assert table.answer_result(US, THIRD, "valid") is None
    assert table.answer_verify(US, THIRD, SID, "valid") is None
    assert table.answer_verify(US, PEER, "other-id", "valid") is None
    assert table.answer_verify(US, PEER, None, "valid") is None
    # a db:verify answer does not satisfy a db:result request, nor the reverse
    table2 = Correlation()
    table2.expect_verify(US, PEER, SID)
    assert table2.answer_result(US, PEER, "valid") is None
    # a type that is neither valid nor invalid answers nothing and keeps the request open
    assert table.answer_verify(US, PEER, SID, "error") is None
    assert table.answer_verify(US, PEER, SID, "invalid") is Answer.INVALID


def test_replayed_stream_id_is_refused():
    table = Correlation()
    table.expect_verify(US, PEER, SID)
    assert table.answer_verify(US, PEER, SID, "valid") is Answer.VALID
    with pytest.raises(DialbackError):
        table.expect_verify(US, PEER, SID)  # the same stream id asked again
    assert table.answer_verify(US, PEER, SID, "valid") is None
    table.stream_closed(SID)
    assert len(table) == 0


def test_second_result_for_a_pending_pair_is_refused():
    table = Correlation()
    table.expect_result(US, PEER)
    with pytest.raises(DialbackError):
        table.expect_result(US, PEER)
    table.outbound_closed(US, PEER)
    assert table.answer_result(US, PEER, "valid") is None


def test_table_is_bounded():
    table = Correlation(limit=3)
    for n in range(3):
        table.expect_verify(US, PEER, f"id{n}")
    with pytest.raises(DialbackError):
        table.expect_verify(US, PEER, "id3")
    with pytest.raises(DialbackError):
        table.expect_result(US, PEER)
    table.stream_closed("id0")
    table.expect_result(US, PEER)
