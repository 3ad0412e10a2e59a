"""The operator console in real Chromium against the running pipeline (issue 13, acceptance 1).

One pipeline (real Redis, Dovecot, the Worker in workerd, the four services as
processes; ``harness/pipeline.py``) and one Chromium serve the whole module. Each
test is one task an operator does in the page, and asserts the outcome they care
about, in the page and where it lands (the receiver, the verdict):

* the headline turns red when a service is stopped (SIGSTOP) or gone, and when IMAP
  refuses the login; green again after -- and the "Test IMAP" button says why;
* "Test webhook" (default target and a routing rule): success, and the receiver's 500;
* why an email was not delivered (receiver 500): status and snippet in its detail;
* fix the URL in the page, "Retry now": delivered to the NEW URL, same webhook-id;
* lift Absence Globale in the page: the held email is delivered within 5 s;
* find a skipped email with the search box; page the history with "Load more";
* configuration values set by the environment are shown, with their source;
* French and English: no raw code (``upstream_server_error``) anywhere on screen;
  the login page honours ``?lang=``;
* 1366×768: dead letters' Replay visible without scrolling sideways; 390×844: the
  link journal is cards, not a 4000 px column.

Waits are Playwright's ``expect`` with explicit timeouts (generous where the
backend has to act: the machine is shared) or bounded polls of the API.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.receiver import Receiver

from .harness.console import ConsoleBrowser, chromium_missing, env_defaults
from .harness.operator import email_in_state, imap_login_refused, post_email, set_webhook, today
from .harness.pipeline import Pipeline, missing_components

pytestmark = [pytest.mark.integration, pytest.mark.browser]

BACKEND_MS = 20_000  # the backend has to act (heartbeats, retries, a restart)
PAGE_MS = 10_000  # the page only has to render an answer
RAW_CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")
TIMEZONE = "Europe/Paris"


ENV = env_defaults(TIMEZONE)
WINDOW = (ENV["WEBHOOKS_TIME_START"], ENV["WEBHOOKS_TIME_END"])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    reason = missing_components() or chromium_missing()
    require_component(reason is None, reason or "")
    env = {"WEBHOOK_MAX_ATTEMPTS": "2", **ENV}
    with Pipeline(tmp_path_factory.mktemp("console"), extra_env=env, timezone=TIMEZONE) as running:
        yield running


@pytest.fixture(scope="module")
def console(pipeline: Pipeline) -> Iterator[ConsoleBrowser]:
    with ConsoleBrowser.launched(pipeline) as browser:
        yield browser


@pytest.fixture(scope="module")
def client(pipeline: Pipeline) -> Iterator[httpx.Client]:
    """The API, for what the test sets up around the page (never for what it checks)."""
    with pipeline.dashboard() as logged_in:
        yield logged_in


@pytest.fixture(autouse=True)
def page_problems(console: ConsoleBrowser) -> Iterator[None]:
    """No uncaught script error and no CSP refusal (an inline script) in any test."""
    yield
    problems, console.problems[:] = list(console.problems), []
    assert problems == [], problems


@pytest.fixture
def page(console: ConsoleBrowser) -> Any:
    return console.open(lang="fr")


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def dead_email(pipeline: Pipeline, client: httpx.Client) -> str:
    """An email dead-lettered after the receiver answered 500 twice."""
    pipeline.receiver.set_phase("500")
    try:
        _marker, email_id = post_email(pipeline)
        email_in_state(client, email_id, "dead_letter")
    finally:
        pipeline.receiver.set_phase("ok")
    return email_id


# -- helpers ---------------------------------------------------------------------------
def open_tab(page: Any, name: str) -> None:
    from playwright.sync_api import expect

    page.click(f"#tab-{name}")
    expect(page.locator(f"#panel-{name}")).to_be_visible()


def open_email(page: Any, email_id: str) -> Any:
    """The email's detail, as reached from a link (``#history/<id>``)."""
    from playwright.sync_api import expect

    page.goto(f"/#history/{email_id}")
    detail = page.locator("#email-detail")
    expect(detail).to_have_attribute("data-email-id", email_id)
    expect(detail.locator("#email-events > li").first).to_be_visible(timeout=PAGE_MS)
    return detail


