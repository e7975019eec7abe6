"""XEP-0004 data forms: XML round trips of every field type and validation of submissions."""

from __future__ import annotations

import pytest
from vines_server.xmpp import ns
from vines_server.xmpp.forms import (
    FIELD_TYPES,
    MAX_VALUE,
    Field,
    Form,
    FormError,
    prefill,
    validate,
)
from vines_server.xmpp.parser import parse_fragment
from vines_server.xmpp.stanza import serialize


def shown() -> Form:
    return Form(
        "form",
        "Everything",
        ["Fill it in."],
        [
            Field("FORM_TYPE", "hidden", values=["urn:test"]),
            Field(None, "fixed", values=["Section"]),
            Field("flag", "boolean", "A flag"),
            Field("who", "jid-single", "Someone", required=True),
            Field("many", "jid-multi", "Several"),
            Field("color", "list-single", options=[("Red", "red"), ("Blue", "blue")]),
            Field("colors", "list-multi", options=[(None, "red"), (None, "blue")]),
            Field("lines", "text-multi"),
            Field("secret", "text-private"),
            Field("name", "text-single", values=["default"]),
            Field("opaque", "hidden", values=["keep"]),
        ],
    )


def sent(**values) -> Form:
    fields = [Field("FORM_TYPE", None, values=["urn:test"])]
    for var, value in values.items():
        fields.append(Field(var, None, values=value if isinstance(value, list) else [value]))
    return Form("submit", fields=fields)


def roundtrip(form: Form) -> Form:
    return Form.from_element(parse_fragment(serialize(form.to_element()).decode()))


def test_every_field_type_survives_xml():
    form = shown()
    assert {f.type for f in form.fields} == FIELD_TYPES
    back = roundtrip(form)
    assert back == form
    xml = serialize(form.to_element()).decode()
    assert "<required/>" in xml and "<option label='Red'><value>red</value></option>" in xml


def test_multi_item_result_survives_xml():
    form = Form(
        "result",
        "Sessions",
        reported=[Field("jid", "jid-single", "JID"), Field("ip", "text-single", "IP")],
        items=[
            [Field("jid", None, values=["a@x/1"]), Field("ip", None, values=["::1"])],
            [Field("jid", None, values=["b@x/2"]), Field("ip", None, values=["127.0.0.1"])],
        ],
    )
    back = roundtrip(form)
    assert back.reported == form.reported
    assert [[f.value for f in row] for row in back.items] == [
        ["a@x/1", "::1"],
        ["b@x/2", "127.0.0.1"],
    ]


def test_extra_payload_is_kept():
    form = Form("result", extra=[parse_fragment("<query xmlns='jabber:iq:roster'/>")])
    back = roundtrip(form)
    assert [el.tag for el in back.extra] == [ns.q(ns.ROSTER, "query")]


def test_open_list_takes_values_beyond_its_options():
    """XEP-0122 <open/>: the options are suggestions (XEP-0133's max_items, say)."""
    spec = Field("max", "list-single", options=[(None, "25"), (None, "none")], open=True)
    form = Form("form", fields=[Field("FORM_TYPE", "hidden", values=["urn:test"]), spec])
    xml = serialize(form.to_element()).decode()
    assert "<validate xmlns='http://jabber.org/protocol/xdata-validate'" in xml and "<open/>" in xml
    assert roundtrip(form) == form
    assert validate(form, sent(max="all")) == {"max": "all"}
    closed = Form(
        "form", fields=[form.fields[0], Field("max", "list-single", options=spec.options)]
    )
    with pytest.raises(FormError, match="not one of the options"):
        validate(closed, sent(max="all"))


def test_valid_submission_gives_typed_values():
    values = validate(
        shown(),
        sent(
            flag="true",
            who="Juliet@Capulet.lit",
            many=["a@x", "b@x/r"],
            color="blue",
            colors=["red", "blue"],
            lines=["one", "", "three"],
            secret="s3cret",
        ),
    )
    assert values == {
        "flag": True,
        "who": "juliet@capulet.lit",
        "many": ["a@x", "b@x/r"],
        "color": "blue",
        "colors": ["red", "blue"],
        "lines": ["one", "", "three"],
        "secret": "s3cret",
        "name": "default",  # left out: keeps the shown default
        "opaque": "keep",
    }


def test_defaults_for_absent_optional_fields():
    values = validate(shown(), sent(who="a@b"))
    assert values["flag"] is False
    assert values["many"] == [] and values["color"] is None and values["lines"] == []


@pytest.mark.parametrize(
    ("values", "var", "words"),
    [
        ({}, "who", "is required"),
        ({"who": "  "}, "who", "is required"),
        ({"who": "a@b", "flag": "yes"}, "flag", "not a boolean"),
        ({"who": "not a@jid@x"}, "who", "not a valid JID"),
        ({"who": "a@b", "many": ["ok@x", "@bad"]}, "many", "not a valid JID"),
        ({"who": "a@b", "color": "green"}, "color", "not one of the options"),
        ({"who": "a@b", "colors": ["red", "green"]}, "colors", "not one of the options"),
        ({"who": ["a@b", "c@d"]}, "who", "single value"),
        ({"who": "a@b", "secret": ["1", "2"]}, "secret", "single value"),
        ({"who": "a@b", "name": "x" * (MAX_VALUE + 1)}, "name", "longer than"),
    ],
)
def test_invalid_submissions_name_the_field(values, var, words):
    with pytest.raises(FormError) as err:
        validate(shown(), sent(**values))
    assert err.value.var == var
    assert f"field '{var}'" in str(err.value) and words in str(err.value)


def test_wrong_form_type_is_refused():
    submission = sent(who="a@b")
    submission.fields[0] = Field("FORM_TYPE", None, values=["urn:other"])
    with pytest.raises(FormError, match="FORM_TYPE"):
        validate(shown(), submission)


def test_only_submit_or_cancel_forms_answer():
    with pytest.raises(FormError, match="submit"):
        validate(shown(), Form("result", fields=[Field("who", None, values=["a@b"])]))
    assert validate(shown(), Form("cancel", fields=[Field("who", None, values=["a@b"])]))


def test_malformed_xml_forms():
    with pytest.raises(FormError, match="form type"):
        Form.from_element(parse_fragment("<x xmlns='jabber:x:data' type='bogus'/>"))
    with pytest.raises(FormError, match="field type"):
        Form.from_element(
            parse_fragment(
                "<x xmlns='jabber:x:data' type='submit'><field var='a' type='nope'/></x>"
            )
        )
    with pytest.raises(FormError, match="not a jabber:x:data"):
        Form.from_element(parse_fragment("<x xmlns='urn:other' type='submit'/>"))
    with pytest.raises(FormError, match="option without a value"):
        Form.from_element(
            parse_fragment(
                "<x xmlns='jabber:x:data' type='form'><field var='a' type='list-single'>"
                "<option label='A'/></field></x>"
            )
        )


def test_prefill_shows_earlier_answers():
    form = prefill(shown(), {"flag": True, "many": ["a@x"], "name": None, "opaque": "changed"})
    assert form.field("flag").values == ["1"]
    assert form.field("many").values == ["a@x"]
    assert form.field("name").values == []
    assert form.field("opaque").values == ["keep"]  # hidden fields are never rewritten
    assert shown().field("flag").values == []  # the original is untouched


def test_form_type_property():
    assert shown().form_type == "urn:test"
    assert Form().form_type is None
