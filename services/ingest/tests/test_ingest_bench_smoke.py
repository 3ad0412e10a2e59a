"""The benchmark module runs on the corpus and reports both rates and their ratio."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "ingest_bench.py"


def test_ingest_bench_reports_rates_and_ratio() -> None:
    spec = importlib.util.spec_from_file_location("ingest_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.run(Path(__file__).parent / "corpus", seconds=0.05)
    assert report["corpus_emails"] >= 40
    assert report["ingest_emails_per_s"] > 0
    assert report["bare_message_from_bytes_emails_per_s"] > 0
    ratio = report["ingest_emails_per_s"] / report["bare_message_from_bytes_emails_per_s"]
    assert abs(report["ratio_ingest_vs_bare"] - ratio) < 0.01
    assert report["links_found_per_pass"] >= 40
