"""End-to-end benchmark: the four services as processes, with same-run baselines.

Pipeline: ``tests/integration/harness`` (real Redis with AOF, Dovecot, the
Worker in workerd behind a local provider file server, recording receiver,
``render-signal-{ingest,offload,notify,gateway}`` as separate processes).

Figures (reliability-security-performance.md §3.5, scaled to a 10-minute budget):

* saturation, closed loop (a bounded number of emails in flight), through HTTP
  ingress and through IMAP APPEND -- emails/s delivered at the receiver over
  the steady part of the phase;
* latency from hand-over (APPEND / POST start) to the receiver at 10 % and 50 %
  of saturation, open loop (constant arrival rate): p50 / p95 / p99 / max;
* per service: CPU seconds per 1000 emails and peak RSS (psutil on the PIDs),
  and CPU ms per second with no mail (background work, included in the former).

Baselines measured in the same run, on the same corpus:

* parse-only ceiling: one process looping ingest's own parse + analyse;
* broker ceiling: raw XADD of the same raw emails, sequential and pipelined;
* naive floor: one synchronous process doing parse -> Worker (the same workerd
  instance) per link -> receiver, no Redis;
* the layout's floor (``bench/floor.py``), after the R2-off phase: the required
  four processes and Redis doing ingest's parse and nothing else, at saturation.

Two-replica variant (issue 17), the same components, HTTP ingress: the same
saturation with two processes of each worker (ratio to one replica, same run;
the CPU is shared, so what grows is the Worker calls and webhooks in flight,
each replica capping its own), then
2 emails/s for PHASE_S with each provider file taking 0.5 s and each webhook
0.5 s (so every replica has work in flight) while one offload and one notify
replica are SIGKILLed and not restarted: takeover time of each dead replica's
work, worst delay between a kill and the delivery of an email in flight at it,
latency.

Corpus: seeded; 60 % ~50 KB multipart/alternative with quoted-printable HTML,
30 % ~5 KB text, 10 % ~500 KB text emails (1-5 MB in the design, smaller to fit
the 10-minute budget), each with a Dropbox and a SwissTransfer link and a
unique Message-ID.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import redis as redis_sync
from render_signal.common.events import MailRaw
from render_signal.common.keys import Keys
from render_signal.devstack.polling import wait_until
from render_signal.ingest.analysis import analyse, read_event
from render_signal.ingest.identity import email_id
from render_signal.ingest.message import ParseLimits
from render_signal.offload.normalise import normalise
from render_signal.offload.objectkey import object_key

from tests.integration.harness.mail import make_email
from tests.integration.harness.pipeline import Pipeline, missing_components
from tests.integration.harness.replicas import KillLog, delays_after_kills
from tests.integration.harness.window import open_window

__all__ = ["run"]

PHASE_S = 25.0
WARMUP_S = 5.0
IN_FLIGHT = 40
SEED = 20261128


def _sizes(n: int, rng: random.Random) -> list[int]:
    out = []
    for _ in range(n):
        x = rng.random()
        out.append(50_000 if x < 0.6 else 5_000 if x < 0.9 else 500_000)
    return out


class Corpus:
    """Seeded email sizes; each call makes a fresh email (unique marker and links).

    ``run_id`` must be hex: the receiver finds markers with ``E2E-<hex>-<n>``.
    """

    def __init__(self, run_id: str) -> None:
        self.rng = random.Random(SEED)
        self.run_id = run_id
        self.count = 0
        self.lock = threading.Lock()

    def next(self) -> tuple[str, bytes]:
        with self.lock:
            index = self.count
            self.count += 1
            size = _sizes(1, self.rng)[0]
        marker = f"E2E-{self.run_id}-{index}"
        # The ~50 KB emails are HTML newsletters as agencies send them (section 3.5).
        return marker, make_email(marker, size_pad=size, html=size == 50_000)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {
        "n": len(values),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(q(0.95) * 1000, 1),
        "p99_ms": round(q(0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


# -- baselines ------------------------------------------------------------------------
def parse_only(corpus: list[bytes], duration_s: float = 10.0) -> float:
    """Emails/s of ingest's parse + analyse + identity in one loop (the ceiling)."""
    limits = ParseLimits()
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration_s:
        raw = corpus[done % len(corpus)]
        event = MailRaw(event_id=str(done), source="http_raw", received_at=time.time(), raw=raw)
        parsed = read_event(event, limits)
        analyse(parsed)
        email_id(parsed, "http_raw")
        done += 1
    return done / (time.perf_counter() - started)