def visible_text(page: Any, selector: str) -> str:
    """What a person can read in ``selector``: visible text, minus data shown verbatim
    (``pre``/``code``: payloads, headers, ids) -- that is the email's, not ours."""
    return str(
        page.evaluate(
            """(selector) => {
              const root = document.querySelector(selector);
              const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
              const parts = [];
              for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const parent = node.parentElement;
                if (!parent || parent.closest("pre, code, script, style")) continue;
                if (!parent.checkVisibility()) continue;
                parts.push(node.textContent);
              }
              return parts.join(" ");
            }""",
            selector,
        )
    )


def stop_signal(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)


def continue_signal(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGCONT)


# -- the verdict ---------------------------------------------------------------------------
def test_headline_turns_red_while_a_service_is_stopped_or_down_and_green_after(
    pipeline: Pipeline, page: Any
) -> None:
    from playwright.sync_api import expect

    banner = page.locator("#status-banner")
    expect(banner).to_have_attribute("data-verdict", "ok", timeout=BACKEND_MS)
    expect(page.locator("#status-summary")).to_have_text("Tout fonctionne")
    expect(page.locator("#status-services > li")).to_have_count(4)

    notify = pipeline.services["notify"]
    stop_signal(notify.pid)
    try:
        expect(banner).to_have_attribute("data-verdict", "failing", timeout=BACKEND_MS)
        expect(page.locator("#status-summary")).to_have_text("En panne : une action est nécessaire")
        # Stalled while its last heartbeat lives, down once it expired (3 intervals).
        problem = page.locator('#status-problems li[data-kind^="service_"]')
        expect(problem).to_contain_text(
            re.compile(r"Le service notify (ne répond plus|est arrêté)")
        )
        chip = page.locator('#status-services [data-service="notify"]')
        expect(chip).to_have_attribute("data-state", re.compile(r"^(stalled|down)$"))
        expect(chip).to_contain_text(re.compile(r"ne répond plus|arrêté"))
        expect(chip).to_have_class(re.compile(r"\bchip--bad\b"))
    finally:
        continue_signal(notify.pid)
    expect(banner).to_have_attribute("data-verdict", "ok", timeout=BACKEND_MS)

    offload = pipeline.services["offload"]
    offload.stop()
    try:
        # A stopped service stays listed, red, with when it was last seen.
        chip = page.locator('#status-services [data-service="offload"]')
        expect(chip).to_have_attribute("data-state", "down", timeout=BACKEND_MS)
        expect(chip).to_contain_text("arrêté · vu ")
        expect(banner).to_have_attribute("data-verdict", "failing")
        expect(page.locator('#status-problems [data-kind="service_down"]')).to_contain_text(
            "Le service offload est arrêté (vu "
        )
    finally:
        offload.start()
        offload.wait_ready(60)
    expect(banner).to_have_attribute("data-verdict", "ok", timeout=BACKEND_MS)
    expect(page.locator("#status-problems > li")).to_have_count(0)


