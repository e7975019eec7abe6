"""XEP-0004 data forms: fields, forms (including multi-item results), XML in and out, and the
validation of a submitted form against the form that was shown. Pure: no I/O.

`validate(shown, submitted)` returns one Python value per field var: `bool` for boolean, `str`
(or None) for the other single-valued types, `list[str]` for jid-multi, list-multi and
text-multi. JIDs come back normalized. Problems raise `FormError`, whose text names the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from xml.etree.ElementTree import Element

from . import ns
from .jid import JID, JIDError
from .stanza import make

FIELD_TYPES = frozenset(
    """boolean fixed hidden jid-multi jid-single list-multi list-single text-multi text-private
    text-single""".split()
)
MULTI = frozenset({"jid-multi", "list-multi", "text-multi"})
FORM_TYPES = frozenset({"form", "submit", "cancel", "result"})
TRUE, FALSE = frozenset({"1", "true"}), frozenset({"0", "false"})
MAX_VALUE = 64 * 1024  # characters per value; larger values are refused, not truncated
MAX_VALUES = 1000  # values per field


XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate"  # XEP-0122


def X(tag: str) -> str:  # a Clark name in the data forms namespace
    return ns.q(ns.XDATA, tag)


class FormError(ValueError):
    """A form that is malformed or does not satisfy the form it answers."""

    def __init__(self, var: str | None, message: str) -> None:
        self.var = var
        self.message = message
        super().__init__(f"field '{var}': {message}" if var else message)


@dataclass
class Field:
    var: str | None = None
    type: str | None = "text-single"  # None: not given (allowed in submitted forms)
    label: str | None = None
    desc: str | None = None
    required: bool = False
    values: list[str] = field(default_factory=list)
    options: list[tuple[str | None, str]] = field(default_factory=list)  # (label, value)
    open: bool = False  # XEP-0122 <open/>: the options are suggestions, other values may come

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in FIELD_TYPES:
            raise FormError(self.var, f"unknown field type {self.type!r}")

    @property
    def value(self) -> str | None:
        return self.values[0] if self.values else None

    def to_element(self) -> Element:
        attrs = {}
        for name in ("var", "type", "label"):
            value = getattr(self, name)
            if value is not None:
                attrs[name] = value
        el = make(X("field"), attrs)
        if self.desc:
            el.append(make(X("desc"), text=self.desc))
        if self.required:
            el.append(make(X("required")))
        for value in self.values:
            el.append(make(X("value"), text=value))
        for label, value in self.options:
            option = make(X("option"), {"label": label} if label else None)
            option.append(make(X("value"), text=value))
            el.append(option)
        if self.open:
            validate = make(f"{{{XDATA_VALIDATE}}}validate", {"datatype": "xs:string"})
            validate.append(make(f"{{{XDATA_VALIDATE}}}open"))
            el.append(validate)
        return el

    @classmethod
    def from_element(cls, el: Element) -> Field:
        options = []
        for option in el.findall(X("option")):
            value = option.findtext(X("value"))
            if value is None:
                raise FormError(el.get("var"), "an option without a value")
            options.append((option.get("label"), value))
        return cls(
            var=el.get("var"),
            type=el.get("type"),
            label=el.get("label"),
            desc=el.findtext(X("desc")),
            required=el.find(X("required")) is not None,
            values=[v.text or "" for v in el.findall(X("value"))],
            options=options,
            open=el.find(f"{{{XDATA_VALIDATE}}}validate/{{{XDATA_VALIDATE}}}open") is not None,
        )


@dataclass
class Form:
    type: str = "form"
    title: str | None = None
    instructions: list[str] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    reported: list[Field] | None = None  # columns of a multi-item result
    items: list[list[Field]] = field(default_factory=list)  # rows: fields with var and values
    extra: list[Element] = field(default_factory=list)  # other payload (e.g. a roster query)

    def __post_init__(self) -> None:
        if self.type not in FORM_TYPES:
            raise FormError(None, f"unknown form type {self.type!r}")

    def field(self, var: str) -> Field | None:
        return next((f for f in self.fields if f.var == var), None)

    @property
    def form_type(self) -> str | None:
        found = self.field("FORM_TYPE")
        return found.value if found is not None else None

    def to_element(self) -> Element:
        el = make(X("x"), {"type": self.type})
        if self.title:
            el.append(make(X("title"), text=self.title))
        for line in self.instructions:
            el.append(make(X("instructions"), text=line))
        el.extend(f.to_element() for f in self.fields)
        if self.reported is not None:
            el.append(make(X("reported"), children=[f.to_element() for f in self.reported]))
            for row in self.items:
                el.append(make(X("item"), children=[f.to_element() for f in row]))
        el.extend(self.extra)
        return el

    @classmethod
    def from_element(cls, el: Element) -> Form:
        if el.tag != X("x"):
            raise FormError(None, "not a jabber:x:data form")
        try:
            reported = el.find(X("reported"))
            return cls(
                type=el.get("type", ""),
                title=el.findtext(X("title")),
                instructions=[i.text or "" for i in el.findall(X("instructions"))],
                fields=[Field.from_element(f) for f in el.findall(X("field"))],
                reported=(
                    None
                    if reported is None
                    else [Field.from_element(f) for f in reported.findall(X("field"))]
                ),
                items=[
                    [Field.from_element(f) for f in item.findall(X("field"))]
                    for item in el.findall(X("item"))
                ],
                extra=[c for c in el if not c.tag.startswith("{" + ns.XDATA + "}")],
            )
        except FormError:
            raise
        except ValueError as exc:
            raise FormError(None, str(exc)) from None


def prefill(form: Form, values: dict[str, Any]) -> Form:
    """A copy of `form` whose fields show `values` (as returned by `validate`)."""
    fields = []
    for f in form.fields:
        if f.var in values and f.type not in ("fixed", "hidden"):
            fields.append(replace(f, values=_as_strings(values[f.var])))
        else:
            fields.append(f)
    return replace(form, fields=fields)


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["1" if value else "0"]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def validate(shown: Form, submitted: Form) -> dict[str, Any]:
    """Check `submitted` (type submit) against the form that was `shown`; returns the values.

    A field the requester left out keeps the value the shown form had (its default).
    """
    if submitted.type not in ("submit", "cancel"):
        raise FormError(None, f"expected a form of type 'submit', got '{submitted.type}'")
    given = {f.var: f for f in submitted.fields if f.var}
    result: dict[str, Any] = {}
    for spec in shown.fields:
        if spec.var is None or spec.type == "fixed":
            continue
        sent = given.get(spec.var)
        values = sent.values if sent is not None else spec.values
        if spec.var == "FORM_TYPE" and spec.type == "hidden":
            if sent is not None and values != spec.values:
                raise FormError("FORM_TYPE", f"expected {spec.value!r}, got {values[:1]!r}")
            continue
        result[spec.var] = _check(spec, values)
    return result


def _check(spec: Field, values: list[str]) -> Any:
    var, ftype = spec.var, spec.type or "text-single"
    if len(values) > MAX_VALUES:
        raise FormError(var, f"more than {MAX_VALUES} values")
    for value in values:
        if len(value) > MAX_VALUE:
            raise FormError(var, f"a value longer than {MAX_VALUE} characters")
    if ftype in MULTI:
        present = [v for v in values if v.strip()] if ftype != "text-multi" else values
    else:
        if len(values) > 1:
            raise FormError(var, "takes a single value")
        present = [v for v in values if v.strip()]
    if spec.required and not any(v.strip() for v in present):
        raise FormError(var, "is required")
    if ftype == "boolean":
        if not present:
            return False
        word = present[0].strip().lower()
        if word not in TRUE | FALSE:
            raise FormError(var, f"{present[0]!r} is not a boolean (use 1, 0, true or false)")
        return word in TRUE
    if ftype in ("jid-single", "jid-multi"):
        jids = []
        for value in present:
            try:
                jids.append(str(JID.parse(value.strip())))
            except JIDError as exc:
                raise FormError(var, f"{value!r} is not a valid JID ({exc})") from None
        return jids if ftype == "jid-multi" else (jids[0] if jids else None)
    if ftype in ("list-single", "list-multi") and spec.options and not spec.open:
        allowed = {value for _, value in spec.options}
        for value in present:
            if value not in allowed:
                choices = ", ".join(sorted(allowed))
                raise FormError(var, f"{value!r} is not one of the options ({choices})")
    if ftype in MULTI:
        return list(present)
    return present[0] if present else None
