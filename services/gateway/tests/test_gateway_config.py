"""Config APIs: validation, the single time window, export/import, legacy import (item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from gateway_testkit import Gateway, csrf_of, login

WEBHOOK = "https://hook.eu2.make.com/abc123sentinel"


async def test_placeholder_and_non_https_urls_are_400(authed: httpx.AsyncClient) -> None:
    for url in (
        "https://example.com/hook",
        "https://api.example.com/hook",
        "https://test.com/x",
        "https://example.org/x",
        "http://receiver.fr/hook",
        "not a url",
    ):
        response = await authed.post("/api/webhooks/config", json={"webhook_url": url})
        assert response.status_code == 400, url
        assert response.json()["success"] is False
    ok = await authed.post("/api/webhooks/config", json={"webhook_url": WEBHOOK})
    assert ok.status_code == 200
    assert ok.json()["config"]["webhook_url"] == "https://hook.eu2.make.com/***"
    got = (await authed.get("/api/webhooks/config")).json()["config"]
    assert got["webhook_url"] == "https://hook.eu2.make.com/***"


async def test_loopback_refused_outside_dev_mode(make_settings: Any, gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(make_settings(RENDER_SIGNAL_ENV="production"))
    async with gw.client() as client:
        await login(client)
        client.headers["X-CSRF-Token"] = await csrf_of(client)
        for url in ("https://127.0.0.1/hook", "https://localhost/x"):
            response = await client.post("/api/webhooks/config", json={"webhook_url": url})
            assert response.status_code == 400


async def test_bad_times_are_400(authed: httpx.AsyncClient) -> None:
    for body in (
        {"start": "24:00", "end": "10:00"},
        {"start": "9h0", "end": "10:00"},
        {"start": "09:00"},
        {"start": "", "end": "10:00"},
        {"start": "9:60", "end": "10:00"},
        {"start": 9, "end": 10},
    ):
        response = await authed.post("/api/webhooks/time-window", json=body)
        assert response.status_code == 400, body
        legacy = await authed.post("/api/set_webhook_time_window", json=body)
        assert legacy.status_code == 400, body


async def test_one_window_shared_by_both_route_pairs(authed: httpx.AsyncClient) -> None:
    response = await authed.post(
        "/api/webhooks/time-window", json={"start": "9h00", "end": "17h30"}
    )
    assert response.status_code == 200
    legacy = (await authed.get("/api/get_webhook_time_window")).json()
    assert (legacy["webhooks_time_start"], legacy["webhooks_time_end"]) == ("09:00", "17:30")
    assert legacy["timezone"] == "Europe/Paris"
    await authed.post("/api/set_webhook_time_window", json={"start": "08:00", "end": "18:00"})
    modern = (await authed.get("/api/webhooks/time-window")).json()
    assert (modern["webhooks_time_start"], modern["webhooks_time_end"]) == ("08:00", "18:00")
    config = (await authed.get("/api/webhooks/config")).json()["config"]
    assert (config["webhook_time_start"], config["webhook_time_end"]) == ("08:00", "18:00")
    cleared = await authed.post("/api/set_webhook_time_window", json={"start": "", "end": ""})
    assert cleared.json()["webhooks_time_start"] is None
    assert (await authed.get("/api/webhooks/time-window")).json()["webhooks_time_end"] is None


async def test_absence_validation(authed: httpx.AsyncClient) -> None:
    bad = await authed.post(
        "/api/absence", json={"absence_pause_enabled": True, "absence_pause_days": []}
    )
    assert bad.status_code == 400
    bad_day = await authed.post("/api/absence", json={"absence_pause_days": ["lundi"]})
    assert bad_day.status_code == 400
    ok = await authed.post(
        "/api/absence",
        json={"absence_pause_enabled": True, "absence_pause_days": ["Friday", "monday"]},
    )
    assert ok.status_code == 200
    got = (await authed.get("/api/absence")).json()
    assert got["absence_pause_days"] == ["monday", "friday"] and got["absence_pause_enabled"]


def _rule(**overrides: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": "Recadrage",
        "conditions": [{"field": "subject", "operator": "regex", "value": r"lot\s+\d+"}],
        "actions": {"webhook_url": WEBHOOK, "priority": "high", "stop_processing": True},
    }
    rule.update(overrides)
    return rule


async def test_routing_rules_validation(authed: httpx.AsyncClient) -> None:
    bad_cases = [
        _rule(conditions=[{"field": "subject", "operator": "regex", "value": "(unclosed"}]),
        _rule(conditions=[{"field": "subject", "operator": "regex", "value": "a(?=b)"}]),  # not re2
        _rule(conditions=[{"field": "subject", "operator": "regex", "value": "a" * 201}]),
        _rule(conditions=[{"field": "to", "operator": "contains", "value": "x"}]),
        _rule(conditions=[]),
        _rule(actions={"webhook_url": "https://example.com/x"}),
        _rule(actions={"webhook_url": WEBHOOK, "priority": "urgent"}),
    ]
    for rule in bad_cases:
        response = await authed.post("/api/routing_rules", json={"rules": [rule]})
        assert response.status_code == 400, rule
    ok = await authed.post(
        "/api/routing_rules",
        json={
            "rules": [
                _rule(),
                _rule(id="dup"),
                _rule(id="dup"),
                _rule(conditions=[{"field": "detector", "operator": "equals", "value": "DESABO"}]),
            ],
            "locked": False,
        },
    )
    assert ok.status_code == 200
    config = ok.json()["config"]
    assert [r["id"] for r in config["rules"]] == ["rule-1", "dup", "dup-2", "rule-4"]
    assert config["_updated_at"] and config["locked"] is False
    assert (await authed.get("/api/routing_rules")).json()["config"]["rules"] == config["rules"]


async def test_prefs_flags_polling_bounds(authed: httpx.AsyncClient) -> None:
    for body in (
        {"retry_count": 11},
        {"retry_delay_sec": -1},
        {"webhook_timeout_sec": 0},
        {"rate_limit_per_hour": 100001},
        {"retry_count": True},
    ):
        assert (await authed.post("/api/processing_prefs", json=body)).status_code == 400
    ok = await authed.post("/api/update_processing_prefs", json={"retry_count": 3})
    assert ok.json()["prefs"]["retry_count"] == 3
    prefs = (await authed.get("/api/get_processing_prefs")).json()["prefs"]
    # Not set, and no notify is running to report its environment value.
    assert prefs["webhook_timeout_sec"] is None
    assert prefs["_sources"]["webhook_timeout_sec"] == "default"
    assert prefs["_sources"]["retry_count"] == "dashboard"
    assert (
        await authed.post("/api/update_runtime_flags", json={"disable_email_id_dedup": "maybe"})
    ).status_code == 400
    flags = await authed.post("/api/update_runtime_flags", json={"disable_email_id_dedup": True})
    assert (await authed.get("/api/get_runtime_flags")).json()["flags"] == flags.json()["flags"]
    for body in (
        {"active_days": [7]},
        {"active_start_hour": 24},
        {"vacation_start": "2026-08-10", "vacation_end": "2026-08-01"},
        {"sender_of_interest_for_polling": ["not-an-email"]},
    ):
        assert (await authed.post("/api/polling_config", json=body)).status_code == 400, body
    polling = await authed.post(
        "/api/update_polling_config",
        json={
            "active_days": "0,2,4",
            "sender_of_interest_for_polling": ["A@B.fr", "a@b.fr", "c@d.fr"],
            "vacation_start": "2026-08-01",
            "vacation_end": "2026-08-15",
        },
    )
    config = (await authed.get("/api/get_polling_config")).json()["config"]
    assert polling.status_code == 200
    assert config["active_days"] == [0, 2, 4]
    assert config["sender_of_interest_for_polling"] == ["a@b.fr", "c@d.fr"]


async def test_export_is_unmasked_and_reimports(
    authed: httpx.AsyncClient, make_settings: Any, gateway_factory: Any, key_prefix: str
) -> None:
    await authed.post(
        "/api/webhooks/config",
        json={"webhook_url": WEBHOOK, "webhook_time_start": "7h30", "webhook_time_end": "19:00"},
    )
    await authed.post("/api/routing_rules", json={"rules": [_rule()]})
    exported = (await authed.get("/api/config/export")).json()["documents"]
    assert exported["webhook_config"]["webhook_url"] == WEBHOOK
    assert exported["webhook_config"]["_version"] >= 1
    other: Gateway = await gateway_factory(make_settings(REDIS_KEY_PREFIX=f"{key_prefix}copy:"))
    async with other.client() as client:
        await login(client)
        client.headers["X-CSRF-Token"] = await csrf_of(client)
        bad = json.loads(json.dumps(exported))
        bad["webhook_config"]["webhook_url"] = "https://example.com/x"
        assert (await client.post("/api/config/import", json={"documents": bad})).status_code == 400
        assert (await client.get("/api/webhooks/config")).json()["config"]["webhook_url"] is None
        response = await client.post("/api/config/import", json={"documents": exported})
        assert response.status_code == 200
        again = (await client.get("/api/config/export")).json()["documents"]
    assert again["webhook_config"]["webhook_url"] == WEBHOOK
    assert again["webhook_config"]["webhook_time_start"] == "07:30"
    assert again["routing_rules"]["rules"] == exported["routing_rules"]["rules"]


def _write_legacy_files(folder: Path) -> dict[str, Path]:
    files = {
        "webhook_config.json": {
            "webhook_url": WEBHOOK,
            "webhook_ssl_verify": True,
            "webhook_sending_enabled": True,
            "webhook_delivery_mode": "form",
            "webhook_time_start": "09h00",
            "webhook_time_end": "18h30",
            "global_time_start": "08h00",
            "global_time_end": "20h00",
            "absence_pause_enabled": True,
            "absence_pause_days": ["saturday", "sunday"],
            "recadrage_webhook_url": "https://hook.eu2.make.com/old",
            "polling_enabled": True,
            "_updated_at": "2026-08-11T10:00:00+00:00",
        },
        "routing_rules.json": {
            "rules": [
                {
                    "id": "backend-recadrage",
                    "name": "Recadrage",
                    "conditions": [
                        {
                            "field": "subject",
                            "operator": "regex",
                            "value": "recadrage.*lot",
                            "case_sensitive": False,
                        },
                        {"field": "body", "operator": "contains", "value": "dropbox.com/scl/fo"},
                    ],
                    "actions": {
                        "webhook_url": WEBHOOK,
                        "priority": "high",
                        "stop_processing": True,
                    },
                }
            ],
            "_updated_at": "2026-08-01T09:00:00+00:00",
        },
        "processing_prefs.json": {
            "retry_count": 2,
            "retry_delay_sec": 5,
            "webhook_timeout_sec": 45,
            "rate_limit_per_hour": 300,
            "exclude_keywords": ["spam"],
        },
        "runtime_flags.json": {
            "disable_email_id_dedup": False,
            "gmail_ingress_enabled": True,
            "allow_custom_webhook_without_links": True,
        },
        "webhook_links.json": [
            {
                "source_url": "https://www.dropbox.com/s/abc/plan.pdf?dl=0",
                "r2_url": "https://media.example-r2.dev/dropbox/aa/bb/plan.pdf",
                "provider": "dropbox",
                "created_at": "2026-07-01T10:00:00Z",
                "original_filename": "plan.pdf",
            },
            {
                "source_url": "https://fromsmash.com/xyz",
                "r2_url": "https://media.example-r2.dev/fromsmash/cc/dd/file",
                "provider": "fromsmash",
                "created_at": "2026-07-02T10:00:00Z",
            },
        ],
        "magic_link_tokens.json": {
            "Zm9vYmFyYmF6cXV4MTIzNA": {
                "expires_at": None,
                "consumed": False,
                "consumed_at": None,
                "single_use": False,
            }
        },
    }
    paths = {}
    for name, content in files.items():
        path = folder / name
        path.write_text(json.dumps(content), encoding="utf-8")
        paths[name] = path
    return paths


async def test_legacy_directory_import(
    authed: httpx.AsyncClient, tmp_path: Path, gateway: Gateway, redis: Any, key_prefix: str
) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    paths = _write_legacy_files(legacy)
    upload = [
        ("files", (name, path.read_bytes(), "application/json")) for name, path in paths.items()
    ]
    response = await authed.post("/api/config/import_legacy", files=upload)
    assert response.status_code == 200, response.text
    report = response.json()["files"]
    magic = report["magic_link_tokens.json"]
    assert magic["status"] == "not_imported"
    assert "hash" in magic["reason"] and "new magic links" in magic["reason"]
    skipped = {s["key"] for s in report["webhook_config.json"]["skipped"]}
    assert {
        "global_time_start",
        "global_time_end",
        "recadrage_webhook_url",
        "polling_enabled",
    } <= skipped

    window = (await authed.get("/api/get_webhook_time_window")).json()
    assert (window["webhooks_time_start"], window["webhooks_time_end"]) == ("09:00", "18:30")
    absence = (await authed.get("/api/absence")).json()
    assert absence["absence_pause_enabled"] and absence["absence_pause_days"] == [
        "saturday",
        "sunday",
    ]
    config = (await authed.get("/api/webhooks/config")).json()["config"]
    assert config["webhook_url"] == "https://hook.eu2.make.com/***"
    assert config["webhook_delivery_mode"] == "form"
    assert "global_time_start" not in config and "recadrage_webhook_url" not in config
    exported = (await authed.get("/api/config/export")).json()["documents"]
    assert exported["webhook_config"]["webhook_url"] == WEBHOOK
    rules = (await authed.get("/api/routing_rules")).json()["config"]["rules"]
    assert [r["id"] for r in rules] == ["backend-recadrage"] and len(rules[0]["conditions"]) == 2
    prefs = (await authed.get("/api/processing_prefs")).json()["prefs"]
    assert (prefs["retry_count"], prefs["webhook_timeout_sec"], prefs["rate_limit_per_hour"]) == (
        2,
        45,
        300,
    )
    flags = (await authed.get("/api/runtime_flags")).json()["flags"]
    assert flags["allow_custom_webhook_without_links"] is True
    links = (await authed.get("/api/links")).json()["links"]
    assert [link["provider"] for link in links] == ["fromsmash", "dropbox"]
    assert links[1]["original_filename"] == "plan.pdf"
    journal = await redis.hgetall(f"{key_prefix}offload:links")
    assert set(journal) == {
        b"https://www.dropbox.com/s/abc/plan.pdf?dl=0",
        b"https://fromsmash.com/xyz",
    }
    on_disk = json.loads(Path(gateway.settings.webhook_links_file).read_text())
    assert len(on_disk) == 2
    # No magic link was created from the legacy file.
    assert (await authed.get("/api/auth/magic-links")).json()["links"] == []
    assert not [k async for k in redis.scan_iter(match=f"{key_prefix}gateway:magic:*")]


async def test_legacy_import_as_json_files(authed: httpx.AsyncClient) -> None:
    response = await authed.post(
        "/api/config/import_legacy",
        json={
            "files": {
                "webhook_config.json": json.dumps(
                    {
                        "webhook_time_start": "25h00",
                        "webhook_time_end": "10h00",
                        "webhook_url": "https://example.com/x",
                    }
                ),
                "other.json": "{}",
            }
        },
    )
    assert response.status_code == 200
    report = response.json()["files"]
    reasons = {s["key"] for s in report["webhook_config.json"]["skipped"]}
    assert "webhook_url" in reasons and "webhook_time_start,webhook_time_end" in reasons
    assert report["other.json"]["status"] == "skipped"
    assert (await authed.get("/api/webhooks/time-window")).json()["webhooks_time_start"] is None