def test_imap_refusing_the_login_turns_the_headline_red_and_the_imap_test_says_why(
    pipeline: Pipeline, page: Any
) -> None:
    """Also the "Test IMAP" button, success and failure."""
    from playwright.sync_api import expect

    row = page.locator('[data-check="imap"] .check-result')
    page.click("#check-imap")
    expect(row).to_have_attribute("data-outcome", "ok", timeout=BACKEND_MS)
    expect(row).to_contain_text("Réussi")
    expect(row).to_contain_text("Connecté à 127.0.0.1:")
    expect(row).to_contain_text("INBOX contient")

    with imap_login_refused(pipeline):
        banner = page.locator("#status-banner")
        expect(banner).to_have_attribute("data-verdict", "failing", timeout=30_000)
        expect(page.locator('#status-problems [data-kind="imap"]')).to_contain_text(
            "IMAP n'est pas connecté"
        )

        page.click("#check-imap")
        expect(row).to_have_attribute("data-outcome", "failed", timeout=30_000)
        expect(row).to_contain_text("Échec")
        expect(row).to_contain_text("Connexion refusée par 127.0.0.1:")
        expect(row.locator(".check-result__error")).not_to_be_empty()  # the server's own words
        expect(row.locator(".check-result__hint")).to_contain_text(
            "Vérifiez EMAIL_ADDRESS et EMAIL_PASSWORD"
        )
        assert "not-the-password" not in page.content()
    expect(page.locator("#status-banner")).to_have_attribute("data-verdict", "ok", timeout=30_000)
    page.click("#check-imap")
    expect(row).to_have_attribute("data-outcome", "ok", timeout=BACKEND_MS)


# -- the test buttons ----------------------------------------------------------------------
def test_webhook_test_buttons_show_the_receivers_answer(
    pipeline: Pipeline, client: httpx.Client, page: Any, second_receiver: Receiver
) -> None:
    from playwright.sync_api import expect

    default = page.locator('[data-check="webhook"][data-target="default"]')
    result = default.locator(".check-result")
    pipeline.receiver.set_phase("500")
    try:
        default.get_by_role("button", name="Tester le webhook").click()
        expect(result).to_have_attribute("data-outcome", "failed", timeout=BACKEND_MS)
    finally:
        pipeline.receiver.set_phase("ok")
    expect(result).to_contain_text("Cible par défaut a répondu 500")
    expect(result).to_contain_text("HTTP 500")
    expect(result.locator(".check-result__snippet")).to_have_text('{"success": false}')
    error = result.locator("[data-code=upstream_server_error]")
    expect(error).to_have_text("erreur serveur chez le destinataire (5xx)")
    expect(result.locator(".check-result__hint")).to_contain_text("consultez ses journaux")
    sent = pipeline.receiver.requests[-1]
    assert sent.json["test"] is True and sent.webhook_id.startswith("test_")

    default.get_by_role("button", name="Tester le webhook").click()
    expect(result).to_have_attribute("data-outcome", "ok", timeout=BACKEND_MS)
    expect(result).to_contain_text("Cible par défaut a répondu 200")
    expect(result.locator(".check-result__snippet")).to_have_text('{"success": true}')

    # A routing rule's target is tested where it points, not at the default one.
    rule = {
        "id": "urgent",
        "name": "Urgences",
        "conditions": [{"field": "subject", "operator": "contains", "value": "URGENT"}],
        "actions": {"webhook_url": second_receiver.url_for("/rule")},
    }
    assert client.post("/api/routing_rules", json={"rules": [rule]}).status_code == 200
    try:
        page.reload()
        row = page.locator('[data-check="webhook"][data-target="urgent"]')
        expect(row).to_contain_text("Règle « Urgences »")
        row.get_by_role("button", name="Tester le webhook").click()
        expect(row.locator(".check-result")).to_have_attribute(
            "data-outcome", "ok", timeout=BACKEND_MS
        )
        (request,) = second_receiver.wait_for(1, timeout_s=10)
        assert request.path == "/rule" and request.json["test"] is True
    finally:
        assert client.post("/api/routing_rules", json={"rules": []}).status_code == 200


