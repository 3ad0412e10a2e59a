"""Property: the delivery-time phrases are found exactly as a whole-body search finds them.

``detectors._search_near`` only tries the starts just before an occurrence of
"faire"; on any text built from the phrases' own pieces (accents, case,
whitespace runs of every length around the 10-character bound, dates, clocks)
it must return the match ``pattern.search`` returns: same span, same groups.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from render_signal.ingest import detectors

WS = st.sampled_from(["", " ", "  ", "\xa0", "\t", "\n", " " * 10, " " * 11])
PIECE = st.one_of(
    st.tuples(
        st.sampled_from(["à", "a", "A", "À", "xa", "ą"]),
        WS,
        st.sampled_from(["faire", "FAIRE", "Faire", "fa\u0131re", "fare"]),
        WS,
        st.sampled_from(["pour", "POUR", "p"]),
        WS,
        st.sampled_from(["le", "LE", ""]),
        WS,
        st.sampled_from(["10/05/2026", "1/2/2026", "10/05/26", ""]),
        WS,
        st.sampled_from(["à", "a", "àà", "à à", ""]),
        WS,
        st.sampled_from(["11h30", "9h", "11:30", "7H05", "x"]),
    ).map("".join),
    st.sampled_from(["bonjour ", "faire", "à", " ", "12h", "xxxxxxxx"]),
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECE, min_size=1, max_size=6).map("".join))
def test_search_near_finds_what_search_finds(body: str) -> None:
    faire = [m.start() for m in detectors._FAIRE.finditer(body)]
    for pattern in (detectors._DATE_TIME, detectors._TIME_ONLY):
        expected = pattern.search(body)
        found = detectors._search_near(pattern, body, faire)
        assert (found and (found.span(), found.groups())) == (
            expected and (expected.span(), expected.groups())
        )
