"""The `--debug` trace: log records (slixmpp's XML traffic among them) on stderr, with every
secret the XML can carry replaced by `[redacted]` before it is written.

Secrets in XMPP traffic: SASL payloads (`<auth>`, `<response>`, `<challenge>`, `<success>`,
base64 of credentials or of SCRAM proofs), legacy `<password>` elements (XEP-0077, XEP-0078)
and data form fields that hold a password (XEP-0133 `password`, `password-verify`) or are of type
`text-private` (XEP-0004). The filter sits on our handler, so it sees every record that reaches
it, whichever logger made it.
"""

from __future__ import annotations

import logging
import re
import sys

REDACTED = "[redacted]"


def _element(names: str) -> re.Pattern[str]:
    """`<name attrs>body</name>` (not self-closed), groups open, attrs, body, close."""
    return re.compile(
        rf"(?P<open><(?P<tag>(?:[\w.-]+:)?(?:{names}))\b(?P<attrs>[^>]*)(?<!/)>)"
        r"(?P<body>.*?)(?P<close></(?P=tag)\s*>)",
        re.DOTALL,
    )


_SECRET_ELEMENTS = _element("auth|response|challenge|success|password")
_FIELD = _element("field")
_VALUE = _element("value")
_PRIVATE_TYPE = re.compile(r"""\btype\s*=\s*["']text-private["']""")
_PASSWORD_VAR = re.compile(r"""\bvar\s*=\s*["'][^"']*password[^"']*["']""", re.IGNORECASE)


def _secret_field(attrs: str) -> bool:
    return bool(_PRIVATE_TYPE.search(attrs) or _PASSWORD_VAR.search(attrs))


def redact(text: str) -> str:
    """`text` with the content of every secret-bearing XML element replaced."""

    def hide(m: re.Match[str]) -> str:
        return m["open"] + (REDACTED if m["body"] else "") + m["close"]

    def field(m: re.Match[str]) -> str:
        if not _secret_field(m["attrs"]):
            return m[0]
        return m["open"] + _VALUE.sub(hide, m["body"]) + m["close"]

    return _FIELD.sub(field, _SECRET_ELEMENTS.sub(hide, text))


class Redactor(logging.Filter):
    """Rewrites each record's message with the secrets redacted (and drops its args)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class _TraceHandler(logging.StreamHandler):
    """Marks the handler we installed, so a second call replaces it instead of adding one."""


def enable() -> None:
    """Debug logging of everything (XML traffic included) to the current stderr, redacted."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _TraceHandler)]:
        root.removeHandler(handler)
    handler = _TraceHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    handler.addFilter(Redactor())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
