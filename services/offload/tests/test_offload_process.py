"""The real process: SIGKILL mid-flight then restart (acceptance 5), disabled-mode start.

Runs ``python -m render_signal.offload.main`` as a subprocess against the
session Redis and the loopback Worker stand-in.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from offload_harness import mail, offload_env, read_offloaded, send, wait_offloaded
from redis.asyncio import Redis
from render_signal.common.keys import GROUP_OFFLOAD
from render_signal.common.streams import ensure_group
from render_signal.devstack.polling import eventually
from standin import WorkerStandIn


def start_service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("R2_", "REDIS_"))}
    full.update(env)
    full["RENDER_SIGNAL_ENV_FILE"] = str(log.parent / "no.env")
    full["LOG_FORMAT"] = "json"
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "render_signal.offload.main"],
            cwd=log.parent,  # never the checkout: a relative links file would land there
            env=full,
            stdout=sink,
            stderr=sink,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


async def test_sigkill_mid_flight_then_restart_loses_nothing(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    emails = [f"k{i:02d}" for i in range(12)]
    hanging = set(emails[6:])
    log = tmp_path / "offload.log"
    with WorkerStandIn("hang", hang_max_s=60) as worker:
        worker.hang_only = hanging
        env = offload_env(
            redis_url,
            key_prefix,
            worker.url,
            RENDER_SIGNAL_INSTANCE="offload-kill-0",
            R2_FETCH_TIMEOUT_SECONDS="30",
            R2_FETCH_RETRIES="0",
            R2_FETCH_CONCURRENCY="16",
            WEBHOOK_LINKS_FILE=str(tmp_path / "webhook_links.json"),
        )
        # All twelve are on the stream before the service starts: the kill below
        # comes once every hanging copy is in flight, whatever the reads were.
        await ensure_group(redis, f"{key_prefix}mail.received", GROUP_OFFLOAD)
        for email_id in emails:
            links = [("fromsmash", f"https://fromsmash.com/{email_id}-{n}") for n in range(2)]
            await send(redis, key_prefix, mail(email_id, *links))
        proc = start_service(env, log)
        try:

            async def in_flight() -> bool:
                return worker.in_flight >= 2 * len(hanging)

            await eventually(in_flight, 20, "Worker calls in flight")
            await wait_offloaded(redis, key_prefix, len(emails) - len(hanging))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            before_restart = await read_offloaded(redis, key_prefix)
            assert {o.email_id for _, o in before_restart} == set(emails[:6])

            worker.mode = "ok"
            worker.release()
            proc = start_service(env, log)
            rows = await wait_offloaded(redis, key_prefix, len(emails), timeout_s=30)

            async def all_acked() -> bool:
                pending = await redis.xpending(f"{key_prefix}mail.received", "offload")
                return int(pending["pending"]) == 0

            await eventually(all_acked, 20, "acks after restart")
            rows = await read_offloaded(redis, key_prefix)
            assert stop(proc) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    counts = collections.Counter(o.email_id for _, o in rows)
    duplicates = sum(c - 1 for c in counts.values())
    print(f"sigkill: {len(emails)} emails, {len(rows)} mail.offloaded entries, {duplicates} dups")
    assert set(counts) == set(emails)  # none lost
    assert duplicates == 0  # the atomic publish+marker held across the kill
    for _, out in rows:
        assert all(link.r2_url for link in out.links), out.email_id
    for email_id in emails:
        assert await redis.exists(f"{key_prefix}offload:done:ev-{email_id}")
    # The links file (written in coalesced batches) holds every offloaded link once.
    items = json.loads((tmp_path / "webhook_links.json").read_text(encoding="utf-8"))
    expected = {link.direct_url: link.r2_url for _, out in rows for link in out.links}
    assert len(items) == len(expected) == 2 * len(emails)
    assert {i["source_url"]: i["r2_url"] for i in items} == expected
    assert not await redis.exists(f"{key_prefix}offload:links:unfiled")


async def test_a_hanging_copy_does_not_hold_back_later_emails(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """One email's Worker copy hangs (a large file); emails that arrive after it
    still go through at once, and the slow one follows when its copy ends.
    (Reads used to wait for the whole batch: every later email waited too.)"""
    log = tmp_path / "offload.log"
    with WorkerStandIn("hang", hang_max_s=60) as worker:
        worker.hang_only = {"big"}
        env = offload_env(
            redis_url,
            key_prefix,
            worker.url,
            RENDER_SIGNAL_INSTANCE="offload-slow-0",
            R2_FETCH_TIMEOUT_SECONDS="60",
            R2_FETCH_RETRIES="0",
            WEBHOOK_LINKS_FILE=str(tmp_path / "webhook_links.json"),
        )
        proc = start_service(env, log)
        try:
            await send(redis, key_prefix, mail("big", ("fromsmash", "https://fromsmash.com/big")))

            async def copying() -> bool:
                return worker.in_flight == 1

            await eventually(copying, 20, "the big copy in flight")
            later = [f"s{i:02d}" for i in range(20)]  # more than a read's 16
            for email_id in later:
                await send(
                    redis,
                    key_prefix,
                    mail(email_id, ("fromsmash", f"https://fromsmash.com/{email_id}")),
                )
            rows = await wait_offloaded(redis, key_prefix, len(later))
            assert {o.email_id for _, o in rows} == set(later), "only the later emails so far"
            assert worker.in_flight == 1, "the big copy was still running"
            worker.release()
            rows = await wait_offloaded(redis, key_prefix, len(later) + 1)

            async def all_acked() -> bool:
                pending = await redis.xpending(f"{key_prefix}mail.received", "offload")
                return int(pending["pending"]) == 0

            await eventually(all_acked, 20, "every entry acked")
            assert stop(proc) == 0
        finally:
            worker.release()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    counts = collections.Counter(o.email_id for _, o in rows)
    assert counts == collections.Counter(["big", *later]), "each email offloaded once"
    [big] = [o for _, o in rows if o.email_id == "big"]
    assert big.links[0].r2_url, "the slow copy's R2 URL is kept"


async def test_disabled_process_says_so_once_and_in_heartbeat(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    log = tmp_path / "offload.log"
    env = offload_env(redis_url, key_prefix, "", RENDER_SIGNAL_INSTANCE="offload-off-0")
    proc = start_service(env, log)
    try:
        key = f"{key_prefix}heartbeat:offload:offload-off-0"

        async def beating() -> bool:
            return bool(await redis.exists(key))

        await eventually(beating, 20, "heartbeat")
        record = json.loads(await redis.get(key))
        assert record["details"]["offload"] == "disabled"
        await send(redis, key_prefix, mail("d1", ("dropbox", "https://www.dropbox.com/s/a/b.zip")))
        [(_, out)] = await wait_offloaded(redis, key_prefix, 1)
        assert out.offload_enabled is False
        assert out.links[0].direct_url == "https://www.dropbox.com/s/a/b.zip?dl=1"
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    disabled = [line for line in lines if "R2 offload disabled" in line["msg"]]
    assert len(disabled) == 1
    assert any("offload=disabled" in line["msg"] for line in lines)  # heartbeat log line
