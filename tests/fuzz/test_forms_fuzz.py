"""Fuzzing XEP-0004 data forms (security plan Z-02): a generated form survives the wire (to XML,
serialized, parsed back by the stream parser, read again) unchanged; malformed forms and
submissions raise nothing but FormError."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hypothesis import strategies as st
from vines_server.xmpp import ns
from vines_server.xmpp.forms import FIELD_TYPES, FORM_TYPES, Field, Form, FormError, validate
from vines_server.xmpp.parser import parse_fragment
from vines_server.xmpp.stanza import serialize

from tests.fuzz.budget import Target, ci_test
from tests.fuzz.xmltext import xml_text

text = xml_text("<>&'\" \t\r\n]]>", max_size=12)
some_text = text.filter(bool)  # empty titles, descriptions and option labels are not written
optional = st.one_of(st.none(), some_text)
field_types = st.sampled_from(sorted(FIELD_TYPES))


@st.composite
def fields(draw: st.DrawFn) -> Field:
    return Field(
        var=draw(st.one_of(st.none(), text)),
        type=draw(st.one_of(st.none(), field_types)),
        label=draw(st.one_of(st.none(), text)),
        desc=draw(optional),
        required=draw(st.booleans()),
        values=draw(st.lists(text, max_size=3)),
        options=draw(st.lists(st.tuples(optional, text), max_size=3)),
    )


@st.composite
def forms(draw: st.DrawFn) -> Form:
    reported = draw(st.one_of(st.none(), st.lists(fields(), max_size=2)))
    return Form(
        type=draw(st.sampled_from(sorted(FORM_TYPES))),
        title=draw(optional),
        instructions=draw(st.lists(text, max_size=2)),
        fields=draw(st.lists(fields(), max_size=4)),
        reported=reported,
        items=[]
        if reported is None
        else draw(st.lists(st.lists(fields(), max_size=2), max_size=2)),
    )


def over_the_wire(el: Element) -> Element:
    return parse_fragment(serialize(el))


def check_round_trip(form: Form) -> None:
    assert Form.from_element(over_the_wire(form.to_element())) == form


TAGS = [
    "x",
    "field",
    "value",
    "option",
    "reported",
    "item",
    "title",
    "instructions",
    "desc",
    "required",
    "other",
]
ATTR_VALUES = st.one_of(st.sampled_from(sorted(FIELD_TYPES | FORM_TYPES)), text)


@st.composite
def xdata_tree(draw: st.DrawFn, depth: int = 0) -> Element:
    tag = draw(st.sampled_from(TAGS))
    uri = draw(st.sampled_from([ns.XDATA, ns.XDATA, "urn:other"]))
    attrs = draw(
        st.dictionaries(st.sampled_from(["type", "var", "label"]), ATTR_VALUES, max_size=3)
    )
    el = Element(f"{{{uri}}}{tag}", attrs)
    el.text = draw(st.one_of(st.none(), text))
    if depth < 2:
        el.extend(draw(st.lists(xdata_tree(depth + 1), max_size=4)))
    return el


@st.composite
def malformed(draw: st.DrawFn) -> tuple[Form, Element]:
    root = draw(xdata_tree())
    if draw(st.booleans()):
        root.tag = f"{{{ns.XDATA}}}x"
    return draw(forms()), root


def check_malformed(case: tuple[Form, Element]) -> None:
    shown, root = case
    try:
        submitted = Form.from_element(over_the_wire(root))
    except FormError:
        return
    # reading what we write gives the same form (extra payload compares as XML: Elements
    # compare by identity)
    again = Form.from_element(over_the_wire(submitted.to_element()))
    assert serialize(again.to_element()) == serialize(submitted.to_element())
    try:
        values = validate(shown, submitted)
    except FormError:
        return
    assert set(values) <= {f.var for f in shown.fields}


@st.composite
def submissions(draw: st.DrawFn) -> tuple[Form, Form]:
    """A shown form and an answer to it: some of its fields with any values, some unknown."""
    shown = draw(forms())
    answered = [
        Field(var=f.var, type=None, values=draw(st.lists(st.one_of(text, JIDISH), max_size=3)))
        for f in shown.fields
        if draw(st.booleans())
    ]
    answered += draw(st.lists(fields(), max_size=2))
    return shown, Form(type=draw(st.sampled_from(sorted(FORM_TYPES))), fields=answered)


JIDISH = st.sampled_from(["alice@vines.test", "a@b@c", "@d", "d/", "x@\uff0e", "1", "true", " "])


def check_submission(case: tuple[Form, Form]) -> None:
    shown, submitted = case
    try:
        values = validate(shown, submitted)
    except FormError:
        return
    assert submitted.type in ("submit", "cancel")
    for spec in shown.fields:
        if spec.var in values and spec.type == "boolean":
            assert isinstance(values[spec.var], bool)


TARGETS = [
    Target("forms-round-trip", forms(), check_round_trip),
    Target("forms-malformed", malformed(), check_malformed),
    Target("forms-submission", submissions(), check_submission),
]
test_forms_round_trip, test_forms_malformed, test_forms_submission = map(ci_test, TARGETS)
