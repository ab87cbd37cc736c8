"""Hypothesis strategies for keys that must survive every path unchanged (issue 10): every Unicode
plane, the URL-special characters (``/ % # ? + & =``), ``.``/``..`` segments, empty segments,
leading/trailing ``/``, percent-escape look-alikes (``%41``, ``%2F``), names kubectl proxy
rejects (``exec``, ``attach``), and keys right at the size limit."""

from __future__ import annotations

from hypothesis import strategies as st

from raftkv.keycodec import MAX_KEY_BYTES

__all__ = ["any_key", "plane_char"]

URL_SPECIAL = [
    "/",
    "%",
    "#",
    "?",
    "+",
    "&",
    "=",
    " ",
    ";",
    "\\",
    "~",
    "%41",
    "%2F",
    "%25",
    "%zz",
    "%",
    ".",
    "..",
    "",
    "exec",
    "attach",
    "tag#frag",
    "q?x",
]


def _plane(plane: int) -> st.SearchStrategy[str]:
    low, high = plane << 16, (plane << 16) | 0xFFFF
    return st.integers(low, high).filter(lambda c: not 0xD800 <= c <= 0xDFFF).map(chr)


# one character from a uniformly chosen plane (0..16), so the rare planes are not rare
plane_char: st.SearchStrategy[str] = st.integers(0, 16).flatmap(_plane)

_segment = st.one_of(
    st.sampled_from(URL_SPECIAL),
    st.text(st.one_of(plane_char, st.sampled_from(list("/%#?.+ "))), max_size=6),
    st.text(st.characters(codec="utf-8"), max_size=6),
)
_structured = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "/", "//"]),
    st.lists(_segment, min_size=1, max_size=5),
    st.sampled_from(["", "/", "//"]),
)


def _to_the_limit(base: str, fill: str) -> str:
    room = MAX_KEY_BYTES - len(base.encode("utf-8"))
    return base + fill * max(0, room // len(fill.encode("utf-8")))


_long = st.builds(_to_the_limit, _structured, st.one_of(plane_char, st.sampled_from(["/", "%"])))


def _fits(key: str) -> bool:
    return 0 < len(key.encode("utf-8")) <= MAX_KEY_BYTES


any_key: st.SearchStrategy[str] = st.one_of(_structured, _structured, _long).filter(_fits)
