"""The dashboard's two string tables carry the same keys, none of them empty."""

from __future__ import annotations

from render_signal.gateway.i18n import LANGUAGES, strings


def test_every_key_exists_in_both_languages() -> None:
    french, english = (strings(lang) for lang in LANGUAGES)
    assert sorted(french.keys() - english.keys()) == []
    assert sorted(english.keys() - french.keys()) == []
    assert [k for k, v in {**french, **english}.items() if not v.strip()] == []
