"""Profile the four services under bench load: one py-spy flame graph per service.

``uv run python -m bench.profile [--tag before] [--no-worker] [--imap] [--idle]
[--seconds 20] [--no-spy]`` starts the end-to-end pipeline
(``tests/integration/harness``), drives the closed-loop HTTP (or, with
``--imap``, IMAP APPEND) saturation load of ``bench/e2e_bench.py`` and,
meanwhile, samples each service with
``py-spy record --gil`` (100 Hz: only the thread holding the GIL, so the
samples follow CPU, not threads waiting for it).
Writes ``bench/results/flame-<service>[-<tag>].svg`` and prints, per service,
the CPU ms per delivered email (psutil) and its heaviest functions (self and
inclusive share of the samples, from py-spy's folded output), so the numbers
that justify a change are in the terminal as well as in the picture.
``--no-spy`` measures the CPU per email alone (no sampling overhead); ``--idle``
sends no mail and reports CPU ms per second instead (what the background
work, heartbeats and polls at the harness's test-speed periods, costs).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.e2e_bench import Corpus, Resources, saturation
from tests.integration.harness.pipeline import Pipeline
from tests.integration.harness.window import open_window

RESULTS = Path(__file__).resolve().parent / "results"
OURS = re.compile(r"\((common|ingest|offload|notify|gateway)/")


def fold(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Samples, self samples per function and inclusive samples per function
    (each function counted once per stack) from py-spy's folded output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for function in set(frames):
            inclusive[function] += samples
    return total, own, inclusive


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tag", default="")
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--imap", action="store_true", help="load through IMAP APPEND")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-spy", action="store_true", help="only the CPU per email")
    parser.add_argument("--idle", action="store_true", help="no mail: CPU ms per second")
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    assert spy, "py-spy missing: uv sync --all-packages"
    workdir = Path(tempfile.mkdtemp(prefix="rs-profile-"))
    pipeline = Pipeline(workdir, imap=args.imap, worker=not args.no_worker, files_bytes=4096)
    pipeline.start()
    suffix = f"-{args.tag}" if args.tag else ""
    folded_dir = Path(tempfile.gettempdir()) / f"rs-profile{suffix}"
    folded_dir.mkdir(exist_ok=True)
    try:
        start, end = open_window(pipeline.timezone)
        window = {"webhook_time_start": start, "webhook_time_end": end}
        pipeline.put_config("webhook_config", window)
        resources = Resources(pipeline)
        channel, threads = ("imap", 2) if args.imap else ("http", 4)
        load = threading.Thread(
            target=saturation, args=(pipeline, Corpus("f1a3e"), channel, threads), daemon=True
        )
        if not args.idle:
            load.start()
        time.sleep(5)  # warm-up
        cpu0, delivered0 = resources.cpu(), pipeline.receiver.delivered_count()
        spies = {
            (name, fmt): subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(service.pid),
                    "--duration",
                    str(int(args.seconds)),
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--gil",
                    "--format",
                    fmt,
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, service in pipeline.services.items()
            if not args.no_spy
            for fmt, out in (
                ("flamegraph", RESULTS / f"flame-{name}{suffix}.svg"),
                ("raw", folded_dir / f"{name}.folded"),
            )
        }
        if args.no_spy:
            time.sleep(args.seconds)
        for proc in spies.values():
            proc.wait(args.seconds + 60)
        cpu1, delivered = resources.cpu(), pipeline.receiver.delivered_count() - delivered0
        if args.idle:
            per, unit = args.seconds, "CPU ms/s with no mail"
        else:
            load.join(120)
            print(f"delivered {delivered} emails while sampling")
            per, unit = max(1, delivered), "CPU ms/email"
        total = 0.0
        for name in cpu1:
            ms = (cpu1[name] - cpu0[name]) / per * 1000
            if not name.startswith("worker"):
                total += ms
            print(f"  {name}: {ms:.2f} {unit}")
        print(f"  ours + redis: {total:.2f} {unit}")
        for name in pipeline.services:
            folded = folded_dir / f"{name}.folded"
            if not folded.exists():
                continue
            total_samples, own, inclusive = fold(folded)
            print(f"== {name}: {total_samples} samples (flame-{name}{suffix}.svg)")
            print("  self:")
            for function, samples in own.most_common(25):
                print(f"  {samples / total_samples:6.1%}  {function[:140]}")
            print("  inclusive, our code:")
            ours = [(f, n) for f, n in inclusive.most_common() if OURS.search(f)]
            for function, samples in ours[:30]:
                print(f"  {samples / total_samples:6.1%}  {function[:140]}")
    finally:
        pipeline.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
