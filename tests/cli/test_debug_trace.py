"""`--debug` shows the XML traffic with every secret redacted: SASL payloads, XEP-0133 password
fields and any `text-private` value (issue 8, section 6)."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.cli.conftest import LiveServer
from tests.support.xmpp import DOMAIN, PASSWORD
from vinesctl.trace import REDACTED, redact

NEW = "brand new secret 8k2"
ENV = {"VINESCTL_PASSWORD": PASSWORD}


def test_redact_hides_sasl_payloads_and_private_fields() -> None:
    plain = base64.b64encode(b"\0admin\0hunter2").decode()
    text = (
        f"SEND: <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
        "RECV: <challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1hYmM=</challenge>"
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdz</response>"
        '<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl">dj1zZXJ2ZXI=</success>'
        "<query xmlns='jabber:iq:register'><password>hunter2</password></query>"
        '<x xmlns="jabber:x:data"><field var="accountjid"><value>bob@x</value></field>'
        '<field var="password"><value>hunter2</value></field>'
        '<field var="password-verify" type="text-private"><value>hunter2</value></field>'
        '<field type="text-private" var="pin"><value>1234</value><value>5678</value></field></x>'
    )
    out = redact(text)
    for secret in (plain, "cj1hYmM=", "Yz1iaXdz", "dj1zZXJ2ZXI=", "hunter2", "1234", "5678"):
        assert secret not in out
    assert "<value>bob@x</value>" in out  # what is not secret stays readable
    assert out.count(REDACTED) == 9
    # nothing to hide: unchanged, self-closed elements included
    quiet = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><field var='password'/>"
    assert redact(quiet) == quiet


def test_debug_trace_of_passwd_holds_no_secret(live_server: LiveServer, run_cli: Any) -> None:
    live_server.add_user("admin", PASSWORD)
    live_server.add_user("bob", PASSWORD)
    r = run_cli(
        "--debug", "user", "passwd", "bob", "--password-file", "-",
        "--server", f"127.0.0.1:{live_server.port}", "--ca", str(live_server.pki.ca_file),
        input=NEW + "\n",
        env=ENV | {"VINESCTL_JID": f"admin@{DOMAIN}"},
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    everything = r.stdout + r.stderr
    assert "SEND:" in everything and "change-user-password" in everything  # the trace is there
    assert "<auth" in everything and "<success" in everything
    for secret in (NEW, PASSWORD, base64.b64encode(NEW.encode()).decode()):
        assert secret not in everything
    for name in ("auth", "response", "challenge", "success"):
        for body in re.findall(rf"<{name}\b[^>]*(?<!/)>(.*?)</{name}>", everything):
            assert body == REDACTED
    assert re.search(r'var="password"[^>]*>\s*<value>\[redacted\]</value>', everything)
