"""Property: ingest's fast paths give what the slower code they replaced gave.

The oracles are the implementations before issue 16's second pass, kept here
verbatim; inputs are built from the pieces that matter to each function (case
variants, the Unicode characters whose case rules differ -- İ, ı, ſ, the Kelvin
sign --, text that does and does not fit Latin-1, tags split and unclosed).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy

from hypothesis import given, settings
from hypothesis import strategies as st
from render_signal.ingest import analysis, detectors, headers

#: Characters whose case folding is irregular, and some outside Latin-1.
ODD = ["\u0130", "\u0131", "\u017f", "\u212a", "’", "€", "é", "À", "\xa0", "ß", "ﬁ"]

FAIRE_PIECES = st.sampled_from(
    ["faire", "FAIRE", "Faire", "fAiRe", "fa\u0131re", "FA\u0130RE", "fai", "re", "f", " ",
     "à faire pour 10h", *ODD]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(FAIRE_PIECES, max_size=20).map("".join))
def test_faire_offsets_are_the_regex_matches(body: str) -> None:
    expected = [m.start() for m in detectors._FAIRE.finditer(body)]
    assert detectors._faire_offsets(body) == expected


def test_faire_case_facts_hold_for_this_unicode_database() -> None:
    """The facts ``_faire_offsets`` relies on, checked on every code point."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    assert [c for c in chars if len(c.lower()) != 1] == ["\u0130"]
    any_letter = re.compile("[faire]", re.IGNORECASE)
    candidates = [c for c in chars if any_letter.fullmatch(c)]
    for letter in "faire":
        folded = {c for c in candidates if re.fullmatch(letter, c, re.IGNORECASE)}
        assert folded - {letter, letter.upper()} <= set(detectors._FAIRE_NON_ASCII)


def _normalise_before(text: str) -> str:
    """``detectors.normalise`` before issue 16's second pass (the oracle)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())


#: Every combining mark below U+0370 and a few beyond: more than the replace budget.
MARKS = [chr(c) for c in range(0x300, 0x370)] + ["\u0591", "\u05bf", "\u20d0", "\U0001d167"]
TEXT_PIECES = st.one_of(
    st.sampled_from(
        ["Journée", "TARIFS  habituels", "désabonnement", "ﬁn", "½", "Ⅻ", "한국", "ǅ", "\n",
         " ", "\t", "x", "é", "e\u0301", "\u0301", "Å", "ṩ", *ODD]
    ),
    st.sampled_from(MARKS),
    st.characters(),
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(TEXT_PIECES, max_size=40).map("".join))
def test_normalise_is_the_character_filter(text: str) -> None:
    assert detectors.normalise(text) == _normalise_before(text)


def test_normalise_with_more_marks_than_the_replace_budget() -> None:
    text = "".join(f"a{mark}É" for mark in MARKS) * 3
    assert len(MARKS) > detectors._MAX_MARK_PASSES
    assert detectors.normalise(text) == _normalise_before(text)


def _parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=headers.BoundedPolicy()).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def test_shared_header_parses_read_as_fresh_ones() -> None:
    """A header parsed for an earlier message reads as a fresh parse, own spelling kept."""
    shared = _parse(b'CONTENT-TYPE: text/plain; charset="utf-8"\n\nx\n')["content-type"]
    again = _parse(b'Content-Type: text/plain; charset="utf-8"\n\ny\n')["content-type"]
    fresh = EmailPolicy().header_fetch_parse("Content-Type", 'text/plain; charset="utf-8"')
    assert (shared.name, again.name) == ("CONTENT-TYPE", "Content-Type")
    assert (again.content_type, dict(again.params)) == (fresh.content_type, dict(fresh.params))
    assert str(again) == str(fresh) and again.defects == fresh.defects


def test_shared_header_parses_stay_bounded() -> None:
    for n in range(3 * headers._MAX_SHARED_PARSES):
        raw = f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n\nx\n--b{n}--\n'
        assert _parse(raw.encode()).get_boundary() == f"b{n}"
    assert len(headers._SHARED_PARSES) <= headers._MAX_SHARED_PARSES
    subject = "x" * (headers.MAX_MIME_HEADER_CHARS + 1)  # longer values are not kept
    assert _parse(f"Subject: {subject}\n\nx\n".encode())["subject"] == subject
    assert ("Subject", subject) not in headers._SHARED_PARSES


MARKUP_PIECES = st.sampled_from(
    ["<script>", "<SCRIPT type=x>", "</script>", "</ScRiPt >", "<style>", "</STYLE>", "<",
     "</", ">", "<p>", "text", "<\u017fcript>", "<scr\u0130pt>", "<scr\u0131pt>", "<s", "cript",
     "tyle", "<st", *ODD]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(MARKUP_PIECES, max_size=25).map("".join))
def test_drop_hidden_is_the_lowered_scan(markup: str) -> None:
    assert analysis._drop_hidden(markup) == analysis._cut_hidden(markup)


def test_hidden_tag_case_facts_hold_for_this_unicode_database() -> None:
    """What lowers to a letter of the tags also matches it under IGNORECASE."""
    for char in map(chr, range(sys.maxunicode + 1)):
        lowered = char.lower()
        if lowered in "scriptyle" and len(lowered) == 1:
            assert re.fullmatch(lowered, char, re.IGNORECASE)
