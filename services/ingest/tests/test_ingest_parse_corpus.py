"""The checked-in corpus: every .eml parses to the links/detector its manifest expects."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from render_signal.ingest.analysis import analyse
from render_signal.ingest.message import ParseLimits, read_raw_email

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "corpus.json").read_text())
FIXED_NOW = dt.datetime(2025, 6, 2, 10, 15, tzinfo=dt.UTC)  # 12:15 in Paris (CEST)


def test_ingest_corpus_is_large_and_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert len(MANIFEST) >= 40
    assert files == {entry["file"] for entry in MANIFEST}
    providers = {link[0] for entry in MANIFEST for link in entry["links"]}
    assert providers == {"dropbox", "fromsmash", "swisstransfer", "wetransfer"}
    detectors = {entry["detector"] for entry in MANIFEST}
    assert {"recadrage", "desabonnement_journee_tarifs", None} <= detectors


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_ingest_corpus_email(entry: dict[str, Any]) -> None:
    raw = (CORPUS / entry["file"]).read_bytes()
    parsed = read_raw_email(raw, ParseLimits())
    result = analyse(parsed, now=lambda: FIXED_NOW, timezone="Europe/Paris")
    found = [
        [link.provider, link.raw_url, *([list(link.flags)] if link.flags else [])]
        for link in result.links
    ]
    assert found == entry["links"]
    assert result.detection.detector == entry["detector"]
    assert result.detection.delivery_time == entry["delivery_time"]
    assert result.detection.is_urgent == entry["is_urgent"]
    if "subject" in entry:
        assert parsed.subject == entry["subject"]
    if "sender_email" in entry:
        assert parsed.sender_email == entry["sender_email"]
    if "body_contains" in entry:
        assert entry["body_contains"] in parsed.body_text + parsed.body_html
    for text in (parsed.subject, parsed.sender_address, parsed.sender_email):
        assert "\r" not in text and "\n" not in text and "\x00" not in text
    assert "\x00" not in parsed.body_text + parsed.body_html
