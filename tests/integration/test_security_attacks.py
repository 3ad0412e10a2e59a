"""Issue 12: each finding's attack, replayed against real processes, and refused.

The gateway is ``render-signal-gateway`` in production mode on a loopback port;
notify runs as its own process where a delivery is involved; Redis is the
session's real server. Outside services (a webhook receiver, the Make and
Render APIs) are recording loopback servers. One test (or more) per finding,
named after it.
"""

from __future__ import annotations

import asyncio
import re
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.receiver import Receiver
from render_signal.devstack.tlscert import make_certificates, openssl_available

from .harness.attacks import (
    PASSWORD,
    USER,
    GatewayProcess,
    NotifyProcess,
    base_env,
    csrf_of_form,
    loopback_name,
    publish_email,
    run_until_exit,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture
def gateway(tmp_path: Path, redis_url: str, key_prefix: str) -> Any:
    with GatewayProcess(tmp_path / "gateway", redis_url, key_prefix) as gw:
        yield gw


def _loopback_name() -> str:
    name = loopback_name()
    require_component(name is not None, "no host name of this machine resolves to loopback")
    assert name is not None
    return name


# -- finding 1: magic links -----------------------------------------------------------------
def test_f1_a_magic_link_session_is_an_operator(gateway: GatewayProcess) -> None:
    admin = gateway.admin()
    link = admin.post("/api/auth/magic-link", json={"unlimited": True}).json()
    operator = gateway.open_magic_link(link["magic_link"])
    info = operator.get("/api/auth/session").json()
    assert (info["kind"], info["role"], info["can_deploy"]) == ("magic", "operator", False)
    refused: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/api/auth/magic-link", {"unlimited": True}),
        ("GET", "/api/auth/magic-links", None),
        ("DELETE", f"/api/auth/magic-links/{link['id']}", None),
        ("DELETE", "/api/auth/magic-links", None),
        ("GET", "/api/config/export", None),
        ("POST", "/api/config/import", {"documents": {"runtime_flags": {}}}),
        ("POST", "/api/config/import_legacy", {"files": {"runtime_flags.json": "{}"}}),
        ("POST", "/api/webhooks/config", {"webhook_url": "https://hooks.attacker.net/x"}),
        ("POST", "/api/webhooks/config", {"webhook_ssl_verify": False}),
        ("POST", "/api/webhooks/config", {"webhook_delivery_mode": "form"}),
        ("POST", "/api/routing_rules", {"rules": []}),
        ("POST", "/api/make_config", {"scenario_ids": ["1"]}),
        ("POST", "/api/processing_prefs", {"retry_count": 0}),
        ("POST", "/api/runtime_flags", {"gmail_ingress_enabled": False}),
        ("POST", "/api/polling_config", {"enable_polling": False}),
        ("POST", "/api/deploy_application", None),
    ]
    for method, path, body in refused:
        answer = operator.request(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "admin only" in answer.json()["message"].lower(), answer.text
    allowed: list[tuple[str, dict[str, Any] | None]] = [
        ("/api/webhooks/config", {"webhook_sending_enabled": False}),
        ("/api/webhooks/time-window", {"start": "08:00", "end": "19:00"}),
        ("/api/set_webhook_time_window", {"start": "", "end": ""}),
        ("/api/absence", {"absence_pause_enabled": True, "absence_pause_days": ["sunday"]}),
        ("/api/dead_letters/replay_all", None),
    ]
    for path, body in allowed:
        answer = operator.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)
    exported = admin.get("/api/config/export").json()["documents"]["webhook_config"]
    assert exported["webhook_sending_enabled"] is False
    assert "webhook_url" not in exported  # the operator's attempt wrote nothing


def test_f1_revoking_a_link_ends_every_session_it_opened(gateway: GatewayProcess) -> None:
    admin = gateway.admin()
    kept = admin.post("/api/auth/magic-link", json={"unlimited": True}).json()
    doomed = [admin.post("/api/auth/magic-link", json={"unlimited": True}).json() for _ in "ab"]
    sessions = [gateway.open_magic_link(link["magic_link"]) for link in (*doomed, doomed[0])]
    survivor = gateway.open_magic_link(kept["magic_link"])
    assert admin.delete(f"/api/auth/magic-links/{doomed[0]['id']}").json()["revoked"] == 1
    assert [s.get("/api/status").status_code for s in sessions] == [401, 200, 401]
    assert admin.delete("/api/auth/magic-links").json()["revoked"] == 2
    assert sessions[1].get("/api/status").status_code == 401
    assert survivor.get("/api/status").status_code == 401
    assert admin.get("/api/status").status_code == 200  # the password session stays
    page = survivor.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


