"""Ingest parse benchmark: full parse + link extraction + detectors vs a bare
``email.message_from_bytes`` loop over the same corpus, in the same run.

Usage: ``uv run python bench/ingest_bench.py [corpus_dir] [--seconds N]``; prints JSON.
The ratio (ours / bare) is the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from render_signal.ingest.analysis import analyse
from render_signal.ingest.message import ParseLimits, UnreadableEmail, read_raw_email

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "services/ingest/tests/corpus"
_NOW = dt.datetime(2025, 6, 2, 10, 15, tzinfo=dt.UTC)


def _rate(emails: list[bytes], handle: Callable[[bytes], object], seconds: float) -> float:
    """Emails per second over whole passes of the corpus, for about ``seconds``."""
    for raw in emails:  # warm-up pass
        handle(raw)
    count = 0
    started = time.perf_counter()
    while True:
        for raw in emails:
            handle(raw)
        count += len(emails)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def run(corpus_dir: str | Path = DEFAULT_CORPUS, seconds: float = 2.0) -> dict[str, Any]:
    """Measure both loops on ``corpus_dir/*.eml``; returns rates and their ratio."""
    emails = [p.read_bytes() for p in sorted(Path(corpus_dir).glob("*.eml"))]
    if not emails:
        raise SystemExit(f"no .eml files in {corpus_dir}")
    limits = ParseLimits()

    def full(raw: bytes) -> int:
        try:
            return len(analyse(read_raw_email(raw, limits), now=lambda: _NOW).links)
        except UnreadableEmail:
            return 0

    def bare(raw: bytes) -> object:
        return email.message_from_bytes(raw)

    bare_rate = _rate(emails, bare, seconds)
    full_rate = _rate(emails, full, seconds)
    return {
        "benchmark": "ingest_parse",
        "corpus_emails": len(emails),
        "corpus_bytes": sum(len(e) for e in emails),
        "ingest_emails_per_s": round(full_rate, 1),
        "bare_message_from_bytes_emails_per_s": round(bare_rate, 1),
        "ratio_ingest_vs_bare": round(full_rate / bare_rate, 3),
        "links_found_per_pass": sum(full(raw) for raw in emails),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus_dir", nargs="?", default=str(DEFAULT_CORPUS))
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(run(args.corpus_dir, args.seconds), indent=2))


if __name__ == "__main__":
    main()
