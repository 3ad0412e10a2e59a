"""Property: the fast scans find exactly what the regex scans they replace found.

* ``links._search_url`` (substring search for "://", then the URL pattern at
  the two possible starts) against ``links._URL.search``, from any position;
* ``message._structure_cut`` (a find on the lowered bytes) against the
  case-insensitive ``multipart/`` regex it replaced, across the part budget.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from render_signal.ingest import links, message

URL_PIECES = st.sampled_from(
    ["http://", "https://", "HTTPS://", "hTtP://", "://", "s://", "http", "https", ":", "/",
     "www.dropbox.com/s/abc/x.zip", "dropbox.com", "we.tl/t-abc", "swisstransfer.com/d/1",
     " ", "\n", "x", "<", '"', "é", "’"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(URL_PIECES, max_size=30).map("".join), st.integers(min_value=0, max_value=400))
def test_search_url_is_the_pattern_search(text: str, pos: int) -> None:
    pos = min(pos, len(text))
    expected = links._URL.search(text, pos)
    found = links._search_url(text, pos)
    assert (found and found.span()) == (expected and expected.span())


_MULTIPART = re.compile(rb"multipart/", re.IGNORECASE)


def _regex_cut(raw: bytes) -> int | None:
    """The implementation before issue 16, kept as the oracle."""
    cuts: list[int] = []
    pos, count = 0, 0
    while True:
        pos = raw.find(b"\n--", pos)
        if pos < 0:
            break
        count += 1
        if count > message.MAX_DELIMITER_LINES:
            cuts.append(pos + 1)
            break
        pos += 3
    for index, match in enumerate(_MULTIPART.finditer(raw)):
        if index >= message.MAX_MULTIPARTS:
            cuts.append(raw.rfind(b"\n", 0, match.start()) + 1)
            break
    return min(cuts) if cuts else None


MIME_PIECES = st.sampled_from(
    [b"x\n", b"Content-Type: MultiPart/mixed\n", b"multipart/", b"MULTIPART/", b"\n--b\n",
     b"abc", b"mUlTiPaRt/"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(MIME_PIECES, max_size=220).map(b"".join))
def test_structure_cut_is_the_regex_cut(raw: bytes) -> None:
    assert message._structure_cut(raw) == _regex_cut(raw)
