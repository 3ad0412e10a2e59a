"""HTTP ingress (acceptance item 4): auth, durability before 2xx, 503 while Redis is down, 413.

The Gmail route answers 200 (the deployed Apps Script treats anything else as failure),
the raw route 202.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_testkit import API_TOKEN, Gateway, csrf_of, login
from render_signal.common.events import MailRaw, decode_entry

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
RAW_EMAIL = (
    b"From: Agence <agence@client.fr>\r\nTo: team@ours.fr\r\nSubject: Lot 12\r\n"
    b"Message-ID: <abc@client.fr>\r\n\r\nhttps://www.dropbox.com/s/abc/file.zip?dl=0\r\n"
)


async def _entries(redis: Any, key: str) -> list[tuple[str, MailRaw]]:
    rows = await redis.xrange(key)
    return [(i.decode(), decode_entry(f, MailRaw)) for i, f in rows]


async def test_gmail_ingress_requires_the_token(
    gateway: Gateway, redis: Any, key_prefix: str
) -> None:
    async with gateway.client() as client:
        payload = {"sender": "a@b.fr", "body": "x"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "wrong"}):
            response = await client.post("/api/ingress/gmail", json=payload, headers=headers)
            assert response.status_code == 401
            assert response.json() == {"success": False, "message": "Unauthorized"}
        raw = await client.post("/api/ingress/raw", content=RAW_EMAIL)
        assert raw.status_code == 401
        # The raw token without "Bearer " is accepted, as the original did.
        ok = await client.post(
            "/api/ingress/gmail", json=payload, headers={"Authorization": API_TOKEN}
        )
        assert ok.status_code == 200
    assert len(await _entries(redis, f"{key_prefix}mail.raw")) == 1


async def test_accepted_means_on_the_stream(gateway: Gateway, redis: Any, key_prefix: str) -> None:
    async with gateway.client() as client:
        gmail = await client.post(
            "/api/ingress/gmail",
            json={
                "subject": "Lot 12",
                "sender": "Agence <agence@client.fr>",
                "body": "<p>hi</p>",
                "date": "2026-03-30T07:00:00Z",
                "snippet": "ignored",
            },
            headers=AUTH,
        )
        raw = await client.post(
            "/api/ingress/raw",
            content=RAW_EMAIL,
            headers={**AUTH, "Content-Type": "message/rfc822"},
        )
    assert gmail.status_code == 200 and raw.status_code == 202
    entries = await _entries(redis, f"{key_prefix}mail.raw")
    assert [e[0] for e in entries] == [gmail.json()["stream_id"], raw.json()["stream_id"]]
    first, second = entries[0][1], entries[1][1]
    assert gmail.json()["status"] == "accepted" and gmail.json()["event_id"] == first.event_id
    assert first.source == "gmail_push"
    assert first.gmail == {
        "subject": "Lot 12",
        "sender": "Agence <agence@client.fr>",
        "body": "<p>hi</p>",
        "date": "2026-03-30T07:00:00Z",
    }
    assert second.source == "http_raw" and second.raw == RAW_EMAIL


async def test_gmail_payload_validation(gateway: Gateway, redis: Any, key_prefix: str) -> None:
    async with gateway.client(headers=AUTH) as client:
        cases = [
            (b"not json", "Invalid JSON payload"),
            (b"[1, 2]", "Invalid JSON payload"),
            (b'{"body": "x"}', "Missing field: sender"),
            (b'{"sender": "a@b.fr", "body": "  "}', "Missing field: body"),
            (b'{"sender": 12, "body": "x"}', "Missing field: sender"),
        ]
        for body, message in cases:
            response = await client.post(
                "/api/ingress/gmail", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400
            assert response.json() == {"success": False, "message": message}
        ok = await client.post(
            "/api/ingress/gmail", json={"sender": "a@b.fr", "body": "x", "subject": 5}
        )
        assert ok.status_code == 200
    entries = await _entries(redis, f"{key_prefix}mail.raw")
    assert len(entries) == 1 and entries[0][1].gmail is not None
    assert entries[0][1].gmail["subject"] == ""  # non-string field -> ""


async def test_gmail_ingress_disabled_flag(gateway: Gateway, redis: Any, key_prefix: str) -> None:
    async with gateway.client() as admin:
        await login(admin)
        admin.headers["X-CSRF-Token"] = await csrf_of(admin)
        await admin.post("/api/runtime_flags", json={"gmail_ingress_enabled": False})
        response = await admin.post(
            "/api/ingress/gmail", json={"sender": "a@b.fr", "body": "x"}, headers=AUTH
        )
        assert response.status_code == 409
        assert response.json()["message"] == "Gmail ingress disabled"
    assert await redis.xlen(f"{key_prefix}mail.raw") == 0


async def test_413_above_the_limit(
    make_settings: Any, gateway_factory: Any, redis: Any, key_prefix: str
) -> None:
    gw: Gateway = await gateway_factory(make_settings(MAX_EMAIL_BYTES="2048"))
    big = b"x" * 3000

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while streamed
        for _ in range(3):
            yield b"y" * 1000

    async with gw.client(headers=AUTH) as client:
        declared = await client.post("/api/ingress/raw", content=big)
        assert declared.status_code == 413
        streamed = await client.post("/api/ingress/raw", content=chunks())
        assert streamed.status_code == 413
        gmail = await client.post(
            "/api/ingress/gmail", json={"sender": "a@b.fr", "body": "z" * 3000}
        )
        assert gmail.status_code == 413
        fits = await client.post("/api/ingress/raw", content=b"x" * 2000)
        assert fits.status_code == 202
    assert await redis.xlen(f"{key_prefix}mail.raw") == 1


@pytest.mark.timeout(60)
async def test_503_while_redis_is_down_then_2xx(
    own_redis: Any, make_settings: Any, gateway_factory: Any, key_prefix: str
) -> None:
    gw: Gateway = await gateway_factory(make_settings(redis=own_redis.url))
    payload = {"sender": "a@b.fr", "body": "during outage"}
    async with gw.client(headers=AUTH) as client:
        assert (await client.post("/api/ingress/gmail", json=payload)).status_code == 200
        own_redis.stop()
        down = await client.post("/api/ingress/gmail", json=payload)
        assert down.status_code == 503
        assert down.json() == {"success": False, "message": "Service unavailable"}
        assert (await client.post("/api/ingress/raw", content=RAW_EMAIL)).status_code == 503
        assert (await client.get("/ready")).status_code == 503
        own_redis.start()
        again = await client.post("/api/ingress/gmail", json={**payload, "body": "after"})
        assert again.status_code == 200
        assert (await client.get("/ready")).status_code == 200
    redis = gw.ctx.redis
    entries = await _entries(redis, f"{key_prefix}mail.raw")
    # AOF kept the first; the refused ones are absent; the retried one is there.
    bodies = [e[1].gmail["body"] for e in entries if e[1].gmail]
    assert bodies == ["during outage", "after"]
