"""POST /api/deploy_application (acceptance item 5) against a loopback Render stand-in."""

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

    def _by_method(self, request: Recorded) -> Reply:
        if request.method == "GET":
            return Reply(self.hook_status)
        created = json.dumps({"id": "dep-123", "status": "created"}).encode()
        return Reply(self.api_status, created, JSON)


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
    assert response.json() == {
        "success": True,
        "message": "Render deploy triggered via Deploy Hook",
    }
    assert [(r.method, r.path) for r in render.requests] == [
        ("GET", f"/deploy/srv-abc?key={HOOK_KEY}")
    ]
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(
        "DEPLOY: triggered via deploy hook" in r.getMessage() and "user operator" in r.getMessage()
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
    assert response.json()["deploy_id"] == "dep-123"
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
