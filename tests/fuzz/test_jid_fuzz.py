"""Fuzzing JIDs (security plan Z-02): parsing is idempotent, parse(str(parse(x))) == parse(x);
nothing but JIDError is ever raised; every prepared part fits RFC 7622's 1023 bytes."""

from __future__ import annotations

from hypothesis import strategies as st
from vines_server.xmpp.jid import JID, JIDError, domain_to_ascii

from tests.fuzz.budget import Target, ci_test

# The characters JID preparation treats specially, widths and compatibility forms of them,
# and anything else Unicode has (surrogates cannot be in a str read from UTF-8).
SPECIAL = "@/.:[]\"&'<> \t\u3002\uff0e\uff61\uff20\uff0f\u2024\u00df\u0130\u212a\ufb01\u0301\u200d"
chars = st.one_of(
    st.sampled_from(SPECIAL),
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),
    st.characters(exclude_categories=("Cs",)),
)
# Half of the parts are letters, digits and marks of any script, which often pass preparation,
# so that idempotence is tested on prepared parts and not only on refusals.
parts = st.one_of(
    st.text(chars, max_size=12),
    st.text(
        st.characters(categories=("Ll", "Lu", "Lt", "Lo", "Nd", "Mn")), min_size=1, max_size=12
    ),
)


@st.composite
def jid_text(draw: st.DrawFn) -> str:
    """Mostly JID-shaped text (local@domain/resource) with odd parts; sometimes any text, and
    sometimes a part near the 1023-byte limit."""
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return draw(st.text(chars, max_size=40))
    local, domain, resource = draw(parts), draw(parts), draw(parts)
    if shape in (1, 3, 4):  # a valid domain, so that the other parts get tested
        domain = draw(st.sampled_from(["vines.test", "例え.テスト", "[::1]", "127.0.0.1"]))
    if shape == 2:
        big = draw(st.sampled_from(["a", "é", "€", "😀", "Ⅻ"]))
        n = draw(st.integers(1023 // len(big.encode()) - 2, 1023 // len(big.encode()) + 2))
        which = draw(st.sampled_from(["local", "resource", "domain"]))
        local, resource = (
            (big * n if which == "local" else local),
            (big * n if which == "resource" else resource),
        )
        if which == "domain":
            domain = ".".join(["a" * 63] * 16)[: n + 200]
    text = domain
    if draw(st.booleans()):
        text = f"{local}@{text}"
    if draw(st.booleans()):
        text = f"{text}/{resource}"
    return text


def check_jid(text: str) -> None:
    try:
        jid = JID.parse(text)
    except JIDError:
        return
    for part in (jid.local, jid.domain, jid.resource):
        assert part is None or 0 < len(part.encode("utf-8")) <= 1023, jid
    again = JID.parse(str(jid))
    assert again == jid, (text, str(jid), again)
    assert str(again) == str(jid)
    if not jid.domain.startswith("["):
        try:
            ascii_form = domain_to_ascii(jid.domain)
        except JIDError:
            raise AssertionError(f"prepared domain {jid.domain!r} has no A-label form") from None
        assert JID.parse(ascii_form).domain == jid.domain


TARGETS = [Target("jid-parse", jid_text(), check_jid, examples=400)]
(test_jid_parse,) = map(ci_test, TARGETS)
