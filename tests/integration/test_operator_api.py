"""The operator's APIs against the running services (issue 13, acceptance 2).

One pipeline (real Redis, Dovecot, the Worker in workerd, the four services as
processes) serves every test here, in order; each test sets the state it needs
and puts back what it changed:

* ``/api/status`` -- ``ok`` when all is well; ``failing`` with the reason while
  a service is stopped (SIGSTOP) and while IMAP refuses the login; the CLI
  ``render-signal status`` agrees and exits non-zero; back to ``ok`` after.
* ``/api/emails`` and ``/api/emails/{id}`` -- a delivered email with its
  attempt, a skipped one found by search, paging, bad input refused.
* ``/api/emails/{id}/retry`` -- a dead letter retried after the URL was fixed
  reaches the new URL with the same webhook-id; a deferred email goes out at
  once; lifting Absence releases a held email within seconds.
* ``/api/test/{webhook,imap,worker}`` -- success and failure, as met for real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.receiver import Receiver

from .harness.operator import email_in_state, imap_login_refused, post_email, set_webhook, today
from .harness.pipeline import Pipeline, missing_components

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    reason = missing_components()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"operator API tests cannot run under CI: {reason}")
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("operator-api")
    with Pipeline(workdir, extra_env={"WEBHOOK_MAX_ATTEMPTS": "2"}) as running:
        yield running


@pytest.fixture(scope="module")
def client(pipeline: Pipeline) -> Iterator[httpx.Client]:
    with pipeline.dashboard() as logged_in:
        yield logged_in


@pytest.fixture
def fixed() -> Iterator[Receiver]:
    """The receiver the operator points the webhook at after fixing the URL."""
    with Receiver() as receiver:
        yield receiver


# -- helpers ---------------------------------------------------------------------------
def verdict(client: httpx.Client) -> dict[str, Any]:
    reply = client.get("/api/status")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def wait_verdict(client: httpx.Client, wanted: str, timeout_s: float = 30) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.clear()
        seen.update(verdict(client))
        return seen["verdict"] == wanted

    wait_until(check, timeout_s, lambda: f"verdict {wanted}; got {seen.get('problems')}")
    return seen


def wait_problem(client: httpx.Client, kind: str, timeout_s: float = 30) -> dict[str, Any]:
    """The status once a problem of ``kind`` is listed; returns that problem."""
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.clear()
        seen.update(verdict(client))
        return any(p["kind"] == kind for p in seen["problems"])

    wait_until(check, timeout_s, lambda: f"a {kind} problem; got {seen.get('problems')}")
    problem: dict[str, Any] = next(p for p in seen["problems"] if p["kind"] == kind)
    assert seen["verdict"] == problem["level"] or seen["verdict"] == "failing"
    return problem


def cli_status(pipeline: Pipeline, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": pipeline.redis.url,
        "REDIS_KEY_PREFIX": pipeline.key_prefix,
    }
    command = [str(Path(sys.executable).with_name("render-signal")), "--env-file"]
    return subprocess.run(
        [*command, str(tmp / "absent.env"), "status"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- status -----------------------------------------------------------------------------
def test_status_verdict_follows_a_stopped_service(
    pipeline: Pipeline, client: httpx.Client, tmp_path: Path
) -> None:
    ok = wait_verdict(client, "ok")
    assert ok["problems"] == []
    assert {s["service"]: s["state"] for s in ok["services"]} == dict.fromkeys(
        ("ingest", "offload", "notify", "gateway"), "up"
    )
    assert cli_status(pipeline, tmp_path).returncode == 0

    notify = pipeline.services["notify"]
    assert notify.pid is not None
    os.kill(notify.pid, signal.SIGSTOP)
    try:
        stalled = wait_problem(client, "service_stalled")
        assert stalled["service"] == "notify" and stalled["level"] == "failing"
        assert "stopped answering" in stalled["message"]
        assert stalled["since"] <= time.time()
        printed = cli_status(pipeline, tmp_path)
        assert printed.returncode == 1
        assert "VERDICT: FAILING" in printed.stdout
        assert "notify stopped answering" in printed.stdout
    finally:
        os.kill(notify.pid, signal.SIGCONT)
    wait_verdict(client, "ok")
    assert cli_status(pipeline, tmp_path).returncode == 0


def test_status_and_imap_test_say_when_imap_refuses_the_login(
    pipeline: Pipeline, client: httpx.Client, tmp_path: Path
) -> None:
    ingest = pipeline.services["ingest"]
    passed = client.post("/api/test/imap")
    assert passed.status_code == 200, passed.text
    assert passed.json()["ok"] is True and passed.json()["service"] == "ingest"
    assert "logged in" in passed.json()["summary"]

    with imap_login_refused(pipeline):
        imap = wait_problem(client, "imap")
        assert imap["level"] == "failing"
        assert "IMAP not connected" in imap["message"]
        printed = cli_status(pipeline, tmp_path)
        assert printed.returncode == 1 and "IMAP not connected" in printed.stdout

        refused = client.post("/api/test/imap").json()
        assert refused["ok"] is False and refused["success"] is False
        assert refused["summary"].startswith("login refused")
        assert refused["error"] and refused["hint"]
        assert "not-the-password" not in str(refused)
        # ready is false while IMAP is configured and not connected
        ready = httpx.get(ingest.ready_url or "", timeout=5)
        assert ready.status_code == 503, ready.text
    wait_verdict(client, "ok")


# -- the history --------------------------------------------------------------------------
def test_a_delivered_email_shows_every_step(pipeline: Pipeline, client: httpx.Client) -> None:
    marker, email_id = post_email(pipeline)
    detail = email_in_state(client, email_id, "delivered")
    assert marker in detail["subject"]
    assert detail["source"] == "http_raw"
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[:3] == ["received", "parsed", "offloaded"], kinds
    assert "attempt" in kinds
    offloaded = next(e for e in detail["events"] if e["kind"] == "offloaded")
    assert {link["r2"] for link in offloaded["links"]} == {True}
    (attempt,) = detail["attempts"]
    assert attempt["status_code"] == 200 and attempt["target"] == "default"
    assert attempt["duration_ms"] >= 0 and attempt["webhook_id"]
    assert marker in attempt["payload"]
    assert "webhook-signature" in {h.lower() for h in attempt["request_headers"]}
    secret = pipeline.signing_secret.removeprefix("whsec_")
    assert secret not in str(detail)

    listed = client.get("/api/emails", params={"q": marker}).json()
    assert [e["email_id"] for e in listed["emails"]] == [email_id]
    assert listed["emails"][0]["state"] == "delivered"


def test_a_skipped_email_is_found_by_search(pipeline: Pipeline, client: httpx.Client) -> None:
    marker, email_id = post_email(pipeline, subject_prefix="Re: ")
    detail = email_in_state(client, email_id, "skipped")
    skipped = next(e for e in detail["events"] if e["kind"] == "skipped")
    assert skipped["reason"]
    found = client.get("/api/emails", params={"q": marker.lower(), "state": "skipped"}).json()
    assert [e["email_id"] for e in found["emails"]] == [email_id]
    assert (
        client.get("/api/emails", params={"q": marker, "state": "delivered"}).json()["emails"] == []
    )


def test_the_list_pages_newest_first_and_refuses_bad_input(
    pipeline: Pipeline, client: httpx.Client
) -> None:
    ids = [post_email(pipeline)[1] for _ in range(3)]
    for email_id in ids:
        email_in_state(client, email_id, "delivered")
    first = client.get("/api/emails", params={"limit": 2}).json()
    assert [e["email_id"] for e in first["emails"]] == ids[::-1][:2]
    second = client.get("/api/emails", params={"limit": 2, "cursor": first["next_cursor"]})
    assert second.json()["emails"][0]["email_id"] == ids[0]
    assert client.get("/api/emails", params={"state": "lost"}).status_code == 400
    assert client.get("/api/emails", params={"cursor": "nan"}).status_code == 400
    assert client.get("/api/emails", params={"limit": 0}).status_code in (400, 422)
    missing = client.get("/api/emails/never-seen")
    assert missing.status_code == 404 and missing.json()["success"] is False
    assert httpx.get(f"{pipeline.gateway_url}/api/emails").status_code == 401


# -- recovery ----------------------------------------------------------------------------------
def test_retry_after_fixing_the_url_reaches_the_new_url(
    pipeline: Pipeline, client: httpx.Client, fixed: Receiver
) -> None:
    pipeline.receiver.set_phase("500")
    try:
        marker, email_id = post_email(pipeline)
        dead = email_in_state(client, email_id, "dead_letter")
        assert [a["status_code"] for a in dead["attempts"]] == [500, 500]
        assert "success" in dead["attempts"][0]["response_snippet"]
        assert dead["attempts"][0]["error"] == "upstream_server_error"
        webhook_id = dead["attempts"][0]["webhook_id"]
        delivery = wait_problem(client, "delivery")
        assert "HTTP 500" in delivery["message"] or "upstream_server_error" in delivery["message"]

        set_webhook(client, webhook_url=fixed.url_for("/fixed"))
        retried = client.post(f"/api/emails/{email_id}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["queued"] == 1
        fixed.wait_for(1, timeout_s=30)
        request = fixed.requests[0]
        assert request.path == "/fixed"
        assert request.headers["webhook-id"] == webhook_id
        assert marker in request.body.decode()
        done = email_in_state(client, email_id, "delivered")
        assert [e["kind"] for e in done["events"]].count("retry_requested") == 1
        again = client.post(f"/api/emails/{email_id}/retry")
        assert again.status_code == 409 and "delivered" in again.json()["message"]
    finally:
        pipeline.receiver.set_phase("ok")
        set_webhook(client, webhook_url=pipeline.receiver.url)
    wait_verdict(client, "ok")


def test_retry_sends_a_deferred_email_now_and_lifting_absence_releases_held_ones(
    pipeline: Pipeline, client: httpx.Client
) -> None:
    set_webhook(client, absence_pause_enabled=True, absence_pause_days=[today(pipeline)])
    try:
        _marker, first = post_email(pipeline)
        held = email_in_state(client, first, "deferred")
        deferred = next(e for e in held["events"] if e["kind"] == "deferred")
        assert deferred["until"] > time.time()
        paused = wait_problem(client, "sending_paused")
        assert paused["level"] == "degraded" and "until" in paused["message"]

        assert client.post(f"/api/emails/{first}/retry").status_code == 202
        email_in_state(client, first, "delivered", timeout_s=15)

        _marker, second = post_email(pipeline)
        email_in_state(client, second, "deferred")
        lifted = time.monotonic()
        set_webhook(client, absence_pause_enabled=False)
        email_in_state(client, second, "delivered", timeout_s=15)
        took = time.monotonic() - lifted
        print(f"held email delivered {took:.2f} s after Absence was lifted")
        assert took < 5
    finally:
        set_webhook(client, absence_pause_enabled=False)


def test_retry_refuses_what_it_cannot_retry(pipeline: Pipeline, client: httpx.Client) -> None:
    _marker, skipped = post_email(pipeline, subject_prefix="Re: ")
    email_in_state(client, skipped, "skipped")
    refused = client.post(f"/api/emails/{skipped}/retry")
    assert refused.status_code == 409 and "skipped" in refused.json()["message"]
    assert client.post("/api/emails/never-seen/retry").status_code == 404
    without_csrf = httpx.post(
        f"{pipeline.gateway_url}/api/emails/{skipped}/retry", cookies=client.cookies
    )
    assert without_csrf.status_code == 403


# -- test buttons -----------------------------------------------------------------------------
def test_webhook_test_shows_the_receivers_reply(pipeline: Pipeline, client: httpx.Client) -> None:
    before = len(pipeline.receiver.requests)
    passed = client.post("/api/test/webhook", json={}).json()
    assert passed["ok"] is True and passed["status_code"] == 200, passed
    sent = pipeline.receiver.requests[before]
    assert sent.json["test"] is True and sent.headers["webhook-id"].startswith("test_")

    pipeline.receiver.set_phase("500")
    try:
        failed = client.post("/api/test/webhook", json={"target": "default"}).json()
    finally:
        pipeline.receiver.set_phase("ok")
    assert failed["ok"] is False and failed["status_code"] == 500
    assert "success" in failed["response_snippet"]
    assert failed["error"] == "upstream_server_error" and failed["hint"]
    unknown = client.post("/api/test/webhook", json={"target": "no-such-rule"}).json()
    assert unknown["ok"] is False and "no URL" in unknown["summary"]
    assert client.post("/api/test/webhook", json={"bogus": 1}).status_code == 400


def test_worker_test_checks_reach_and_token(pipeline: Pipeline, client: httpx.Client) -> None:
    passed = client.post("/api/test/worker").json()
    assert passed["ok"] is True and passed["service"] == "offload", passed
    assert pipeline.r2_token not in str(passed)

    assert pipeline.worker is not None
    pipeline.worker.stop()
    try:
        failed = client.post("/api/test/worker").json()
    finally:
        pipeline.worker.start()
    assert failed["ok"] is False and failed["summary"] == "the Worker could not be reached"
    assert failed["error"] and failed["hint"]


def test_a_test_with_no_replica_to_run_it_says_so(pipeline: Pipeline, client: httpx.Client) -> None:
    offload = pipeline.services["offload"]
    offload.stop()
    try:
        reply = client.post("/api/test/worker")
    finally:
        offload.start()
        offload.wait_ready(60)
    assert reply.status_code == 503
    assert reply.json()["message"] == "offload is not running: start it to run this test"
