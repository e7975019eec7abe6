"""XEP-0004 forms and XEP-0050 responses as the console parses them (no network): every field
type, reported/items tables, foreign payloads, the submitted form, and the action logic."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vinesctl.xmpp.adhoc import NS_DATA, Stage, _stage, parse_form, submit_element

FORM = f"""
<x xmlns='{NS_DATA}' type='form'>
  <title>Everything</title>
  <instructions>Fill it in.</instructions>
  <field var='FORM_TYPE' type='hidden'><value>urn:test</value></field>
  <field type='fixed'><value>A section</value></field>
  <field var='ok' type='boolean' label='OK?'><value>1</value></field>
  <field var='who' type='jid-single'><required/></field>
  <field var='friends' type='jid-multi'><value>a@x</value><value>b@x</value></field>
  <field var='one' type='list-single'><desc>pick</desc>
    <option label='First'><value>1</value></option><option><value>2</value></option></field>
  <field var='many' type='list-multi'><option><value>a</value></option></field>
  <field var='lines' type='text-multi'><value>l1</value><value>l2</value></field>
  <field var='secret' type='text-private'/>
  <field var='plain'><value>default</value></field>
  <reported><field var='jid' label='JID'/><field var='n'/></reported>
  <item><field var='jid'><value>c@x</value></field><field var='n'><value>3</value></field></item>
  <query xmlns='jabber:iq:roster'><item jid='d@x' subscription='both'/></query>
</x>"""


def test_every_field_type_and_the_tables() -> None:
    form = parse_form(ET.fromstring(FORM))
    assert form.title == "Everything" and form.instructions == ["Fill it in."]
    assert form.form_type == "urn:test"
    types = {f.var or f.type: f.type for f in form.fields}
    assert types["plain"] == "text-single"  # no type attribute: text-single (XEP-0004 3.3)
    assert set(types.values()) == {
        "hidden", "fixed", "boolean", "jid-single", "jid-multi", "list-single",
        "list-multi", "text-multi", "text-private", "text-single",
    }  # fmt: skip
    who = form.field("who")
    assert who is not None and who.required and who.values == []
    one = form.field("one")
    assert one is not None and one.desc == "pick"
    assert [(o.label, o.value) for o in one.options] == [("First", "1"), ("", "2")]
    assert form.field("friends").multi and form.field("friends").values == ["a@x", "b@x"]
    assert [c.var for c in form.reported] == ["jid", "n"] and form.reported[0].label == "JID"
    assert form.items == [{"jid": ["c@x"], "n": ["3"]}]
    assert len(form.payloads) == 1 and "jabber:iq:roster" in form.payloads[0]
    assert "FORM_TYPE" not in form.values() and form.values()["lines"] == ["l1", "l2"]


def test_submitted_form_keeps_defaults_and_form_type() -> None:
    form = parse_form(ET.fromstring(FORM))
    x = submit_element(form, {"who": ["me@x"], "secret": ["s"], "extra": ["e"]})
    assert x.get("type") == "submit"
    sent = {f.get("var"): [v.text for v in f] for f in x}
    assert sent["FORM_TYPE"] == ["urn:test"] and sent["who"] == ["me@x"]
    assert sent["friends"] == ["a@x", "b@x"] and sent["plain"] == ["default"]
    assert sent["extra"] == ["e"] and None not in sent  # the fixed field is not sent back


def command(actions: str = "", status: str = "executing") -> ET.Element:
    ns = "http://jabber.org/protocol/commands"
    return ET.fromstring(
        f"<command xmlns='{ns}' node='n' sessionid='s1' status='{status}'>{actions}"
        f"<note type='warn'>careful</note></command>"
    )


def test_actions_and_the_forward_action() -> None:
    single = _stage("x", "n", command())
    assert single.actions == [] and single.forward == "execute"
    stage = _stage("x", "n", command("<actions execute='complete'><prev/><complete/></actions>"))
    assert stage.actions == ["prev", "complete"] and stage.forward == "complete"
    stage = _stage("x", "n", command("<actions><next/></actions>"))
    assert stage.default == "next" and stage.forward == "next"  # no execute attribute: next
    stage = _stage("x", "n", command("<actions execute='next'><prev/><next/></actions>"))
    assert stage.forward == "next" and stage.notes[0].type == "warn"
    assert stage.sessionid == "s1" and stage.status == "executing"
    assert Stage("x", "n", "s", "completed").errors == []
