"""Newcomer path (issue 8, acceptance 5): fresh directory, ``render-signal up``,
``render-signal send``, and the sample's webhook is in the dashboard's webhook
log within 5 s, delivered to the dev recording sink (``.run/sink.jsonl``).

The dashboard is read as a person would: a logged-in session (login form with
its CSRF token, dev credentials from the written ``.env``), then
``GET /api/webhook_logs``; and a screenshot of the page through real Chromium
(kept with the test's files; ``make screenshots`` makes the README's pictures).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from render_signal.common.envreader import load_env_file
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.redisserver import find_redis_server

from .harness.dashboard import login
from .stack import Stack

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    require_component(find_redis_server() is not None, "no redis-server binary available")
    running = Stack(tmp_path)
    try:
        yield running
    finally:
        running.kill()


def _sink_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_newcomer_up_send_and_see_the_webhook_in_the_dashboard(
    stack: Stack, tmp_path: Path
) -> None:
    stack.up()
    status = stack.cli("status", "--wait", "20", timeout=40)
    assert status.returncode == 0, status.stdout + stack.output()
    env = load_env_file(stack.workdir / ".env")
    assert env["RENDER_SIGNAL_ENV"] == "dev" and "WEBHOOK_URL" not in env
    state = stack.state()
    gateway = str(state["gateway_url"])
    sink_path = Path(str(state["sink_records"]))
    if not sink_path.is_absolute():
        sink_path = stack.workdir / sink_path

    with httpx.Client(base_url=gateway, timeout=10) as client:
        login(client, env.get("DASHBOARD_USER", "admin"), env["DASHBOARD_PASSWORD"])
        before = {e.get("webhook_id") for e in client.get("/api/webhook_logs").json()["logs"]}

        started = time.monotonic()
        sent = stack.cli("send", "--wait", "0", timeout=30)
        assert sent.returncode == 0, sent.stdout + sent.stderr + stack.output()
        assert "202" in sent.stdout, sent.stdout

        entry: dict[str, Any] | None = None
        deadline = started + 5.0
        while entry is None and time.monotonic() < deadline:
            logs = client.get("/api/webhook_logs?days=1").json()["logs"]
            fresh = [
                e
                for e in logs
                if e.get("webhook_id") not in before and e.get("status") == "success"
            ]
            entry = fresh[0] if fresh else None
            if entry is None:
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert entry is not None, f"no webhook log entry within 5 s\n{stack.output()[-3000:]}"
    print(f"newcomer: sample email in the dashboard webhook log {elapsed:.2f}s after send")
    assert "Recadrage" in str(entry.get("subject")), entry
    assert entry.get("status_code") == 200, entry

    # The same delivery reached the dev sink, signed, with the original payload shape.
    records = [r for r in _sink_records(sink_path) if r.get("webhook_id") == entry["webhook_id"]]
    assert len(records) == 1, _sink_records(sink_path)
    body = json.loads(records[0]["body"])
    assert body["subject"] == entry["subject"]
    assert {link["provider"] for link in body["delivery_links"]} >= {"dropbox", "swisstransfer"}
    assert records[0]["headers"].get("webhook-signature", "").startswith("v1,")

    _screenshot(gateway, env, str(entry["subject"]), tmp_path)


def _screenshot(gateway: str, env: dict[str, str], subject: str, tmp_path: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_component(False, "playwright not installed")
        return
    require_component(
        shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists(), "no /usr/bin/chromium"
    )
    target = tmp_path / "newcomer-webhook-log.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.goto(f"{gateway}/login", wait_until="load")
            page.fill("#username", env.get("DASHBOARD_USER", "admin"))
            page.fill("#password", env["DASHBOARD_PASSWORD"])
            page.click("#login-form [type=submit]")
            page.wait_for_url(re.compile(r".*/$"), timeout=10_000)
            item = page.locator(".timeline__subject", has_text=subject)
            item.first.wait_for(timeout=10_000)
            assert item.count() >= 1
            page.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()
    assert target.stat().st_size > 10_000, "screenshot suspiciously small"
    print(f"newcomer: screenshot saved to {target}")
