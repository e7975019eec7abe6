"""Server dialback (XEP-0220) keys and the table of answers we wait for (sans-I/O).

Dialback is an opt-in per peer (`[federation.peers."domain"] dialback = true`), run over TLS
only, for peers whose certificate cannot be verified. This module holds the two pieces whose
mistakes are known attacks:

- The key (XEP-0185): HMAC-SHA256 keyed with SHA-256 of a secret over
  "receiving SP originating SP stream-id". Both domains are in it, with separators, so a key
  issued for one domain pair or one stream is worthless for another (the CVE-2016-0756 class:
  a key over the stream id alone could be replayed between domains).
- The correlation (2012 XSF dialback advisory): a `db:result` or `db:verify` *answer* (one with a
  `type`) is accepted only when it answers a request this server made, on that domain pair (and
  stream id, for verify), and only once. Anything else is ignored, so a peer cannot declare
  itself or a third domain valid by sending an answer nobody asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import dataclass, field
from enum import Enum

from .jid import JIDError, domain_to_ascii

__all__ = [
    "MAX_PENDING",
    "Answer",
    "Correlation",
    "DialbackError",
    "check_key",
    "make_key",
]

#: Requests awaiting an answer, over all peers: a peer that sends db:result after db:result
#: makes us send db:verify after db:verify, and each one is remembered until answered.
MAX_PENDING = 1024


class DialbackError(ValueError):
    """A request that cannot be made (bad domain, empty stream id, duplicate, table full)."""


class Answer(Enum):
    VALID = "valid"
    INVALID = "invalid"


def _domain(name: str) -> str:
    try:
        return domain_to_ascii(name)
    except JIDError as exc:
        raise DialbackError(f"not a domain: {name!r} ({exc})") from None


def make_key(secret: bytes, receiving: str, originating: str, stream_id: str) -> str:
    """The dialback key (hex) the originating server sends for `stream_id`, the id of the
    stream the receiving server opened to it."""
    if not stream_id or " " in stream_id:
        raise DialbackError("a dialback key needs a stream id without spaces")
    text = f"{_domain(receiving)} {_domain(originating)} {stream_id}"
    return hmac.new(hashlib.sha256(secret).digest(), text.encode("utf-8"), "sha256").hexdigest()


def check_key(secret: bytes, receiving: str, originating: str, stream_id: str, key: str) -> bool:
    """Whether `key` is ours for exactly this domain pair and stream (constant-time compare)."""
    try:
        expected = make_key(secret, receiving, originating, stream_id)
    except DialbackError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), key.strip().lower().encode("utf-8"))


@dataclass
class Correlation:
    """What this server asked and may therefore hear answered. One table per server.

    - We are the originating server and sent `<db:result from=local to=remote>key</db:result>`
      on our outbound stream: `expect_result(local, remote)`; the receiving server answers
      `<db:result type=... from=remote to=local/>` and `answer_result` says what it decided.
    - We are the receiving server and asked the authoritative server to confirm a key the peer
      gave us on our inbound stream `stream_id`: `expect_verify(local, remote, stream_id)`; its
      `<db:verify type=... from=remote to=local id=stream_id/>` goes to `answer_verify`.

    `answer_*` return None for an answer nobody asked for, or one already answered (a replay):
    the caller ignores it. Each stream id is verified at most once per domain pair, until
    `stream_closed` (our stream ids are random and never reused, so forgetting them is safe).
    """

    limit: int = MAX_PENDING
    _results: set[tuple[str, str]] = field(default_factory=set)
    _verifies: set[tuple[str, str, str]] = field(default_factory=set)
    _used_ids: set[tuple[str, str, str]] = field(default_factory=set)

    def __len__(self) -> int:
        """Entries held: awaited results, and the stream ids used (awaited or answered)."""
        return len(self._results) + len(self._used_ids)

    def _room(self) -> None:
        if len(self) >= self.limit:
            raise DialbackError("too many dialback requests awaiting an answer")

    def expect_result(self, local: str, remote: str) -> None:
        pair = (_domain(local), _domain(remote))
        if pair in self._results:
            raise DialbackError(f"dialback for {remote} is already awaiting an answer")
        self._room()
        self._results.add(pair)

    def expect_verify(self, local: str, remote: str, stream_id: str) -> None:
        if not stream_id:
            raise DialbackError("a dialback verify needs a stream id")
        request = (_domain(local), _domain(remote), stream_id)
        if request in self._used_ids:
            raise DialbackError(f"stream {stream_id} was already verified for {remote}")
        self._room()
        self._used_ids.add(request)
        self._verifies.add(request)

    @staticmethod
    def _type(value: str | None) -> Answer | None:
        try:
            return Answer(value)
        except ValueError:
            return None

    def answer_result(self, local: str, remote: str, type_: str | None) -> Answer | None:
        """The receiving server's decision on our key, or None (uncorrelated: ignore it)."""
        answer = self._type(type_)
        try:
            pair = (_domain(local), _domain(remote))
        except DialbackError:
            return None
        if answer is None or pair not in self._results:
            return None
        self._results.discard(pair)
        return answer

    def answer_verify(
        self, local: str, remote: str, stream_id: str | None, type_: str | None
    ) -> Answer | None:
        """The authoritative server's decision on a key for `stream_id`, or None
        (uncorrelated or already answered: ignore it)."""
        answer = self._type(type_)
        try:
            request = (_domain(local), _domain(remote), stream_id or "")
        except DialbackError:
            return None
        if answer is None or request not in self._verifies:
            return None
        self._verifies.discard(request)
        return answer

    def outbound_closed(self, local: str, remote: str) -> None:
        """Our outbound stream for this pair closed: its result can no longer come."""
        with contextlib.suppress(DialbackError):
            self._results.discard((_domain(local), _domain(remote)))

    def stream_closed(self, stream_id: str) -> None:
        """Our inbound stream `stream_id` closed: forget its verifies, answered or not."""
        self._verifies = {r for r in self._verifies if r[2] != stream_id}
        self._used_ids = {r for r in self._used_ids if r[2] != stream_id}
