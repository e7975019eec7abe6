"""Text that XML can carry (any character XML 1.0 allows), weighted towards the characters that
matter to a tokenizer or an escaper."""

from __future__ import annotations

from hypothesis import strategies as st


def _xml_char(c: str) -> bool:
    n = ord(c)
    return n in (9, 10, 13) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


def xml_text(specials: str, max_size: int) -> st.SearchStrategy[str]:
    return st.text(
        st.one_of(
            st.sampled_from(specials),
            st.characters(exclude_categories=("Cs",)).filter(_xml_char),
        ),
        max_size=max_size,
    )
