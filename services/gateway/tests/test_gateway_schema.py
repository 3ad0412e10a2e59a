"""Schemathesis (acceptance item 3): no 5xx on any route, with a valid session and CSRF header.

The app runs under a real uvicorn on a free loopback port; schemathesis sends
generated requests carrying the session cookie, the CSRF header and the ingress
bearer token. ``/logout`` is left out (it would end the session mid-run) and
the deploy route runs a harmless ``python -c pass``.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from gateway_testkit import API_TOKEN, PASSWORD, USER, build_settings, form_csrf
from hypothesis import HealthCheck, settings
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port
from render_signal.gateway.app import create_app


@schemathesis.serializer("message/rfc822")
def _rfc822(ctx: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


_schema_app = create_app(build_settings({"REDIS_URL": "redis://127.0.0.1:1/0"}))
schema = schemathesis.openapi.from_dict(_schema_app.openapi()).exclude(path="/logout")


@pytest.fixture(scope="module")
def live(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prefix = f"rstest:{uuid.uuid4().hex[:10]}:"
    app = create_app(
        build_settings(
            {
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": prefix,
                "DEPLOY_CMD": f"{sys.executable} -c pass",
                "WEBHOOK_LINKS_FILE": str(tmp_path_factory.mktemp("links") / "links.json"),
                "LOGIN_MAX_FAILURES": "1000",
            }
        )
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15, "uvicorn to start")
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base) as client:
        page = client.get("/login")
        client.post(
            "/login",
            data={"username": USER, "password": PASSWORD, "csrf_token": form_csrf(page.text)},
        )
        info = client.get("/api/auth/session").json()
        cookie = client.cookies["rs_session"]
    yield {
        "base_url": base,
        "headers": {
            "Cookie": f"rs_session={cookie}",
            "X-CSRF-Token": info["csrf_token"],
            "Authorization": f"Bearer {API_TOKEN}",
        },
    }
    server.should_exit = True
    thread.join(10)
    import redis as redis_sync

    client_sync = redis_sync.Redis.from_url(redis_url)
    keys = list(client_sync.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client_sync.delete(*keys)
    client_sync.close()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_error(case: Any, live: dict[str, Any]) -> None:
    response = case.call(base_url=live["base_url"], headers=live["headers"], timeout=30)
    if case.path.startswith("/api/test/") and response.status_code == 503:
        # Only the gateway runs here: a test run by ingest/offload/notify is refused.
        assert "is not running" in response.json()["message"]
        return
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