# -- configuration you can see -----------------------------------------------------------------
def test_values_set_by_the_environment_are_shown_with_their_source(
    pipeline: Pipeline, page: Any
) -> None:
    from playwright.sync_api import expect

    open_tab(page, "webhooks")
    url = page.locator("#webhook-url")
    expect(url).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\*\*\*$"))
    badge = page.locator('#targets-form .source[data-field="webhook_url"]')
    expect(badge).to_have_attribute("data-source", "env")
    expect(badge).to_contain_text("WEBHOOK_URL")
    expect(page.locator("#webhook-url-help")).to_contain_text("WEBHOOK_URL")

    expect(page.locator("#window-start")).to_have_value(WINDOW[0])
    expect(page.locator("#window-end")).to_have_value(WINDOW[1])
    window = page.locator('#window-form .source[data-field="webhook_time_start"]')
    expect(window).to_have_attribute("data-source", "env")
    expect(window).to_contain_text("WEBHOOKS_TIME_START")
    expect(page.locator('#targets-form .source[data-field="webhook_ssl_verify"]')).to_have_text(
        "par défaut"
    )

    open_tab(page, "schedule")
    expect(page.locator("#polling-active_end_hour")).to_have_value("24")
    hours = page.locator('#polling-form .source[data-field="active_end_hour"]')
    expect(hours).to_have_attribute("data-source", "env", timeout=BACKEND_MS)
    expect(hours).to_contain_text("POLLING_ACTIVE_END_HOUR")


# -- the history -------------------------------------------------------------------------------
def test_why_an_email_was_not_delivered_the_attempt_shows_status_and_answer(
    page: Any, dead_email: str
) -> None:
    from playwright.sync_api import expect

    detail = open_email(page, dead_email)
    expect(detail.locator("#email-state")).to_have_text("lettre morte")
    first = detail.locator('.attempt[data-attempt="1"]')
    expect(first.locator(".attempt__status dd")).to_have_text("500")
    expect(first.locator(".attempt__snippet")).to_have_text('{"success": false}')
    expect(first.locator(".attempt__error dd")).to_have_text(
        "erreur serveur chez le destinataire (5xx)"
    )
    expect(detail.locator('.attempt[data-attempt="2"] .attempt__status dd')).to_have_text("500")
    expect(detail.locator('[data-kind="dead_letter"]')).to_contain_text(
        "toutes les tentatives ont échoué"
    )
    # What was sent is there too: the signed request's headers and the payload.
    first.get_by_text("En-têtes envoyés").click()
    expect(first).to_contain_text("webhook-signature: v1,")
    expect(first).to_contain_text("URL (masquée)")


def test_fix_the_url_in_the_page_then_retry_reaches_the_new_url(
    pipeline: Pipeline, client: httpx.Client, page: Any, second_receiver: Receiver
) -> None:
    from playwright.sync_api import expect

    pipeline.receiver.set_phase("500")  # the old URL keeps failing throughout
    try:
        marker, email_id = post_email(pipeline)
        dead = email_in_state(client, email_id, "dead_letter")
        webhook_id = dead["attempts"][0]["webhook_id"]

        open_tab(page, "webhooks")
        page.fill("#webhook-url", second_receiver.url_for("/fixed"))
        page.click("#targets-form [type=submit]")
        expect(page.locator("#targets-form [data-save-pill]")).to_contain_text(
            "Dernière sauvegarde"
        )

        detail = open_email(page, email_id)
        retry = detail.get_by_role("button", name="Renvoyer maintenant")
        retry.click()
        dialog = page.locator("#confirm-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Renvoyer cet email maintenant")
        page.click("#confirm-ok")
        expect(page.locator(".toast--success").last).to_contain_text("1 envoi(s) partent")
        expect(detail).to_have_attribute("data-state", "delivered", timeout=BACKEND_MS)
        expect(detail.locator("#email-state")).to_have_text("livré")
        expect(detail.locator('[data-kind="retry_requested"]')).to_contain_text("Renvoi demandé")
        expect(retry).to_be_hidden()

        (request,) = second_receiver.wait_for(1, timeout_s=10)
        assert request.path == "/fixed"
        assert request.webhook_id == webhook_id
        assert marker in request.body.decode()
    finally:
        pipeline.receiver.set_phase("ok")
        set_webhook(client, webhook_url=None)  # back to the environment's WEBHOOK_URL