def raw_xadd(url: str, corpus: list[bytes], n: int = 3000) -> dict[str, float]:
    """XADD of the same raw emails: sequential and pipelined (batches of 100)."""
    client = redis_sync.Redis.from_url(url)
    key = "bench:xadd"
    try:
        started = time.perf_counter()
        for i in range(n):
            client.xadd(key, {"raw": corpus[i % len(corpus)]}, maxlen=10_000, approximate=True)
        sequential = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for batch in range(0, n * 3, 100):
            pipe = client.pipeline(transaction=False)
            for i in range(batch, batch + 100):
                pipe.xadd(key, {"raw": corpus[i % len(corpus)]}, maxlen=10_000, approximate=True)
            pipe.execute()
        pipelined = n * 3 / (time.perf_counter() - started)
        client.delete(key)
    finally:
        client.close()
    result = {"xadd_seq_per_s": round(sequential, 1), "xadd_pipelined_per_s": round(pipelined, 1)}
    benchmark = shutil.which("redis-benchmark")
    if benchmark:
        port = url.rsplit(":", 1)[1].split("/")[0]
        out = subprocess.run(
            [
                benchmark,
                "-p",
                port,
                "-c",
                "1",
                "-n",
                "20000",
                "--csv",
                "XADD",
                "rb:xadd",
                "*",
                "f",
                "v",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        rows = [line.split(",") for line in out.splitlines() if line.startswith('"XADD')]
        if rows:
            result["redis_benchmark_xadd_c1_per_s"] = float(rows[0][1].strip('"'))
    return result


def naive_floor(pipeline: Pipeline, corpus: list[bytes], duration_s: float = 15.0) -> float:
    """One synchronous process: parse -> Worker per link -> receiver. Emails/s."""
    assert pipeline.worker is not None
    limits = ParseLimits()
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration_s:
        raw = corpus[done % len(corpus)]
        event = MailRaw(event_id=str(done), source="http_raw", received_at=time.time(), raw=raw)
        result = analyse(read_event(event, limits))
        links = []
        for link in result.links:
            source = normalise(link.provider, link.raw_url)
            body = json.dumps(
                {
                    "source_url": source,
                    "object_key": object_key(link.provider, source),
                    "bucket": "render-signal-e2e",
                    "provider": link.provider,
                    "email_id": str(done),
                }
            ).encode()
            request = urllib.request.Request(
                pipeline.worker.url,
                data=body,
                headers={"Content-Type": "application/json", "X-R2-FETCH-TOKEN": pipeline.r2_token},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                links.append(json.loads(response.read()).get("r2_url"))
        payload = json.dumps({"subject": "naive", "links": links}).encode()
        request = urllib.request.Request(
            pipeline.receiver.url_for("/naive"),
            data=payload,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        done += 1
    return done / (time.perf_counter() - started)


# -- resources ------------------------------------------------------------------------
def process_cpu(proc: psutil.Process) -> float:
    """CPU seconds so far of ``proc`` and its children, live and waited for
    (why both: :meth:`Resources.cpu`)."""
    total = 0.0
    for member in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


class Resources:
    """psutil on the service processes: CPU seconds between marks, peak RSS."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.procs = {
            name: psutil.Process(service.pid)
            for name, service in pipeline.services.items()
            if service.pid is not None
        }
        # Context, not our code: Redis and the Worker (node + its workerd children).
        if pipeline.redis.process is not None:
            self.procs["redis-server"] = psutil.Process(pipeline.redis.process.pid)
        if pipeline.worker is not None and pipeline.worker.process is not None:
            self.procs["worker (node+workerd)"] = psutil.Process(pipeline.worker.process.pid)
        self.peak_rss: dict[str, int] = dict.fromkeys(self.procs, 0)
        #: Redis ``used_memory``: the peak seen by the 1 s sampler.
        self.redis_url = pipeline.redis.url
        self.redis_peak_used = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per process, its children included: the live ones, and
        those it has waited for (``children_*``). Why the latter: Redis forks a child
        for every AOF rewrite (about one a second under the saturation load with
        Redis's default 64mb threshold, every 4 to 15 s with ours), and each lives a
        fraction of a second, so sampling live children alone missed about a quarter of
        Redis's CPU (measured with 64mb: 0.96 of 3.77 s in 12 s of R2-off saturation)."""
        return {name: process_cpu(proc) for name, proc in self.procs.items()}

    def aof_rewrites(self) -> int:
        """AOF rewrites Redis has done so far (each one a forked child; see :meth:`cpu`)."""
        client = redis_sync.Redis.from_url(self.redis_url)
        try:
            return int(client.info("persistence")["aof_rewrites"])
        finally:
            client.close()

    def _sample(self) -> None:
        client = redis_sync.Redis.from_url(self.redis_url)
        try:
            while not self._stop.wait(1.0):
                with contextlib.suppress(redis_sync.RedisError):
                    used = int(client.info("memory")["used_memory"])
                    self.redis_peak_used = max(self.redis_peak_used, used)
                self._sample_rss()
        finally:
            client.close()

    def _sample_rss(self) -> None:
        for name, proc in self.procs.items():
            rss = 0
            for member in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    rss += member.memory_info().rss
            self.peak_rss[name] = max(self.peak_rss[name], rss)

    def start(self) -> Resources:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _host_busy() -> float:
    """CPU seconds the whole host has been busy (every core, every process)."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + getattr(times, "irq", 0.0)
                 + getattr(times, "softirq", 0.0))  # fmt: skip


def idle_cpu(resources: Resources, seconds: float = 5.0) -> dict[str, float]:
    """CPU ms per second of each process with no mail: heartbeats, liveness, the
    scheduler's polls. Reported beside the per-email figures, which include it: the
    harness runs the test-speed periods (heartbeat 1 s, scheduler 0.2 s, where the
    defaults are 60 s and 1 s), so this share is larger here than in production."""
    before = resources.cpu()
    time.sleep(seconds)  # a measured interval with no load, not a synchronisation
    after = resources.cpu()
    return {name: round((after[name] - before[name]) / seconds * 1000, 2) for name in after}


# -- load -----------------------------------------------------------------------------
def _sender(pipeline: Pipeline, channel: str) -> Callable[[str, bytes], float]:
    if channel == "imap":
        from tests.integration.harness.mail import ImapAppender

        assert pipeline.dovecot is not None
        appender = ImapAppender(
            "127.0.0.1", pipeline.dovecot.port, pipeline.dovecot.user, pipeline.dovecot.password
        )
        return lambda marker, raw: appender.append(marker, raw).at
    return lambda marker, raw: pipeline.ingress.post(marker, raw).at


def saturation(pipeline: Pipeline, corpus: Corpus, channel: str, threads: int) -> dict[str, Any]:
    """Closed loop, at most IN_FLIGHT undelivered; rate over the steady part.

    The senders wait on the receiver's arrivals (no polling): the load generator
    shares the two cores with the pipeline, so what it spends is taken from the
    figure it measures.
    """
    receiver = pipeline.receiver
    sent_markers: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    started = time.time()
    with receiver.lock:
        # Every earlier phase waited for all of its emails, so each delivery
        # counted from here is one of this phase's.
        delivered_before = len(receiver.first_at)
    sent = [0]  # under receiver.lock: emails this phase has started to send

    def room() -> bool:
        return sent[0] - (len(receiver.first_at) - delivered_before) < IN_FLIGHT

    def loop() -> None:
        send = _sender(pipeline, channel)
        while not stop.is_set():
            with receiver.arrivals:
                # Closed loop: wait for a delivery while IN_FLIGHT are undelivered
                # (bounded, so the stop flag is seen).
                if not receiver.arrivals.wait_for(room, timeout=0.5):
                    continue
                sent[0] += 1
            marker, raw = corpus.next()
            with lock:
                sent_markers.add(marker)
            send(marker, raw)

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(WARMUP_S + PHASE_S)  # the measured phase length
    stop.set()
    for worker in workers:
        worker.join(60)
    with lock:
        markers = set(sent_markers)
    receiver.wait_for_markers(markers, 120)
    with receiver.lock:
        times = [receiver.first_at[m] for m in markers]
    steady = [t for t in times if started + WARMUP_S <= t < started + WARMUP_S + PHASE_S]
    return {"emails": len(markers), "per_s": round(len(steady) / PHASE_S, 2)}


def open_loop(pipeline: Pipeline, corpus: Corpus, channel: str, rate: float) -> dict[str, Any]:
    """Constant arrival rate for PHASE_S; latency from hand-over start to the receiver."""
    send = _sender(pipeline, channel)
    pending: list[tuple[str, float]] = []
    interval = 1.0 / rate
    started = time.monotonic()
    count = max(5, int(rate * PHASE_S))
    late = 0
    for index in range(count):
        pause = started + index * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # constant arrival pacing
        else:
            late += 1
        marker, raw = corpus.next()
        pending.append((marker, send(marker, raw)))
    pipeline.receiver.wait_for_markers({m for m, _ in pending}, 120)
    with pipeline.receiver.lock:
        latencies = [pipeline.receiver.first_at[m] - at for m, at in pending]
    return {"rate_per_s": round(rate, 2), "late_sends": late, **_percentiles(latencies)}


def queued_bytes(pipeline: Pipeline, corpus: Corpus, n: int = 150) -> dict[str, Any]:
    """Redis bytes per email queued on ``mail.raw`` (ingest stopped) vs the raw email size.

    ``used_memory`` before and after posting ``n`` emails through the HTTP
    ingress while no ingest consumes them; then ingest starts again and the
    emails are delivered (nothing is left behind for the next phase).
    """
    client = redis_sync.Redis.from_url(pipeline.redis.url)
    ingest = pipeline.services["ingest"]
    keys = Keys(pipeline.key_prefix)
    try:
        ingest.stop(timeout_s=30)
        # The previous phase's entries downstream are trimmed (every second) before
        # the first reading, or their release would be subtracted from the figure.
        wait_until(
            lambda: client.xlen(keys.mail_received) + client.xlen(keys.mail_offloaded) == 0,
            30,
            "mail.received and mail.offloaded trimmed",
        )
        time.sleep(1.0)  # background writers (heartbeats) settle
        before = int(client.info("memory")["used_memory"])
        markers, sizes = [], []
        for _ in range(n):
            marker, raw = corpus.next()
            pipeline.ingress.post(marker, raw)
            markers.append(marker)
            sizes.append(len(raw))
        after = int(client.info("memory")["used_memory"])
        ingest.start()
        ingest.wait_ready(60)
        pipeline.receiver.wait_for_markers(set(markers), 180)
    finally:
        client.close()
    per_email = (after - before) / n
    raw_mean = sum(sizes) / n
    return {
        "emails": n,
        "redis_bytes_per_queued_email": round(per_email),
        "raw_email_mean_bytes": round(raw_mean),
        "ratio_to_raw": round(per_email / raw_mean, 3),
    }


def open_delivery_window(pipeline: Pipeline) -> None:
    """A delivery window around now, so nothing is deferred during a phase."""
    start, end = open_window(pipeline.timezone)
    pipeline.put_config("webhook_config", {"webhook_time_start": start, "webhook_time_end": end})


def two_replicas(say: Callable[[str], None]) -> dict[str, Any]:
    """Saturation with two replicas of each worker, then SIGKILLs under steady load."""
    workdir = Path(tempfile.mkdtemp(prefix="rs-e2e-bench-replicas-"))
    # The same components as the one-replica run (IMAP watched by one ingest replica).
    pipeline = Pipeline(workdir, files_bytes=4096, replicas=2)
    out: dict[str, Any] = {}
    try:
        pipeline.start()
        open_delivery_window(pipeline)
        say("e2e bench: saturation through HTTP ingress, two replicas of each worker")
        out["sat_http"] = saturation(pipeline, Corpus("2e"), "http", threads=4)
        say(f"  {out['sat_http']}")
        rate = 2.0
        pipeline.files.slow("/", 0.5)
        pipeline.receiver.delay_s = 0.5
        say(f"e2e bench: {rate:.1f}/s while an offload and a notify replica are SIGKILLed")
        corpus = Corpus("2f")
        kills = KillLog(pipeline)
        sent: list[tuple[str, float]] = []
        count = int(rate * PHASE_S)
        began = time.monotonic()
        plan = {count // 3: "offload-1", (2 * count) // 3: "notify-1"}
        for index in range(count):
            pause = began + index / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # constant arrival pacing
            if index in plan:
                kills.kill(plan[index], "gone")
            marker, raw = corpus.next()
            sent.append((marker, pipeline.ingress.post(marker, raw).at))
        found = pipeline.receiver.wait_for_markers({m for m, _ in sent}, 120)
        kills.join(60)
        delivered = {m: r.at for m, r in found.items()}
        from tests.integration.harness.mail import Sent

        history = [Sent(m, "http", at, at, 1) for m, at in sent]
        delays = delays_after_kills(history, delivered, kills.kills)
        out["kills"] = {
            "rate_per_s": round(rate, 2),
            "takeover_s": {k.key: round(k.takeover_s or -1.0, 2) for k in kills.kills},
            "held_at_kill": {k.key: k.held for k in kills.kills},
            "worst_delay_after_kill_s": round(delays[0][0], 2) if delays else None,
            **_percentiles([delivered[m] - at for m, at in sent]),
        }
        say(f"  {out['kills']}")
    except Exception as exc:  # the one-replica figures stand without this variant
        out["error"] = repr(exc)
    finally:
        pipeline.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def run(say: Callable[[str], None] = print) -> dict[str, Any]:
    reason = missing_components()
    if reason:
        return {"available": False, "reason": reason}
    workdir = Path(tempfile.mkdtemp(prefix="rs-e2e-bench-"))
    pipeline = Pipeline(workdir, files_bytes=4096)
    pipeline.start()
    results: dict[str, Any] = {"available": True}
    try:
        open_delivery_window(pipeline)
        sample = Corpus("ba5e")
        corpus = [sample.next()[1] for _ in range(50)]

        say("e2e bench: baselines (parse-only, raw XADD, naive floor)")
        results["parse_only_per_s"] = round(parse_only(corpus), 1)
        results.update(raw_xadd(pipeline.redis.url, corpus))
        results["naive_floor_per_s"] = round(naive_floor(pipeline, corpus), 1)
        say(f"  parse-only {results['parse_only_per_s']}/s, naive {results['naive_floor_per_s']}/s")

        resources = Resources(pipeline).start()
        results["idle_cpu_ms_per_s"] = idle_cpu(resources)
        load = Corpus(f"{random.Random().randrange(16**6):x}")
        cpu0, rewrites0 = resources.cpu(), resources.aof_rewrites()
        delivered0 = pipeline.receiver.delivered_count()
        say("e2e bench: saturation through HTTP ingress (closed loop)")
        results["sat_http"] = saturation(pipeline, load, "http", threads=4)
        say(f"  {results['sat_http']}")
        say("e2e bench: saturation through IMAP APPEND (closed loop)")
        results["sat_imap"] = saturation(pipeline, load, "imap", threads=2)
        say(f"  {results['sat_imap']}")
        cpu1 = resources.cpu()
        results["redis_aof_rewrites"] = resources.aof_rewrites() - rewrites0
        delivered = pipeline.receiver.delivered_count() - delivered0
        results["cpu_s_per_1000"] = {
            name: round((cpu1[name] - cpu0[name]) / delivered * 1000, 2) for name in cpu1
        }
        for channel in ("imap", "http"):
            sat = results[f"sat_{channel}"]["per_s"]
            for share in (0.1, 0.5):
                key = f"lat_{channel}_{int(share * 100)}"
                say(
                    f"e2e bench: open loop {channel} at {share:.0%} of saturation"
                    f" ({sat * share:.1f}/s)"
                )
                results[key] = open_loop(pipeline, load, channel, max(0.5, sat * share))
                say(f"  {results[key]}")
        resources.stop()
        results["peak_rss_mb"] = {k: round(v / 2**20, 1) for k, v in resources.peak_rss.items()}
        results["redis_peak_used_memory_mb"] = round(resources.redis_peak_used / 2**20, 1)
        ours = [name for name in results["cpu_s_per_1000"] if not name.startswith("worker")]
        # CPU s per 1000 emails == CPU ms per email; ours + Redis, the Worker excluded.
        results["cpu_ms_per_email_total"] = round(
            sum(results["cpu_s_per_1000"][name] for name in ours), 2
        )
        results["emails_total"] = load.count
    finally:
        pipeline.close()
        shutil.rmtree(workdir, ignore_errors=True)

    # Variant: the same pipeline with R2 offload disabled (no Worker calls), to
    # separate our overhead from the Worker's per-link cost.
    workdir = Path(tempfile.mkdtemp(prefix="rs-e2e-bench-noworker-"))
    pipeline = Pipeline(workdir, imap=False, worker=False)
    try:
        pipeline.start()
        open_delivery_window(pipeline)
        say("e2e bench: saturation through HTTP ingress, R2 offload disabled (closed loop)")
        resources = Resources(pipeline)
        cpu0, delivered0 = resources.cpu(), pipeline.receiver.delivered_count()
        # This process is the load generator and the receiver, on the same two cores.
        own0, host0, began = own_cpu(), _host_busy(), time.monotonic()
        results["sat_http_no_worker"] = saturation(pipeline, Corpus("0ff"), "http", threads=4)
        cpu1, own1, host1 = resources.cpu(), own_cpu(), _host_busy()
        delivered = pipeline.receiver.delivered_count() - delivered0
        results["sat_http_no_worker"]["cpu_ms_per_email"] = {
            name: round((cpu1[name] - cpu0[name]) / delivered * 1000, 2) for name in cpu1
        }
        results["sat_http_no_worker"]["load_and_receiver_cpu_ms_per_email"] = round(
            (own1 - own0) / delivered * 1000, 2
        )
        results["sat_http_no_worker"]["host_busy_cores"] = round(
            (host1 - host0) / (time.monotonic() - began), 2
        )
        say(f"  {results['sat_http_no_worker']}")
        say("e2e bench: Redis bytes per queued email (ingest stopped)")
        results["queued"] = queued_bytes(pipeline, Corpus("90e"))
        say(f"  {results['queued']}")
    except Exception as exc:  # the main figures stand without this variant
        results["sat_http_no_worker_error"] = repr(exc)
    finally:
        pipeline.close()
        shutil.rmtree(workdir, ignore_errors=True)
    # Target 2 against the least the layout itself costs (bench/floor.py), same run.
    from bench import floor

    try:
        results["layout_floor"] = floor.run(results["parse_only_per_s"], say)
    except Exception as exc:  # the main figures stand without it
        results["layout_floor"] = {"available": False, "reason": f"failed: {exc!r}"}
    results["two_replicas"] = two_replicas(say)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
