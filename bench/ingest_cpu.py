"""CPU ms per email of ingest's per-email work (``read_event`` + ``analyse``).

``uv run python -m bench.ingest_cpu [--emails 100] [--passes 7] [--corpus DIR]
[--no-recadrage] [--write DIR] [--dump FILE] [--profile FILE]``

The corpus is the end-to-end one (``bench/e2e_bench.py``: seeded sizes, 60 %
~50 KB quoted-printable HTML, 30 % ~5 KB and 10 % ~500 KB text), generated in
memory or read from ``--corpus`` (``--write`` saves one, so two checkouts can be
compared on the same bytes). CPU is ``time.process_time`` (the machine is shared
and noisy, wall time is not comparable); the figure is the median over passes.
``--no-recadrage`` makes emails no detector matches, so the second detector
(``desabonnement_journee_tarifs``) reads the whole body as well.
``--dump`` writes every email's ``Analysis`` as JSON lines: identical files mean
identical output; ``--profile`` writes cProfile stats of three passes instead.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import random
import statistics
import time
from pathlib import Path

import msgspec
from render_signal.common.events import MailRaw
from render_signal.ingest.analysis import Analysis, analyse, read_event
from render_signal.ingest.message import ParseLimits

from bench.e2e_bench import SEED, _sizes
from tests.integration.harness.mail import make_email

_NOW = dt.datetime(2025, 6, 2, 10, 15, tzinfo=dt.UTC)


def corpus(emails: int, *, recadrage: bool = True) -> list[bytes]:
    """The e2e bench corpus: seeded sizes, one fresh email per size."""
    sizes = _sizes(emails, random.Random(SEED))
    return [
        make_email(f"E2E-f1a3e-{i}", size_pad=size, html=size == 50_000, recadrage=recadrage)
        for i, size in enumerate(sizes)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=100)
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--no-recadrage", action="store_true")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    if args.corpus:
        raws = [p.read_bytes() for p in sorted(args.corpus.glob("*.eml"))]
    else:
        raws = corpus(args.emails, recadrage=not args.no_recadrage)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for i, raw in enumerate(raws):
            (args.write / f"{i:04d}.eml").write_bytes(raw)
    events = [
        MailRaw(event_id=str(i), source="http_raw", received_at=0.0, raw=raw)
        for i, raw in enumerate(raws)
    ]
    limits = ParseLimits()

    def one(event: MailRaw) -> Analysis:
        return analyse(read_event(event, limits), now=lambda: _NOW)

    if args.dump:
        args.dump.write_bytes(b"".join(msgspec.json.encode(one(e)) + b"\n" for e in events))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3):
            for event in events:
                one(event)
        profiler.disable()
        profiler.dump_stats(args.profile)
        return
    for event in events:  # warm-up
        one(event)
    passes: list[float] = []
    by_size: dict[str, list[float]] = {}
    for _ in range(args.passes):
        started = time.process_time()
        for event in events:
            before = time.process_time()
            one(event)
            kb = len(event.raw) // 1000
            label = "~5 KB" if kb < 20 else "~50 KB" if kb < 200 else "~500 KB"
            by_size.setdefault(label, []).append(time.process_time() - before)
        passes.append((time.process_time() - started) / len(events) * 1000)
    print(f"{len(events)} emails, CPU ms/email per pass: " + " ".join(f"{p:.3f}" for p in passes))
    print(f"median {statistics.median(passes):.3f} ms/email, min {min(passes):.3f}")
    for label, values in by_size.items():
        median = statistics.median(values) * 1000
        print(f"  {label}: n={len(values) // args.passes}, median {median:.3f} ms")


if __name__ == "__main__":
    main()