def test_lifting_absence_in_the_page_releases_the_held_email_within_5s(
    pipeline: Pipeline, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    day = today(pipeline)
    open_tab(page, "webhooks")
    page.check("#absence-enabled")
    page.check(f"#absence-form input[name=absence_day][value={day}]")
    page.click("#absence-form [type=submit]")
    expect(page.locator("#absence-form [data-save-pill]")).to_contain_text("Dernière sauvegarde")
    try:
        marker, email_id = post_email(pipeline)
        email_in_state(client, email_id, "deferred")
        detail = open_email(page, email_id)
        expect(detail.locator("#email-state")).to_have_text("différé")
        expect(detail.locator('[data-kind="deferred"]')).to_contain_text("Absence Globale")
        expect(page.locator('#status-problems [data-kind="sending_paused"]')).to_contain_text(
            "Absence Globale", timeout=BACKEND_MS
        )

        open_tab(page, "webhooks")
        page.uncheck("#absence-enabled")
        lifted = time.time()
        page.click("#absence-form [type=submit]")
        delivery = pipeline.receiver.wait_for_markers({marker}, timeout_s=15)[marker]
        took = delivery.at - lifted
        print(f"held email delivered {took:.2f} s after Absence was lifted in the page")
        assert took < 5, f"{took:.2f} s"
        detail = open_email(page, email_id)
        expect(detail).to_have_attribute("data-state", "delivered", timeout=BACKEND_MS)
    finally:
        set_webhook(client, absence_pause_enabled=False)


def test_a_skipped_email_is_found_with_the_search_box(
    pipeline: Pipeline, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    marker, email_id = post_email(pipeline, subject_prefix="Re: ")
    email_in_state(client, email_id, "skipped")

    open_tab(page, "history")
    page.fill("#history-q", marker.lower())
    rows = page.locator("#history-rows > li")
    expect(rows).to_have_count(1, timeout=PAGE_MS)
    row = rows.first
    expect(row).to_have_attribute("data-email-id", email_id)
    expect(row).to_have_attribute("data-state", "skipped")
    expect(row).to_contain_text(f"Re: Média Solution - Missions Recadrage - Lot 42 [{marker}]")
    expect(row).to_contain_text("réponse (sujet en « Re: »)")

    page.select_option("#history-state", "skipped")
    expect(rows).to_have_count(1)
    page.select_option("#history-state", "delivered")
    expect(page.locator("#history-empty")).to_be_visible()
    expect(rows).to_have_count(0)
    page.select_option("#history-state", "")
    expect(rows).to_have_count(1)

    row.locator(".email-row__link").click()
    detail = page.locator("#email-detail")
    expect(detail).to_have_attribute("data-email-id", email_id)
    expect(detail.locator('[data-kind="skipped"]')).to_contain_text("réponse (sujet en « Re: »)")
    expect(detail.locator("#email-retry")).to_be_hidden()
    page.click("#email-back")
    expect(page.locator("#history-card")).to_be_visible()


def test_the_history_pages_with_load_more(
    pipeline: Pipeline, client: httpx.Client, page: Any
) -> None:
    from playwright.sync_api import expect

    page_size = 25  # history.js
    oldest = post_email(pipeline)[1]
    for _ in range(page_size):
        post_email(pipeline)

    def indexed() -> bool:
        listed = client.get("/api/emails", params={"limit": 200}).json()["emails"]
        return oldest in {e["email_id"] for e in listed} and len(listed) > page_size

    wait_until(indexed, 30, "the new emails in the history")
    open_tab(page, "history")
    rows = page.locator("#history-rows > li")
    expect(rows).to_have_count(page_size, timeout=PAGE_MS)
    expect(page.locator(f'#history-rows > li[data-email-id="{oldest}"]')).to_have_count(0)
    page.click("#history-more")
    expect(page.locator(f'#history-rows > li[data-email-id="{oldest}"]')).to_have_count(1)
    ids = rows.evaluate_all("(items) => items.map((item) => item.dataset.emailId)")
    assert len(ids) == len(set(ids)) > page_size  # the next page, not the first again


# -- languages and layout ---------------------------------------------------------------------
def test_french_and_english_show_no_raw_code(
    pipeline: Pipeline, client: httpx.Client, console: ConsoleBrowser, dead_email: str
) -> None:
    from playwright.sync_api import expect

    _marker, skipped = post_email(pipeline, subject_prefix="Re: ")
    email_in_state(client, skipped, "skipped")

    login = console.new_page(lang="fr")
    for lang, button in (("en", "Sign in"), ("fr", "Se connecter")):
        login.goto(f"/login?lang={lang}")
        expect(login.locator("html")).to_have_attribute("lang", lang)
        expect(login.locator("#login-submit")).to_have_text(button)

    page = console.open(lang="fr")
    expect(page.locator("#magic-copy")).to_have_text("Copier")  # not "<built-in method copy ...>"
    seen: dict[str, str] = {}
    for lang in ("fr", "en"):
        # The language switch keeps the view: the email stays open.
        page.goto(f"/#history/{dead_email}")
        page.locator(f'.lang a[hreflang="{lang}"]').click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        detail = page.locator("#email-detail")
        expect(detail).to_have_attribute("data-email-id", dead_email)
        expect(detail.locator('.attempt[data-attempt="2"]')).to_be_visible(timeout=PAGE_MS)
        expect(page.locator("#status-banner")).to_have_attribute(
            "data-verdict", re.compile(r"^(ok|degraded|failing)$")
        )
        seen[f"detail-{lang}"] = visible_text(page, "#email-detail")
        seen[f"status-{lang}"] = visible_text(page, "#status-banner")
        open_email(page, skipped)
        seen[f"skipped-{lang}"] = visible_text(page, "#email-detail")
        page.click("#email-back")
        expect(page.locator("#history-rows > li").first).to_be_visible(timeout=PAGE_MS)
        seen[f"history-{lang}"] = visible_text(page, "#panel-history")
        for tab in ("overview", "operations", "webhooks", "schedule"):
            open_tab(page, tab)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            seen[f"{tab}-{lang}"] = visible_text(page, f"#panel-{tab}")
    assert "upstream_server_error" in page.content()  # the codes are there, in tooltips
    leaks = {view: RAW_CODE.findall(text) for view, text in seen.items() if RAW_CODE.search(text)}
    assert leaks == {}, leaks
    assert "the receiver failed (5xx)" in seen["detail-en"]
    assert "erreur serveur chez le destinataire (5xx)" in seen["detail-fr"]
    assert "a reply (subject starts with “Re:”)" in seen["skipped-en"]


def test_usable_at_1366_and_on_a_phone(console: ConsoleBrowser, dead_email: str) -> None:
    from playwright.sync_api import expect

    desk = console.open(lang="fr", width=1366, height=768)
    open_tab(desk, "operations")
    replay = desk.locator("#dead-rows button[data-replay]").first
    expect(replay).to_be_visible(timeout=PAGE_MS)
    box = replay.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1366, box
    wrap = desk.locator("#dead-table").locator("xpath=..")
    overflow = wrap.evaluate("(node) => node.scrollWidth - node.clientWidth")
    assert overflow <= 1, f"dead letters scroll sideways by {overflow}px"

    phone = console.open(lang="fr", width=390, height=844)
    open_tab(phone, "operations")
    rows = phone.locator("#links-rows > tr")
    expect(rows.first).to_be_visible(timeout=PAGE_MS)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    tallest = max(rows.nth(i).bounding_box()["height"] for i in range(min(rows.count(), 5)))
    assert tallest < 400, f"a link journal card is {tallest}px tall"
    label = rows.first.locator("td").first.evaluate(
        "(td) => getComputedStyle(td, '::before').content"
    )
    assert "Date" in label
    phone.goto(f"/#history/{dead_email}")
    expect(phone.locator('.attempt[data-attempt="1"]')).to_be_visible(timeout=PAGE_MS)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
