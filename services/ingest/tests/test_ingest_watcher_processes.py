"""Real ingest processes: lock takeover after SIGKILL; crash between XADD and checkpoint;
the original's ENABLE_BACKGROUND_TASKS switch and its legacy variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from ingest_testkit import make_email, message_id_of, mid, observe_mail_raw, raw_events
from redis.asyncio import Redis
from render_signal.common.events import MailRaw
from render_signal.common.keys import Keys
from render_signal.common.streams import publish
from render_signal.devstack.dovecot import DovecotServer
from render_signal.devstack.polling import eventually
from render_signal.ingest.checkpoint import CheckpointStore

LOCK_TTL_S = 3.0


@pytest.fixture(autouse=True)
async def _observed(redis: Redis, key_prefix: str) -> None:
    # These processes run the parser, whose consumer trims what it acknowledged.
    await observe_mail_raw(redis, key_prefix)


class IngestProcess:
    """``python -m render_signal.ingest.main`` with its log in a file."""

    def __init__(self, tmp: Path, name: str, env: dict[str, str], run: str = "") -> None:
        self.name = name
        self.log = tmp / f"{name}{run}.log"
        full = {**os.environ, **env, "RENDER_SIGNAL_INSTANCE": name}
        full["RENDER_SIGNAL_ENV_FILE"] = str(tmp / "no.env")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "render_signal.ingest.main"],
                env=full,
                cwd=tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def logged(self, needle: str) -> bool:
        return needle in self.text()

    def terminate(self, timeout_s: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


async def test_two_processes_one_watches_and_the_other_takes_over_after_sigkill(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, ingest_env, tmp_path: Path
) -> None:
    env = {
        **ingest_env,
        "POLLER_LOCK_TTL_SECONDS": str(LOCK_TTL_S),
        "EMAIL_POLLING_INTERVAL_SECONDS": "60",
    }
    procs = {n: IngestProcess(tmp_path, n, env) for n in ("w1", "w2")}
    try:
        lock_key = f"{key_prefix}poller_lock"

        async def holder() -> str:
            value = await redis.get(lock_key)
            # The token starts with the owner: ``ingest-<instance>``.
            return value.decode().split(":", 1)[0].removeprefix("ingest-") if value else ""

        first = await eventually(holder, 20, "a lock holder")
        other = "w2" if first == "w1" else "w1"
        await eventually(lambda: procs[first].logged("IMAP: connected"), 20, "holder connected")
        await eventually(lambda: procs[other].logged("singleton lock held by"), 20, "other waiting")
        assert "singleton lock acquired" in procs[first].text()

        e1 = make_email("seen by the first holder")
        dovecot.append(e1)
        await eventually(lambda: _have(redis, key_prefix, [e1]), 15, "e1 published")
        # Its checkpoint too (logged after it): a kill between the XADD and the
        # checkpoint would make the next holder publish e1 again, by design.
        await eventually(lambda: procs[first].logged("IMAP: published"), 15, "e1 checkpointed")

        procs[first].kill()  # SIGKILL: no release, the lock must expire
        killed_at = time.monotonic()
        after = [make_email(f"while the holder is dead {i}") for i in range(2)]
        for message in after:
            dovecot.append(message)
        await eventually(lambda: procs[other].logged("singleton lock acquired"), 15, "takeover")
        takeover_s = time.monotonic() - killed_at
        retry_s = max(0.2, min(LOCK_TTL_S / 10, 10.0))
        print(f"\nlock takeover {takeover_s:.2f}s after SIGKILL (TTL {LOCK_TTL_S}s)")
        assert takeover_s <= LOCK_TTL_S + retry_s + 1.0
        assert "IMAP: connected" not in procs[other].text().split("singleton lock acquired")[0]

        everything = [e1, *after]
        await eventually(lambda: _have(redis, key_prefix, everything), 15, "all emails")
        events = await raw_events(redis, key_prefix)
        assert sorted(Counter(e.event_id for e in events).values()) == [1, 1, 1]
        assert Counter(message_id_of(e) for e in events) == Counter(mid(m) for m in everything)

        assert procs[other].terminate() == 0
        assert "singleton lock released" in procs[other].text()
        assert await redis.get(lock_key) is None
    finally:
        for proc in procs.values():
            proc.kill()


async def test_sigkill_between_xadd_and_checkpoint_loses_nothing(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, ingest_env, tmp_path: Path
) -> None:
    env = {**ingest_env, "POLLER_LOCK_TTL_SECONDS": str(LOCK_TTL_S)}
    crashing = IngestProcess(
        tmp_path, "crash", {**env, "RENDER_SIGNAL_FAULT": "ingest.after_publish"}
    )
    survivor: IngestProcess | None = None
    try:
        await eventually(lambda: crashing.logged("IMAP: connected"), 20, "watcher connected")
        message = make_email("crash right after XADD")
        uid = dovecot.append(message)
        assert crashing.proc.wait(timeout=20) == -signal.SIGKILL
        assert "FAULT: ingest.after_publish reached" in crashing.text()

        (published,) = await raw_events(redis, key_prefix)
        assert published.uid == uid
        checkpoints = CheckpointStore(redis, Keys(key_prefix))
        before = await checkpoints.load("INBOX")
        assert before is None or before.last_uid < uid  # the crash beat the checkpoint
        assert b"\\Seen" not in dovecot.flags(uid)

        survivor = IngestProcess(tmp_path, "restart", env)

        async def settled() -> bool:
            box = await checkpoints.load("INBOX")
            return box is not None and box.last_uid >= uid

        await eventually(settled, 20, "checkpoint past the UID after restart")
        await eventually(lambda: b"\\Seen" in dovecot.flags(uid), 10, "\\Seen after restart")
        events = await raw_events(redis, key_prefix)
        # Nothing lost; the re-publication carries the same event_id for downstream dedup.
        assert [e.event_id for e in events] == [published.event_id] * 2
        assert {message_id_of(e) for e in events} == {mid(message)}
        assert survivor.terminate() == 0
    finally:
        crashing.kill()
        if survivor is not None:
            survivor.kill()


async def test_restarted_replica_takes_back_its_own_lock_without_waiting_the_ttl(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, ingest_env, tmp_path: Path
) -> None:
    """Same instance name after a SIGKILL: IMAP resumes at once, not after 300 s."""
    env = {**ingest_env, "POLLER_LOCK_TTL_SECONDS": "300"}
    first = IngestProcess(tmp_path, "ingest-0", env)
    second: IngestProcess | None = None
    try:
        await eventually(lambda: first.logged("IMAP: connected"), 20, "watcher connected")
        first.kill()
        lock_key = f"{key_prefix}poller_lock"
        ttl_ms = await redis.pttl(lock_key)
        assert ttl_ms > 250_000, "the dead process's lock is still there for minutes"
        killed_at = time.monotonic()
        second = IngestProcess(tmp_path, "ingest-0", env, run="-restart")
        message = make_email("after a restart of the same replica")
        dovecot.append(message)
        await eventually(lambda: _have(redis, key_prefix, [message]), 30, "publish after restart")
        elapsed = time.monotonic() - killed_at
        assert elapsed < ttl_ms / 1000, "IMAP resumed only after the old lease expired"
        assert "took over" in second.text()
        print(f"restarted replica published {elapsed:.1f}s after the kill (lease {ttl_ms} ms)")
        assert second.terminate() == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()


async def _have(redis: Redis, key_prefix: str, messages: list[bytes]) -> bool:
    seen = {message_id_of(e) for e in await raw_events(redis, key_prefix)}
    return all(mid(m) in seen for m in messages)


async def test_enable_background_tasks_false_keeps_imap_off_and_legacy_variables_warn(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, ingest_env, tmp_path: Path
) -> None:
    """Issue 14, acceptance 4: the original's switch with IMAP_SERVER set: no IMAP session;
    each variable only the original read is named once, with what replaces it."""
    dovecot.deliver(make_email("waiting in the inbox"))  # into the Maildir, no IMAP login
    legacy = {
        "GUNICORN_WORKERS": "2",
        "BG_POLLER_LOCK_FILE": "/tmp/render_signal_server_email_poller.lock",
        "RESTART_CMD": "sudo systemctl restart render-signal-server",
        "EXTERNAL_CONFIG_BASE_URL": "https://webhook.kidpixel.fr/config",
        "MAKE_API_AUTH_TYPE": "Bearer",
    }
    env = {**ingest_env, "ENABLE_BACKGROUND_TASKS": "false", **legacy}
    proc = IngestProcess(tmp_path, "gated", env)
    try:
        await eventually(lambda: proc.logged("PROCESS: ingest started"), 20, "ingest started")
        # The parser runs (an HTTP-ingress email goes through) while IMAP stays off.
        event = MailRaw(
            event_id="gated-1",
            source="http_raw",
            received_at=time.time(),
            raw=make_email("through the parser"),
        )
        await publish(redis, Keys(key_prefix).mail_raw, event)
        await eventually(
            lambda: redis.xlen(Keys(key_prefix).mail_received), 20, "the parser to publish"
        )
        assert proc.terminate() == 0
    finally:
        proc.kill()
    text = proc.text()
    assert "BG_POLLER: IMAP watcher not started (ENABLE_BACKGROUND_TASKS=false)" in text
    assert "IMAP: connected" not in text
    assert await redis.get(f"{key_prefix}poller_lock") is None
    assert "Login: user=<" not in dovecot.log_tail(200)  # Dovecot saw no session
    assert [e.source for e in await raw_events(redis, key_prefix)] == ["http_raw"]
    warned = [line for line in text.splitlines() if "LEGACY:" in line]
    assert len(warned) == len(legacy)
    for name in legacy:
        [line] = [w for w in warned if f"LEGACY: {name} is set" in w]
        assert "instead:" in line
