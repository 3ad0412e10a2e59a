"""The dashboard in real Chromium (Playwright) against the real gateway and Redis.

The gateway runs under uvicorn on a loopback port (in a thread, built from the
same environment variables ``main()`` reads); the notify service runs as a
real subprocess. Chromium is the system one (``/usr/bin/chromium``; never
``playwright install``): without it the tests skip locally and fail under CI.

Synchronisation is event based: uvicorn's startup event, Playwright's
auto-waiting ``expect``, and blocking reads of the notify process's log lines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import zoneinfo
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis as redis_sync
import uvicorn
from render_signal.common.events import DeliveryLink, MailOffloaded, encode_entry
from render_signal.common.keys import Keys
from render_signal.common.records import WebhookAttempt
from render_signal.common.settings import EnvReader
from render_signal.devstack.browser import CHROMIUM, watch_page
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port
from render_signal.devstack.pytest_plugin import require_component
from render_signal.gateway.app import create_app
from render_signal.gateway.settings import read_settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]

USER = "operator"
PASSWORD = "pw-browser-3b7f0e2a91"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


# -- the gateway under uvicorn ----------------------------------------------------------
def gateway_env(redis_url: str, key_prefix: str, port: int) -> dict[str, str]:
    """The environment a deployed gateway gets (dev mode: loopback http allowed)."""
    return {
        "RENDER_SIGNAL_ENV": "dev",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "SECRET_KEY": "browser-secret-key-6c1d9e8f2a7b4c3d",
        "DASHBOARD_USER": USER,
        "DASHBOARD_PASSWORD": PASSWORD,
        "PROCESS_API_TOKEN": "browser-api-token-5e2a8c1f",
        "PORT": str(port),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }


class _Server(uvicorn.Server):
    """uvicorn that sets an event once it listens (readiness without polling)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class LiveGateway:
    """The gateway app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, env: Mapping[str, str]) -> None:
        reader = EnvReader(dict(env), {})
        settings = read_settings(reader)
        reader.check()
        self.base_url = f"http://127.0.0.1:{settings.common.metrics_port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.common.metrics_port,
            log_config=None,
            access_log=False,
            ws="none",
            lifespan="on",
        )
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)

    def __enter__(self) -> LiveGateway:
        self.thread.start()
        if not self.server.ready.wait(20):
            raise RuntimeError("the gateway did not start listening")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# -- a service in a subprocess ------------------------------------------------------------
class ServiceProcess:
    """``python -m <module>``; its output lines are queued so tests wait on them."""

    def __init__(self, module: str, env: Mapping[str, str]) -> None:
        full_env = {**os.environ, **env, "LOG_FORMAT": "text", "PYTHONUNBUFFERED": "1"}
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tempfile.gettempdir(),  # never the checkout (its .env, its data/)
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float = 20.0) -> re.Match[str]:
        """Block until an output line (past or future) matches ``pattern``."""
        regex = re.compile(pattern)
        for line in self.seen:
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(line)
            if match := regex.search(line):
                return match
        tail = "\n".join(self.seen[-40:])
        raise AssertionError(f"no output line matching {pattern!r}; last lines:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pump.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """System Chromium, headless (skips locally / fails in CI when unavailable)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_component(False, "playwright is not installed")
    require_component(CHROMIUM.exists(), f"{CHROMIUM} not found")
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        except Exception as exc:  # playwright.Error: the binary would not start
            require_component(False, f"chromium failed to launch: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def gateway(redis_url: str, key_prefix: str) -> Iterator[LiveGateway]:
    with LiveGateway(gateway_env(redis_url, key_prefix, free_port())) as live:
        yield live


@pytest.fixture
def rdb(redis_url: str, key_prefix: str) -> Iterator[redis_sync.Redis]:
    """A synchronous client for seeding and checking; this test's keys deleted after."""
    client = redis_sync.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{key_prefix}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


class Browsing:
    """Opens contexts on the gateway and records what would break the page."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[Any] = []
        self.problems: list[str] = []

    def new_page(self, locale: str = "fr-FR") -> Any:
        """A page in a fresh context (its own cookies), French unless told."""
        context = self.browser.new_context(
            base_url=self.base_url, locale=locale, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return watch_page(context.new_page(), self.problems)

    def login(self, page: Any) -> Any:
        from playwright.sync_api import expect

        page.goto("/login")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{self.base_url}/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        return page

    def permanent_link(self, page: Any, no_expiry: str) -> tuple[str, str]:
        """(link, id) of a new permanent magic link, made on the Tools tab of ``page``."""
        from playwright.sync_api import expect

        page.check("#magic-unlimited")
        page.click("#magic-create")
        expect(page.locator("#magic-expiry")).to_have_text(no_expiry)
        link_id = page.locator("#magic-result").get_attribute("data-link-id") or ""
        return page.locator("#magic-link").input_value(), link_id

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsing(browser: Any, gateway: LiveGateway) -> Iterator[Browsing]:
    session = Browsing(browser, gateway.base_url)
    try:
        yield session
    finally:
        session.close()
    assert session.problems == [], session.problems


def _offloaded_event(email_id: str) -> MailOffloaded:
    link = DeliveryLink(provider="dropbox", raw_url="https://www.dropbox.com/s/abc/report.zip?dl=0")
    return MailOffloaded(
        event_id=f"evt-{email_id}",
        email_id=email_id,
        source="imap",
        subject="Média Solution - Lot 42",
        sender_address="Studio <studio@render.test>",
        sender_email="studio@render.test",
        received_date="2026-01-05T10:00:00Z",
        body_text="Vos fichiers: https://www.dropbox.com/s/abc/report.zip?dl=0",
        body_html="",
        links=(link,),
        received_at=time.time(),
    )


# -- tests ------------------------------------------------------------------------------------
def _seed_webhook_logs(rdb: redis_sync.Redis, key_prefix: str) -> None:
    """Three log entries as notify writes them (LPUSH, newest first)."""
    now = time.time()
    entries = [
        {
            "status": "success",
            "status_code": 200,
            "attempt": 1,
            "duration_ms": 184,
            "delivery_mode": "json",
            "subject": "Média Solution - Lot 41",
            "age": 7200,
        },
        {
            "status": "error",
            "status_code": 503,
            "attempt": 2,
            "duration_ms": 2210,
            "delivery_mode": "json",
            "failure_reason": "http_5xx",
            "subject": "Média Solution - Lot 42",
            "age": 1500,
        },
        {
            "status": "deferred",
            "attempt": 0,
            "failure_reason": "outside_window",
            "subject": "Désabonnement <b>pas du HTML</b>",
            "age": 300,
        },
    ]
    for number, entry in enumerate(entries):
        stamp = dt.datetime.fromtimestamp(now - entry.pop("age"), dt.UTC).isoformat()
        record = WebhookAttempt(
            timestamp=stamp,
            email_id=f"seed-{number}",
            webhook_id=f"msg_seed{number}",
            target="https://hook.render-signal.fr/***",
            target_class="custom",
            **entry,
        )
        rdb.lpush(Keys(key_prefix).webhook_log, msgspec.json.encode(record))


def test_login_dashboard_languages_and_screenshots(
    browsing: Browsing, rdb: redis_sync.Redis, key_prefix: str, tmp_path: Path
) -> None:
    """Anonymous → /login; log in; FR page by default, EN on ?lang=en (remembered)."""
    from playwright.sync_api import expect

    _seed_webhook_logs(rdb, key_prefix)
    page = browsing.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    browsing.login(page)

    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("tab", name="Vue d'ensemble")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.locator("#current-user")).to_have_text(USER)
    expect(page.locator("#session-kind")).to_have_text("admin")
    # The verdict, from heartbeats: only the gateway runs here, so the others are down
    # and stay listed (red, "last seen"), and the headline says so.
    expect(page.locator("#status-banner")).to_have_attribute("data-verdict", "failing")
    notify = page.locator('#status-services [data-service="notify"]')
    expect(notify).to_have_attribute("data-state", "down")
    expect(notify).to_contain_text("arrêté · jamais vu")
    expect(page.locator("#status-errors-1h")).to_have_text("1")
    expect(page.locator("#status-services")).to_contain_text("gateway")
    timeline = page.locator("#logs-timeline > li")
    expect(timeline).to_have_count(3)
    expect(timeline.nth(0)).to_have_attribute("data-status", "deferred")
    expect(timeline.nth(1)).to_contain_text("HTTP 503")
    expect(timeline.nth(0)).to_contain_text("hors de la fenêtre horaire")  # not "outside_window"
    # Email text is shown as text, never parsed as HTML.
    expect(timeline.nth(0)).to_contain_text("<b>pas du HTML</b>")
    # Never into the checkout: RENDER_SIGNAL_TEST_ARTIFACTS names a folder CI keeps.
    artifacts = Path(os.environ.get("RENDER_SIGNAL_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "dashboard-fr.png"), full_page=True)

    page.goto("/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("tab", name="Overview")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.screenshot(path=str(artifacts / "dashboard-en.png"), full_page=True)
    page.goto("/")
    expect(page.locator("#status-summary")).to_have_text("Failing: action needed")
    strings = page.request.get("/api/i18n?lang=fr").json()["strings"]
    assert strings["status_title"] == "État du système"


def test_tabs_keyboard_and_routing_lock(
    browsing: Browsing, rdb: redis_sync.Redis, key_prefix: str
) -> None:
    """Arrow keys move between tabs; routing rules are locked until unlocked, then saved."""
    from playwright.sync_api import expect

    page = browsing.login(browsing.new_page())
    page.get_by_role("tab", name="Vue d'ensemble").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Historique")).to_be_focused()
    expect(page.locator("#panel-history")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Webhooks")).to_be_focused()
    expect(page.locator("#panel-webhooks")).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#panel-routing")).to_be_visible()

    expect(page.locator("#routing-state")).to_have_text("Verrouillé")
    expect(page.locator("#routing-add")).to_be_disabled()
    page.click("#routing-lock")
    expect(page.locator("#routing-state")).to_have_text("Déverrouillé")
    page.click("#routing-add")
    rule = page.locator("#routing-rules > .rule").last
    rule.get_by_label("Nom").fill("Média Solution")
    rule.get_by_label("Champ").select_option("subject")
    rule.get_by_label("Valeur").fill("Média Solution")
    rule.get_by_label("URL du webhook").fill("http://127.0.0.1:9/media")
    rule.get_by_label("Arrêter le traitement").check()
    rule.get_by_label("Accepter toute réponse 2xx").check()
    page.click("#routing-save")
    expect(page.locator(".toast--success").last).to_be_visible()
    expect(page.locator("#routing-add")).to_be_disabled()  # locked again after saving

    raw = rdb.hget(f"{key_prefix}config:routing_rules", "data")
    stored = json.loads(raw or b"{}")
    assert [r["name"] for r in stored["rules"]] == ["Média Solution"]
    assert stored["rules"][0]["conditions"][0]["field"] == "subject"
    assert stored["rules"][0]["actions"]["stop_processing"] is True
    assert stored["rules"][0]["actions"]["accept_any_2xx"] is True

    # The default target's receiver contract, in the Webhooks tab (issue 14, item 3).
    page.get_by_role("tab", name="Webhooks").click()
    page.locator("#targets-form").get_by_label("Accepter toute réponse 2xx").check()
    page.locator("#targets-form [type=submit]").click()

    def accept_any_stored() -> bool:
        web = json.loads(rdb.hget(f"{key_prefix}config:webhook_config", "data") or b"{}")
        return web.get("webhook_accept_any_2xx") is True

    wait_until(accept_any_stored, 10, "webhook_accept_any_2xx saved from the page")


def _window_excluding_now() -> tuple[str, str]:
    """A one-hour window starting 60-90 min from now (Paris time): now is outside it."""
    now = dt.datetime.now(PARIS)
    start = (now + dt.timedelta(minutes=60)).replace(second=0, microsecond=0)
    start += dt.timedelta(minutes=(30 - start.minute % 30) % 30)
    end = start + dt.timedelta(hours=1)
    return start.strftime("%H:%M"), end.strftime("%H:%M")


def test_time_window_saved_in_browser_is_applied_by_notify(
    browsing: Browsing, rdb: redis_sync.Redis, redis_url: str, key_prefix: str
) -> None:
    """The window chosen in the dropdowns is the one the running notify service enforces."""
    from playwright.sync_api import expect

    notify = ServiceProcess(
        "render_signal.notify.main",
        {
            "RENDER_SIGNAL_ENV": "dev",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": key_prefix,
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "NOTIFY_METRICS_PORT": str(free_port()),
            "WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook",
            "LOG_LEVEL": "INFO",
        },
    )
    try:
        notify.wait_for(r"HEARTBEAT: alive \(service=notify")
        start, end = _window_excluding_now()

        page = browsing.login(browsing.new_page())
        page.get_by_role("tab", name="Webhooks").click()
        form = page.locator("#window-form")
        form.get_by_label("Début", exact=True).select_option(start)
        form.get_by_label("Fin", exact=True).select_option(end)
        expect(page.locator("#window-form [data-save-pill]")).to_have_text("Sauvegarde requise")
        page.click("#window-save")
        expect(page.locator("#window-form [data-save-pill]")).to_contain_text("Dernière sauvegarde")
        version = int(rdb.hget(f"{key_prefix}config:webhook_config", "version") or 0)
        assert version >= 1
        page.reload()  # the dropdowns are filled from GET /api/webhooks/time-window
        expect(page.locator("#window-start")).to_have_value(start)
        expect(page.locator("#window-end")).to_have_value(end)

        # An email reaches notify: it loads the new config version and parks the
        # webhook until the window opens (the next opening is the chosen start).
        email_id = f"window-{key_prefix.strip(':').split(':')[-1]}"
        rdb.xadd(f"{key_prefix}mail.offloaded", encode_entry(_offloaded_event(email_id)))
        notify.wait_for(rf"CONFIG: loaded webhook_config version {version}\b")
        due = notify.wait_for(rf"email {email_id} to .* deferred \(outside_window\) until (\S+)")
        due_local = dt.datetime.fromisoformat(due.group(1)).astimezone(PARIS)
        assert due_local.strftime("%H:%M") == start

        # ...and the dashboard's timeline shows that deferral.
        page.get_by_role("tab", name="Vue d'ensemble").click()
        page.click("#logs-refresh")
        item = page.locator("#logs-timeline > li", has_text=email_id)
        expect(item).to_have_attribute("data-status", "deferred")
        expect(item).to_contain_text("hors de la fenêtre horaire")
    finally:
        notify.stop()


# Chromium posts the magic-link landing form with "Origin: null" (the page is served
# with Referrer-Policy: no-referrer, as it should be): these two tests prove the
# pre-login forms accept that while still refusing cross-site posts.


def test_one_shot_magic_link_works_once(browsing: Browsing) -> None:
    from playwright.sync_api import expect

    page = browsing.login(browsing.new_page())
    page.get_by_role("tab", name="Outils").click()
    expect(page.locator("#magic-unlimited")).not_to_be_checked()
    page.click("#magic-create")
    expect(page.locator("#magic-result")).to_be_visible()
    expect(page.locator("#magic-expiry")).to_contain_text("Expire le")
    link = page.locator("#magic-link").input_value()
    assert "/login/magic/" in link

    first = browsing.new_page()  # a fresh context: no cookie from the operator's session
    first.goto(link)
    first.click("#magic-submit")
    first.wait_for_url(f"{browsing.base_url}/")
    expect(first.locator("#session-kind")).to_have_text("opérateur (lien magique)")
    expect(first.locator("#deploy-button")).to_be_disabled()

    second = browsing.new_page()
    second.goto(link)
    with second.expect_response(lambda r: r.request.method == "POST") as answer:
        second.click("#magic-submit")
    assert answer.value.status == 401
    expect(second.locator("#login-error")).to_have_text("Lien invalide ou expiré.")


def test_permanent_magic_link_refused_after_revoke(browsing: Browsing) -> None:
    from playwright.sync_api import expect

    page = browsing.login(browsing.new_page())
    page.goto("/#tools")
    link, link_id = browsing.permanent_link(page, "Sans expiration")
    row = page.locator(f'#magic-rows tr[data-link-id="{link_id}"]')
    expect(row).to_be_visible()

    for _ in range(2):  # permanent: reusable until revoked
        visitor = browsing.new_page()
        visitor.goto(link)
        visitor.click("#magic-submit")
        visitor.wait_for_url(f"{browsing.base_url}/")

    row.get_by_role("button", name="Révoquer").click()
    page.click("#confirm-ok")  # revoking is confirmed first
    expect(row).to_have_count(0)
    expect(page.locator("#magic-none")).to_be_visible()

    refused = browsing.new_page()
    refused.goto(link)
    refused.click("#magic-submit")
    expect(refused.locator("#login-error")).to_have_text("Lien invalide ou expiré.")


def test_magic_link_session_is_an_operator_and_ends_when_revoked(browsing: Browsing) -> None:
    """Issue 12, finding 1: the role is shown and enforced; revoking logs the operator out."""
    from playwright.sync_api import expect

    admin = browsing.login(browsing.new_page(locale="en-GB"))
    admin.goto("/?lang=en#tools")
    link, link_id = browsing.permanent_link(admin, "No expiry")

    operator = browsing.new_page(locale="en-GB")  # a fresh context: only the link
    operator.goto(link)
    operator.click("#magic-submit")
    operator.wait_for_url(f"{browsing.base_url}/")
    expect(operator.locator("body")).to_have_attribute("data-ready", "true")
    operator.goto("/?lang=en")
    expect(operator.locator("#session-kind")).to_have_text("operator (magic link)")
    expect(operator.locator("body")).to_have_attribute("data-role", "operator")
    # Admin-only controls: hidden cards, disabled inputs; the operator's own stay usable.
    for card in ("#magic-card", "#deploy-card", "#config-card"):
        expect(operator.locator(card)).to_be_hidden()
    for control in ("#webhook-url", "#webhook-ssl-verify", "#webhook-delivery-mode",
                    "#routing-lock", "#deploy-button"):  # fmt: skip
        expect(operator.locator(control)).to_be_disabled()
    expect(operator.locator("#webhook-sending-enabled")).to_be_enabled()
    expect(operator.locator("#window-save")).to_be_enabled()
    assert operator.locator("[data-admin-only]").count() >= 8
    # The sending switch saves from the operator's page (only the allowed field is sent).
    operator.get_by_role("tab", name="Webhooks").click()
    with operator.expect_response(lambda r: r.url.endswith("/api/webhooks/config")
                                  and r.request.method == "POST") as saved:  # fmt: skip
        operator.locator("#targets-form [type=submit]").click()
    assert saved.value.status == 200
    # An admin-only call from the operator's own session is refused by the server.
    token = operator.locator('meta[name="csrf-token"]').get_attribute("content")
    headers = {"X-CSRF-Token": token or "", "Origin": browsing.base_url}
    for method, path, body in (
        ("post", "/api/auth/magic-link", {"unlimited": True}),
        ("post", "/api/webhooks/config", {"webhook_url": "https://hooks.receiver.net/x"}),
        ("get", "/api/config/export", None),
    ):
        call = getattr(operator.request, method)
        answer = call(path, headers=headers, data=body) if body else call(path, headers=headers)
        assert answer.status == 403, (path, answer.status, answer.text())
        assert "admin only" in answer.json()["message"].lower()

    # Revoking the link from the admin session ends the operator's session at once.
    admin.locator(f'#magic-rows tr[data-link-id="{link_id}"]').get_by_role("button").click()
    admin.click("#confirm-ok")  # revoking asks for confirmation
    expect(admin.locator(f'#magic-rows tr[data-link-id="{link_id}"]')).to_have_count(0)
    operator.goto("/")
    expect(operator).to_have_url(re.compile(r"/login\?next=%2F$"))
    assert operator.request.get("/api/auth/session").status == 401


def test_dead_letter_replayed_from_the_page(
    browsing: Browsing, rdb: redis_sync.Redis, key_prefix: str
) -> None:
    from playwright.sync_api import expect

    source = f"{key_prefix}mail.offloaded"
    fields = encode_entry(_offloaded_event("dlq-1"))
    entry = rdb.xadd(
        f"{source}.dlq",
        {
            **fields,
            "error": "handler failed: ReadTimeout",
            "source_stream": source,
            "source_id": "1700000000000-0",
            "group": "notify",
            "deliveries": 5,
            "failed_at": time.time(),
        },
    )
    dead_id = f"mail.offloaded:{entry.decode()}"

    page = browsing.login(browsing.new_page())
    page.get_by_role("tab", name="Opérations").click()
    row = page.locator(f'#dead-rows tr[data-dead-id="{dead_id}"]')
    expect(row).to_contain_text("ReadTimeout")
    row.get_by_role("button", name="Rejouer").click()
    expect(row).to_have_count(0)
    expect(page.locator("#dead-empty")).to_be_visible()

    assert rdb.xlen(f"{source}.dlq") == 0
    replayed = rdb.xrange(source)
    assert len(replayed) == 1
    assert replayed[0][1][b"type"] == fields["type"]
    assert replayed[0][1][b"data"] == fields["data"]


def test_expired_session_sends_the_page_to_login(
    browsing: Browsing, rdb: redis_sync.Redis, key_prefix: str
) -> None:
    """A 401 from the API (session gone server-side) leads back to /login."""
    from playwright.sync_api import expect

    page = browsing.login(browsing.new_page())
    sessions = list(rdb.scan_iter(match=f"{key_prefix}gateway:session:*"))
    assert sessions
    rdb.delete(*sessions)
    page.click("#status-refresh")
    page.wait_for_url(re.compile(r"/login\?next=%2F"))
    expect(page.locator("#login-form")).to_be_visible()
