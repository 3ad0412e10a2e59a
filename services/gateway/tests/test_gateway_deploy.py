"""POST /api/deploy_application (acceptance item 5; issue 14 acceptance 6: the four
services) against a loopback Render stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testkit import Gateway, csrf_of, login
from render_signal.common.logs import RedactingFormatter
from render_signal.devstack.receiver import JSON, Receiver, Recorded, Reply

HOOK_KEY = "hookkey-sentinel-31c9"
API_KEY = "rnd_apikey-sentinel-88aa"


class RenderStandIn(Receiver):
    """The Render side: a Deploy Hook (GET) and the deploys API (POST), recording requests."""

    def __init__(self) -> None:
        super().__init__(self._by_method)
        self.hook_status = 200
        self.api_status = 201
        #: Status per service id for the deploys API (default: api_status).
        self.api_status_of: dict[str, int] = {}

    def _by_method(self, request: Recorded) -> Reply:
        if request.method == "GET":
            return Reply(self.hook_status)
        service = request.path.split("/")[3]
        created = json.dumps({"id": f"dep-{service}", "status": "created"}).encode()
        return Reply(self.api_status_of.get(service, self.api_status), created, JSON)


@pytest.fixture
def render() -> Iterator[RenderStandIn]:
    with RenderStandIn() as stand_in:
        yield stand_in


def _hook_env(render: RenderStandIn) -> dict[str, str]:
    return {
        "RENDER_DEPLOY_HOOK_URL": f"{render.base_url}/deploy/srv-abc?key={HOOK_KEY}",
        "RENDER_DEPLOY_HOOK_PREFIX": f"{render.base_url}/deploy/",
    }


def _api_env(render: RenderStandIn) -> dict[str, str]:
    return {
        "RENDER_API_KEY": API_KEY,
        "RENDER_SERVICE_ID": "srv-abc",
        "RENDER_API_BASE_URL": render.base_url,
        "RENDER_IMAGE_URL": "docker.io/acme/render-signal:1.2.3",
    }


def _command(marker: Path) -> str:
    return f"{sys.executable} -c \"open('{marker}','w').write('x')\""


async def _deploy(gw: Gateway) -> httpx.Response:
    async with gw.client() as client:
        await login(client)
        return await client.post(
            "/api/deploy_application", headers={"X-CSRF-Token": await csrf_of(client)}
        )


async def test_hook_path_and_key_never_logged(
    render: RenderStandIn,
    make_settings: Any,
    gateway_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gw: Gateway = await gateway_factory(make_settings(**_hook_env(render)))
    response = await _deploy(gw)
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.json()["message"] == "Render deploy triggered via Deploy Hook for gateway"
    assert response.json()["services"] == [{"service": "gateway", "ok": True, "method": "hook"}]
    assert [(r.method, r.path) for r in render.requests] == [
        ("GET", f"/deploy/srv-abc?key={HOOK_KEY}")
    ]
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(
        "DEPLOY: gateway triggered via deploy hook" in r.getMessage()
        and "user operator" in r.getMessage()
        for r in ours
    )
    assert all(HOOK_KEY not in r.getMessage() for r in ours)
    formatter = RedactingFormatter("gateway", json_lines=True)
    assert all(HOOK_KEY not in formatter.format(r) for r in caplog.records)
    # The lock keeps a second deploy from overlapping.
    assert (await _deploy(gw)).status_code == 409
    assert len(render.requests) == 1


async def test_api_path_after_a_failing_hook(
    render: RenderStandIn,
    make_settings: Any,
    gateway_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    render.hook_status = 500
    gw: Gateway = await gateway_factory(make_settings(**_hook_env(render), **_api_env(render)))
    response = await _deploy(gw)
    assert response.status_code == 200
    assert response.json()["deploy_id"] == "dep-srv-abc"
    assert response.json()["status"] == "created"
    hook, api = render.requests
    assert hook.method == "GET"
    assert (api.method, api.path) == ("POST", "/v1/services/srv-abc/deploys")
    assert api.headers["Authorization"] == f"Bearer {API_KEY}"
    assert api.json == {
        "clearCache": "do_not_clear",
        "imageUrl": "docker.io/acme/render-signal:1.2.3",
    }
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert all(HOOK_KEY not in r.getMessage() and API_KEY not in r.getMessage() for r in ours)


async def test_api_error_is_502(
    render: RenderStandIn, make_settings: Any, gateway_factory: Any
) -> None:
    render.api_status = 500
    gw: Gateway = await gateway_factory(make_settings(**_api_env(render)))
    response = await _deploy(gw)
    assert response.status_code == 502
    assert response.json()["success"] is False


async def test_command_path_runs_without_shell(
    make_settings: Any, gateway_factory: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "deployed"
    gw: Gateway = await gateway_factory(make_settings(DEPLOY_CMD=_command(marker)))
    response = await _deploy(gw)
    assert response.status_code == 200
    assert response.json()["message"] == "Deploy scheduled (local fallback)"
    await asyncio.gather(*gw.ctx.background)
    assert marker.read_text() == "x"
    # No shell: metacharacters are plain arguments, nothing else runs.
    other = tmp_path / "pwned"
    gw2: Gateway = await gateway_factory(
        make_settings(
            REDIS_KEY_PREFIX=f"{gw.settings.common.key_prefix}2:",
            DEPLOY_CMD=f"{sys.executable} -c pass ; touch {other}",
        )
    )
    assert (await _deploy(gw2)).status_code == 200
    await asyncio.gather(*gw2.ctx.background)
    assert not other.exists()


async def test_invalid_hook_prefix_is_400_without_fallthrough(
    render: RenderStandIn, make_settings: Any, gateway_factory: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "deployed"
    gw: Gateway = await gateway_factory(
        make_settings(
            RENDER_DEPLOY_HOOK_URL=f"{render.base_url}/elsewhere?key={HOOK_KEY}",
            DEPLOY_CMD=_command(marker),
        )
    )
    response = await _deploy(gw)
    assert response.status_code == 400
    assert render.requests == []
    assert gw.ctx.background == set()
    assert not marker.exists()
    # The lock is released after a refusal.
    assert not await gw.ctx.redis.exists(f"{gw.settings.common.key_prefix}gateway:deploy_lock")


async def test_nothing_configured_is_400(gateway: Gateway) -> None:
    response = await _deploy(gateway)
    assert response.status_code == 400
    assert "RENDER_DEPLOY_HOOK_URL" in response.json()["message"]


def _four_services_env(render: RenderStandIn) -> dict[str, str]:
    """Hooks for ingest and offload, the API for notify and the gateway (both paths at once)."""
    return {
        "RENDER_DEPLOY_HOOK_PREFIX": f"{render.base_url}/deploy/",
        "RENDER_DEPLOY_HOOK_URL_INGEST": f"{render.base_url}/deploy/srv-ing?key={HOOK_KEY}",
        "RENDER_DEPLOY_HOOK_URL_OFFLOAD": f"{render.base_url}/deploy/srv-off?key={HOOK_KEY}",
        "RENDER_SERVICE_ID_NOTIFY": "srv-not",
        "RENDER_SERVICE_ID": "srv-gw",  # the original's single-service name: the gateway's
        "RENDER_API_KEY": API_KEY,
        "RENDER_API_BASE_URL": render.base_url,
        "RENDER_IMAGE_URL": "ghcr.io/acme/render-signal-{service}:4f2a9c1",
    }


async def test_the_deploy_trigger_redeploys_the_four_services(
    render: RenderStandIn, make_settings: Any, gateway_factory: Any
) -> None:
    gw: Gateway = await gateway_factory(make_settings(**_four_services_env(render)))
    response = await _deploy(gw)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert [(s["service"], s["ok"], s["method"]) for s in reply["services"]] == [
        ("ingest", True, "hook"),
        ("offload", True, "hook"),
        ("notify", True, "api"),
        ("gateway", True, "api"),
    ]
    assert reply["message"].endswith("for ingest, offload, notify, gateway")
    hooks = sorted(r.path for r in render.requests if r.method == "GET")
    assert hooks == [f"/deploy/srv-ing?key={HOOK_KEY}", f"/deploy/srv-off?key={HOOK_KEY}"]
    deploys = {r.path: r.json for r in render.requests if r.method == "POST"}
    assert deploys == {
        f"/v1/services/{sid}/deploys": {
            "clearCache": "do_not_clear",
            "imageUrl": f"ghcr.io/acme/render-signal-{name}:4f2a9c1",
        }
        for sid, name in (("srv-not", "notify"), ("srv-gw", "gateway"))
    }


async def test_one_service_not_redeployed_is_a_502_naming_it(
    render: RenderStandIn, make_settings: Any, gateway_factory: Any
) -> None:
    render.api_status_of["srv-not"] = 500
    gw: Gateway = await gateway_factory(make_settings(**_four_services_env(render)))
    response = await _deploy(gw)
    assert response.status_code == 502
    message = response.json()["message"]
    assert "not redeployed: notify (HTTP 500)" in message
    assert "triggered: ingest, offload, gateway" in message
    assert len(render.requests) == 4  # the others were still triggered
