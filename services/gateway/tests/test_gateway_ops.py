"""Ops APIs: webhook log filtering, dead letters list/replay, status."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import httpx
import msgspec
from render_signal.common.deadletters import add_webhook_dead_letter
from render_signal.common.events import MailRaw, encode_entry
from render_signal.common.keys import Keys
from render_signal.common.records import DeadLetter, WebhookAttempt
from render_signal.common.webhooklog import append_attempt


def _iso(seconds_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).isoformat()


async def test_webhook_logs_days_and_limit(
    authed: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    def attempt(stamp: str, email_id: str, status: str) -> WebhookAttempt:
        return WebhookAttempt(
            timestamp=stamp,
            email_id=email_id,
            webhook_id=f"msg_{email_id}",
            target="https://hooks.receiver.fr/***",
            target_class="custom",
            status=status,  # type: ignore[arg-type]
        )

    entries = [attempt(_iso(10 * 86400), "old", "success")]
    entries += [attempt(_iso(60 + i), f"e{i}", "error" if i < 3 else "success") for i in range(60)]
    entries.append(attempt("not a date", "weird", "success"))
    for entry in entries:  # LPUSH: the last appended is the newest
        await append_attempt(redis, Keys(key_prefix), entry)
    body = (await authed.get("/api/webhook_logs", params={"days": 0})).json()
    assert body["days_filter"] == 7 and body["count"] == 50
    assert body["logs"][0]["email_id"] == "weird"  # unparseable kept, newest first
    assert (await authed.get("/api/webhook_logs", params={"days": 99})).json()["days_filter"] == 30
    status = (await authed.get("/api/status")).json()
    assert status["errors_1h"] == 3 and status["errors_24h"] == 3
    assert status["last_webhook_at"] == "not a date"


async def test_dead_letters_list_and_replay(
    authed: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    event = MailRaw(
        event_id="ev-1", source="http_raw", received_at=time.time(), raw=b"Subject: x\r\n\r\n"
    )
    fields = encode_entry(event)
    stream_dlq = await redis.xadd(
        f"{key_prefix}mail.raw.dlq",
        {
            **fields,
            "error": "malformed: boom",
            "source_stream": f"{key_prefix}mail.raw",
            "source_id": "1-0",
            "group": "ingest",
            "deliveries": 5,
            "failed_at": time.time(),
        },
    )
    notify_dlq = await add_webhook_dead_letter(
        redis,
        Keys(key_prefix),
        DeadLetter(
            webhook_id="msg_abc",
            email_id="e-9",
            target="https://hook.eu2.make.com/secretpath",
            target_class="make",
            status_code=500,
            response_snippet="oops",
            failure_reason="retries_exhausted",
            attempts=6,
            subject="Lot 9",
            failed_at=time.time(),
            payload="{}",
            job=msgspec.Raw(json.dumps({"webhook_id": "msg_abc"}).encode()),
        ),
    )
    await redis.hset(
        f"{key_prefix}notify:disabled_targets", "https://hook.eu2.make.com/secretpath", "{}"
    )
    listed = (await authed.get("/api/dead_letters")).json()
    assert "secretpath" not in json.dumps(listed)
    ids = {item["id"]: item for item in listed["dead_letters"]}
    stream_id, notify_id = f"mail.raw:{stream_dlq.decode()}", f"notify:{notify_dlq}"
    assert ids[stream_id]["error"] == "malformed: boom"
    webhook = ids[notify_id]
    assert (webhook["email_id"], webhook["reason"]) == ("e-9", "retries_exhausted")
    assert (webhook["status_code"], webhook["response_snippet"]) == (500, "oops")
    assert (await authed.post("/api/dead_letters/mail.raw:999-0/replay")).status_code == 404
    assert (await authed.post("/api/dead_letters/bogus:1-0/replay")).status_code == 400
    assert (await authed.post(f"/api/dead_letters/{stream_id}/replay")).json()["replayed"] == 1
    back = await redis.xrange(f"{key_prefix}mail.raw")
    assert len(back) == 1 and back[0][1][b"data"] == fields["data"]
    assert await redis.xlen(f"{key_prefix}mail.raw.dlq") == 0
    assert (await authed.post("/api/dead_letters/replay_all")).json()["replayed"] == 1
    assert await redis.hget(f"{key_prefix}notify:jobs", "msg_abc") is not None
    assert await redis.zscore(f"{key_prefix}notify:scheduled", "msg_abc") is not None
    assert not await redis.hexists(
        f"{key_prefix}notify:disabled_targets", "https://hook.eu2.make.com/secretpath"
    )
    assert (await authed.get("/api/dead_letters")).json()["count"] == 0


async def test_status_reports_services_streams_and_groups(
    authed: httpx.AsyncClient, redis: Any, key_prefix: str
) -> None:
    stream = f"{key_prefix}mail.raw"
    await redis.xgroup_create(stream, "ingest", id="0", mkstream=True)
    for _ in range(3):
        await redis.xadd(stream, {"type": "x", "data": "{}"})
    await redis.xreadgroup("ingest", "c1", {stream: ">"}, count=1)
    status = (await authed.get("/api/status")).json()
    assert any(s["service"] == "gateway" for s in status["services"])
    raw = status["streams"]["mail.raw"]
    assert raw["length"] == 3
    assert raw["groups"] == [{"name": "ingest", "pending": 1, "lag": 2, "consumers": 1}]
    assert status["last_email_at"] is not None
    assert set(status["dlq"]) == {"mail.raw", "mail.received", "mail.offloaded", "notify"}
    assert (await authed.get("/ready")).json() == {"status": "ready"}
