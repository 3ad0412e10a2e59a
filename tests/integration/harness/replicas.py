"""Killing replicas and measuring what follows: takeover time, delay after a kill.

* :func:`held_by` -- what one instance still holds in Redis: pending entries in
  its service's consumer group, notify leases, the IMAP lock.
* :class:`Kill` / :class:`KillLog` -- a SIGKILL of one replica (left dead, or
  started again under a new name), and a watcher thread that polls
  :func:`held_by` until the dead instance holds nothing: the *takeover time*.
* :func:`delays_after_kills` -- for every email handed over before a kill and
  delivered after it, delivery time minus kill time.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from render_signal.common.consumer import HANDBACK
from render_signal.common.keys import Keys, consumer_name

from .mail import Sent
from .pipeline import WORKERS, Pipeline

__all__ = ["Kill", "KillLog", "delays_after_kills", "held_by", "lock_holder_key"]

STREAM_OF = {"ingest": "mail_raw", "offload": "mail_received", "notify": "mail_offloaded"}


def held_by(pipeline: Pipeline, service: str, instance: str) -> dict[str, int]:
    """Pending entries, leases and the lock held in Redis by ``service``'s ``instance``."""
    keys = Keys(pipeline.key_prefix)
    owner = consumer_name(service, instance)
    client = pipeline.sync_redis()
    try:
        held: dict[str, int] = {}
        stream = getattr(keys, STREAM_OF[service])
        if client.exists(stream):
            groups = {g["name"].decode() for g in client.xinfo_groups(stream)}
            if service in groups:
                # What it handed back while draining counts until another replica has it.
                names = (owner, f"{owner}{HANDBACK}")
                for row in client.xinfo_consumers(stream, service):
                    if row["name"].decode() in names and row["pending"]:
                        held["pending"] = held.get("pending", 0) + int(row["pending"])
        if service == "notify":
            holders = client.hvals(keys.notify_leases)
            leases = sum(1 for h in holders if h.decode() == owner)
            if leases:
                held["leases"] = leases
        if service == "ingest":
            token = client.get(keys.poller_lock)
            if token is not None and token.decode().startswith(f"{owner}:"):
                held["lock"] = 1
        return held
    finally:
        client.close()


def lock_holder_key(pipeline: Pipeline) -> str | None:
    """The process key of the ingest replica holding the IMAP lock, if any."""
    client = pipeline.sync_redis()
    try:
        token = client.get(Keys(pipeline.key_prefix).poller_lock)
    finally:
        client.close()
    if token is None:
        return None
    owner = token.decode().rsplit(":", 1)[0]
    for process in pipeline.replicas_of("ingest"):
        if consumer_name("ingest", pipeline.instance(process.name)) == owner:
            return process.name
    return None


@dataclass
class Kill:
    """One SIGKILL of a replica and what its watcher measured."""

    key: str  # process key, e.g. "offload-1"
    service: str
    instance: str  # the instance name it died under
    mode: Literal["gone", "renamed"]  # left dead, or started again under a new name
    at: float  # wall clock of the kill
    held: dict[str, int] = field(default_factory=dict)  # first sample after the kill
    takeover_s: float | None = None  # until it held nothing (None: still holding)

    def describe(self) -> str:
        what = ", ".join(f"{k}={v}" for k, v in self.held.items()) or "nothing"
        took = "never" if self.takeover_s is None else f"{self.takeover_s:.1f}s"
        return f"{self.key} ({self.instance}, {self.mode}) held {what}; taken over in {took}"


class KillLog:
    """Kills replicas of a pipeline and watches each dead instance's work go."""

    def __init__(self, pipeline: Pipeline, watch_s: float = 60.0) -> None:
        self.pipeline = pipeline
        self.watch_s = watch_s
        self.kills: list[Kill] = []
        self._watchers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def alive(self, service: str) -> list[str]:
        return [p.name for p in self.pipeline.replicas_of(service) if p.alive()]

    def kill(self, key: str, mode: Literal["gone", "renamed"]) -> Kill:
        """SIGKILL ``key``; ``renamed`` starts it again at once under a new instance name."""
        process = self.pipeline.services[key]
        instance = self.pipeline.instance(key)
        process.kill()
        kill = Kill(key, process.service, instance, mode, time.time())
        if mode == "renamed":
            self.pipeline.rename(key)
            process.start()
        with self._lock:
            self.kills.append(kill)
        watcher = threading.Thread(target=self._watch, args=(kill,), daemon=True)
        self._watchers.append(watcher)
        watcher.start()
        return kill

    def kill_random(self, rng: random.Random, service: str, mode: str) -> Kill:
        """A random live replica of ``service``; never the last one left for good."""
        alive = self.alive(service)
        key = rng.choice(alive)
        if mode == "gone-holder":
            # Right after another ingest kill the lock may still name the dead
            # holder: wait (bounded) until a live replica has taken it.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                holder = lock_holder_key(self.pipeline)
                if holder in alive:
                    key = holder
                    break
                time.sleep(0.1)  # polling the lock holder
        gone = mode.startswith("gone") and len(alive) > 1
        return self.kill(key, "gone" if gone else "renamed")

    def _watch(self, kill: Kill) -> None:
        deadline = time.monotonic() + self.watch_s
        first = True
        while time.monotonic() < deadline:
            held = held_by(self.pipeline, kill.service, kill.instance)
            if first:
                kill.held, first = held, False
            if not held:
                kill.takeover_s = time.time() - kill.at
                return
            time.sleep(0.1)  # sampling period of the measurement

    def join(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        for watcher in self._watchers:
            watcher.join(max(0.1, deadline - time.monotonic()))

    @property
    def worst_takeover_s(self) -> float:
        """Slowest takeover among kills that left work behind (inf when one never ended)."""
        times = [k.takeover_s for k in self.kills if k.held]
        if any(t is None for t in times):
            return float("inf")
        return max((t for t in times if t is not None), default=0.0)


def delays_after_kills(
    sent: list[Sent], delivered_at: dict[str, float], kills: list[Kill]
) -> list[tuple[float, str, str]]:
    """(delay, marker, kill key) for every email handed over before a kill and
    delivered after it: delivery time minus kill time."""
    out: list[tuple[float, str, str]] = []
    for email in sent:
        done = delivered_at.get(email.marker)
        if done is None:
            continue
        for kill in kills:
            if email.at < kill.at < done:
                out.append((done - kill.at, email.marker, kill.key))
    return sorted(out, reverse=True)


def worker_kill_plan(rng: random.Random) -> list[tuple[str, str]]:
    """Each worker once left dead (ingest: the IMAP lock holder) and twice restarted
    under a new name, shuffled."""
    plan = [("ingest", "gone-holder"), ("offload", "gone"), ("notify", "gone")]
    plan += [(service, "renamed") for service in WORKERS for _ in range(2)]
    rng.shuffle(plan)
    return plan