# -- finding 2: SSRF ---------------------------------------------------------------------
NUMERIC_TARGETS = [
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/hook",
    "https://192.168.1.20/hook",
    "https://[fd00::1]/hook",
    "https://0.0.0.0/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://2130706433/hook",
    "https://0x7f000001/hook",
    "https://0177.0.0.1/hook",
    "https://127.1/hook",
    "https://localhost./hook",
    "https://metadata.google.internal/computeMetadata/v1/",
]


def test_f2_internal_targets_are_refused_when_saved(gateway: GatewayProcess) -> None:
    admin = gateway.admin()
    name = _loopback_name()
    targets = [*NUMERIC_TARGETS, f"https://{name}:8443/hook"]  # a name resolving to loopback
    for url in targets:
        answer = admin.post("/api/webhooks/config", json={"webhook_url": url})
        assert answer.status_code == 400, (url, answer.text)
        rule = {
            "name": "x",
            "conditions": [{"field": "subject", "operator": "contains", "value": "x"}],
            "actions": {"webhook_url": url},
        }
        answer = admin.post("/api/routing_rules", json={"rules": [rule]})
        assert answer.status_code == 400, (url, answer.text)
    why = admin.post("/api/webhooks/config", json={"webhook_url": targets[-1]}).json()
    assert re.search(r"resolves to (127\.|::1)", why["message"]), why
    legacy = admin.post(
        "/api/config/import_legacy",
        json={"files": {"webhook_config.json": {"webhook_url": NUMERIC_TARGETS[0]}}},
    ).json()["files"]["webhook_config.json"]
    assert legacy["imported"] == [] and "metadata" in legacy["skipped"][0]["reason"]
    imported = admin.post(
        "/api/config/import",
        json={"documents": {"webhook_config": {"webhook_url": NUMERIC_TARGETS[1]}}},
    )
    assert imported.status_code == 400
    assert (
        "webhook_url" not in admin.get("/api/config/export").json()["documents"]["webhook_config"]
    )


def test_f2_env_urls_get_the_literal_check_at_start(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    env = base_env(tmp_path, redis_url, key_prefix)
    notify = {**env, "WEBHOOK_URL": "https://169.254.169.254/hook",
              "MAKE_API_BASE_URL": "https://0x7f000001"}  # fmt: skip
    stderr = run_until_exit("notify", notify)
    assert "WEBHOOK_URL: cloud metadata address 169.254.169.254 refused" in stderr
    assert "MAKE_API_BASE_URL: loopback address 127.0.0.1 refused" in stderr
    gateway = GatewayProcess(tmp_path / "gw", redis_url, key_prefix,
                             RENDER_API_BASE_URL="https://[fd00::1]")  # fmt: skip
    stderr = run_until_exit("gateway", gateway.env)
    assert "RENDER_API_BASE_URL: non-public address fd00::1 refused" in stderr


def test_f2_notify_refuses_a_name_resolving_to_loopback_at_connect_time(
    tmp_path: Path, redis_url: str, key_prefix: str, gateway: GatewayProcess
) -> None:
    """The target passed the start-time check (a name); the connect-time check refuses it."""
    name = _loopback_name()
    with Receiver() as internal:  # an internal service on this machine
        target = f"https://{name}:{internal.port}/hook"
        env = {"WEBHOOK_URL": target, "WEBHOOK_SSL_VERIFY": "false"}
        with NotifyProcess(tmp_path / "notify", redis_url, key_prefix, **env) as notify:
            publish_email(redis_url, key_prefix, "ssrf-1")
            admin = gateway.admin()

            def dead_letter() -> dict[str, Any] | None:
                items = admin.get("/api/dead_letters").json()["dead_letters"]
                return next((i for i in items if i.get("email_id") == "ssrf-1"), None)

            letter = wait_until(dead_letter, 30, lambda: f"the dead letter\n{notify.log()}")
        assert letter is not None
        assert letter["reason"] == "destination_refused"
        assert re.search(r"resolves to (127\.|::1)", letter["response_snippet"]), letter
        assert letter["attempts"] == 1
        assert internal.count() == 0  # nothing reached the internal service


def test_f2_deploy_calls_refuse_an_internal_render_api(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    name = _loopback_name()
    with Receiver() as internal:
        extra = {
            "RENDER_API_BASE_URL": f"https://{name}:{internal.port}",
            "RENDER_API_KEY": "rnd_" + "k3y" * 11,
            "RENDER_SERVICE_ID": "srv-attack",
        }
        with GatewayProcess(tmp_path / "gw", redis_url, key_prefix, **extra) as gw:
            answer = gw.admin().post("/api/deploy_application")
        assert answer.status_code == 502 and "ConnectError" in answer.json()["message"]
        assert internal.count() == 0


# -- finding 3: lockout and concurrent guesses -----------------------------------------------
async def test_f3_concurrent_guesses_cannot_pass_the_limit(gateway: GatewayProcess) -> None:
    async with gateway.async_client(source="127.0.0.2") as attacker:
        page = await attacker.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"username": USER, "password": "guess", "csrf_token": token.group(1)}
        answers = await asyncio.gather(*(attacker.post("/login", data=form) for _ in range(10)))
    codes = [a.status_code for a in answers]
    assert codes.count(401) == 5 and codes.count(429) == 5, codes


def test_f3_failures_from_one_address_do_not_lock_the_owner_out(gateway: GatewayProcess) -> None:
    with gateway.client(source="127.0.0.2") as attacker:
        codes = [gateway.login(attacker, f"guess-{n}").status_code for n in range(25)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        assert gateway.login(attacker).status_code == 429  # even the right password, there
    with gateway.client() as owner:  # another machine
        started = time.monotonic()
        assert gateway.login(owner).status_code == 303
        # Slowed at most by the bounded account delay (<= 3 s), never refused.
        assert time.monotonic() - started < 20


# -- finding 4: weak secrets -------------------------------------------------------------------
def test_f4_weak_secrets_refuse_to_start(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    weak = {"SECRET_KEY": "x", "DASHBOARD_PASSWORD": "1", "PROCESS_API_TOKEN": "a"}
    stderr = run_until_exit("gateway", GatewayProcess(tmp_path, redis_url, key_prefix, **weak).env)
    assert "SECRET_KEY: too weak: at least 32 characters" in stderr
    assert "DASHBOARD_PASSWORD: too weak: at least 12 characters" in stderr
    assert "PROCESS_API_TOKEN: too weak: at least 32 characters" in stderr
    for value in weak.values():
        assert f"={value}" not in stderr and f"'{value}'" not in stderr


# -- finding 5: ingress token guessing ---------------------------------------------------------
def test_f5_ingress_token_guessing_is_throttled(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    extra = {"INGRESS_MAX_FAILURES": "5", "INGRESS_LOCKOUT_SECONDS": "2"}
    with GatewayProcess(tmp_path / "gw", redis_url, key_prefix, **extra) as gw:
        body = {"sender": "a@b.fr", "body": "hello"}
        right = {"Authorization": f"Bearer {gw.api_token}"}
        with gw.client(source="127.0.0.2") as guesser:
            codes = []
            for n in range(30):
                answer = guesser.post(
                    "/api/ingress/gmail", json=body, headers={"Authorization": f"Bearer g{n}"}
                )
                codes.append(answer.status_code)
            assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
            assert int(answer.headers["retry-after"]) >= 1
            assert guesser.post("/api/ingress/gmail", json=body, headers=right).status_code == 429
            metrics = gw.metrics()
            assert 'render_signal_ingress_auth_failures_total{outcome="rejected"} 6.0' in metrics
            # Once the lock has passed, the right token works again from that address.
            accepted = wait_until(
                lambda: (
                    guesser.post("/api/ingress/gmail", json=body, headers=right).status_code == 200
                ),
                15,
                "the ingress lock to end",
                interval_s=0.5,
            )
            assert accepted


# -- finding 6: link-journal import ------------------------------------------------------------
def test_f6_link_journal_import_refuses_foreign_and_future_rows(gateway: GatewayProcess) -> None:
    rows = [
        {"source_url": "https://www.dropbox.com/s/a/ok.pdf", "provider": "dropbox",
         "r2_url": "https://media.r2-files.net/dropbox/a/ok.pdf",
         "created_at": "2026-01-05T10:00:00Z"},
        {"source_url": "https://www.dropbox.com/s/b/evil.pdf", "provider": "dropbox",
         "r2_url": "https://attacker.net/payload.exe", "created_at": "2026-01-05T10:00:00Z"},
        {"source_url": "https://www.dropbox.com/s/c/late.pdf", "provider": "dropbox",
         "r2_url": "https://media.r2-files.net/dropbox/c/late.pdf",
         "created_at": "2099-01-01T00:00:00Z"},
        {"source_url": "https://www.dropbox.com/s/d/http.pdf", "provider": "dropbox",
         "r2_url": "http://media.r2-files.net/dropbox/d/http.pdf",
         "created_at": "2026-01-05T10:00:00Z"},
    ]  # fmt: skip
    admin = gateway.admin()
    report = admin.post("/api/config/import_legacy", json={"files": {"webhook_links.json": rows}})
    result = report.json()["files"]["webhook_links.json"]
    reasons = [s["reason"] for s in result["skipped"]]
    assert result["imported"] == ["1 links (1 new in the file)"]
    assert reasons == [
        "r2_url: not under R2_PUBLIC_BASE_URL",
        "created_at: not a plausible UTC ISO time",
        "r2_url: must use https",
    ]
    links = admin.get("/api/links").json()["links"]
    assert [link["r2_url"] for link in links] == [rows[0]["r2_url"]]


# -- finding 7: the Make API key ---------------------------------------------------------------
def test_f7_the_make_api_key_goes_to_the_make_api_only(
    tmp_path: Path, redis_url: str, key_prefix: str, gateway: GatewayProcess
) -> None:
    """Anyone who can add a *.make.com target must not receive MAKECOM_API_KEY."""
    require_component(openssl_available(), "openssl binary not found")
    certificates = make_certificates(tmp_path / "tls", ["hook.eu1.make.com"])
    key = "make-api-key-" + "9f3e" * 6
    with Receiver(tls=certificates.server_context()) as target, Receiver() as make_api:
        admin = gateway.admin()
        url = f"https://hook.eu1.make.com:{target.port}/attacker-scenario"
        saved = admin.post(
            "/api/webhooks/config", json={"webhook_url": url, "webhook_ssl_verify": False}
        )
        assert saved.status_code == 200, saved.text
        env = {
            "RENDER_SIGNAL_ENV": "dev",  # to reach a loopback stand-in for hook.eu1.make.com
            "RENDER_SIGNAL_RESOLVE": "hook.eu1.make.com=127.0.0.1",
            "MAKECOM_API_KEY": key,
            "MAKE_API_BASE_URL": make_api.base_url,
            "MAKE_SCENARIO_IDS": "4242",
            "MAKE_WATCHER_INTERVAL_SECONDS": "0.2",
        }
        with NotifyProcess(tmp_path / "notify", redis_url, key_prefix, **env):
            publish_email(redis_url, key_prefix, "make-key-1")
            [delivery] = target.wait_for(1, 30)
            [start] = make_api.wait_for(1, 30)
    assert delivery.path == "/attacker-scenario"
    assert "authorization" not in delivery.headers
    assert key not in str(dict(delivery.headers)) and key.encode() not in delivery.body
    assert (start.path, start.headers["authorization"]) == (
        "/api/v2/scenarios/4242/start",
        f"Token {key}",
    )


# -- finding 8: forwarded addresses -------------------------------------------------------------
def test_f8_a_client_cannot_pick_its_own_address(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    any_proxy = GatewayProcess(tmp_path / "star", redis_url, key_prefix, TRUSTED_PROXIES="*")
    assert "TRUSTED_PROXIES: '*' lets any client" in run_until_exit("gateway", any_proxy.env)
    hops = {"TRUSTED_PROXY_HOPS": "1"}
    with GatewayProcess(tmp_path / "gw", redis_url, key_prefix, **hops) as gw, gw.client() as c:
        codes = []
        for n in range(8):  # a new forged address each time; the platform proxy appends ours
            headers = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.50"}
            page = c.get("/login", headers=headers)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            form = {"username": USER, "password": f"g{n}", "csrf_token": token.group(1)}
            codes.append(c.post("/login", data=form, headers=headers).status_code)
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes


# -- finding 9: dev mode on a public bind -------------------------------------------------------
def test_f9_dev_mode_beyond_loopback_warns(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    dev = {"RENDER_SIGNAL_ENV": "dev", "HOST": "0.0.0.0", "METRICS_HOST": "0.0.0.0"}
    with GatewayProcess(tmp_path / "gw", redis_url, key_prefix, **dev) as gw:
        wait_until(lambda: "SECURITY: dev mode" in gw.process.tail(), 10, "the warning")
        assert "HOST=0.0.0.0" in gw.process.tail()
    env = {**dev, "WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook"}
    with NotifyProcess(tmp_path / "notify", redis_url, key_prefix, **env) as notify:
        wait_until(lambda: "METRICS_HOST=0.0.0.0" in notify.log(), 10, "the warning")
    with GatewayProcess(tmp_path / "quiet", redis_url, key_prefix, RENDER_SIGNAL_ENV="dev") as gw:
        assert "SECURITY: dev mode" not in gw.process.tail()  # loopback: no warning


# -- finding 10: logout, cookie, caching ---------------------------------------------
def _set_cookies(response: httpx.Response) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def test_f10_cross_site_logout_cookie_prefix_and_no_store(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    """Behind the platform's https proxy (hops=1). Secure cookies are sent by hand:
    this client speaks plain http to the loopback port, as the proxy would."""
    with GatewayProcess(tmp_path / "gw", redis_url, key_prefix, TRUSTED_PROXY_HOPS="1") as gw:
        proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.60"}
        with gw.client(headers=proxy) as client:
            page = client.get("/login")
            nonce = _set_cookies(page)["rs_login_csrf"]
            form = {"username": USER, "password": PASSWORD, "csrf_token": csrf_of_form(page.text)}
            login = client.post("/login", data=form, headers={"Cookie": f"rs_login_csrf={nonce}"})
            assert login.status_code == 303, login.text
            cookie = next(
                h for h in login.headers.get_list("set-cookie") if h.startswith("__Host-")
            )
            assert cookie.startswith("__Host-rs_session=")
            assert "Secure" in cookie and "Path=/" in cookie and "domain" not in cookie.lower()
            session = {"Cookie": f"__Host-rs_session={_set_cookies(login)['__Host-rs_session']}"}
            # A plain rs_session cookie (one a sibling site could plant) is not read on https.
            planted = {"Cookie": f"rs_session={_set_cookies(login)['__Host-rs_session']}"}
            assert client.get("/api/auth/session", headers=planted).status_code == 401
            for path in ("/api/auth/session", "/api/config/export", "/", "/api/status"):
                answer = client.get(path, headers=session)
                assert answer.status_code == 200, (path, answer.status_code)
                assert answer.headers["cache-control"] == "no-store", path
            # An <img src=".../logout"> on another site: a page with a button, no logout.
            lure = client.get("/logout", headers={**session, "Sec-Fetch-Site": "cross-site"})
            assert lure.status_code == 200 and 'method="post" action="/logout"' in lure.text
            assert client.get("/api/auth/session", headers=session).status_code == 200
            own = client.get("/logout", headers={**session, "Sec-Fetch-Site": "same-origin"})
            assert own.status_code == 303
            assert client.get("/api/auth/session", headers=session).status_code == 401


# -- finding 11: docs, schema, metrics ---------------------------------------------------
def test_f11_docs_schema_and_metrics_are_not_public(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    token = "metrics-" + "b7e1c9d3" * 4
    with GatewayProcess(tmp_path / "gw", redis_url, key_prefix) as gw, gw.client() as anonymous:
        docs = anonymous.get("/docs", follow_redirects=False)
        assert docs.status_code == 303 and docs.headers["location"].startswith("/login")
        assert anonymous.get("/openapi.json").status_code == 401
        assert anonymous.get("/redoc").status_code == 404
        assert anonymous.get("/metrics").status_code == 404  # not on the public port
        assert "render_signal_" in gw.metrics()  # the internal port serves them
        admin = gw.admin()
        assert admin.get("/openapi.json").json()["info"]["title"] == "render-signal gateway"
    with (
        GatewayProcess(tmp_path / "tok", redis_url, key_prefix, METRICS_TOKEN=token) as gw,
        gw.client() as client,
    ):
        denied = client.get("/metrics")
        assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        served = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert served.status_code == 200 and "render_signal_" in served.text
