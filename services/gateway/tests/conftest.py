"""Gateway test fixtures: settings on the test Redis, an ASGI client, logged-in sessions."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gateway_testkit import Gateway, build_settings, csrf_of, login
from render_signal.gateway.settings import GatewaySettings


@pytest.fixture
def make_settings(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> Callable[..., GatewaySettings]:
    """Settings on the test Redis under this test's prefix; keyword args override env."""

    def build(redis: str | None = None, **extra: str) -> GatewaySettings:
        return build_settings(
            {
                "REDIS_URL": redis or redis_url,
                "REDIS_KEY_PREFIX": key_prefix,
                "WEBHOOK_LINKS_FILE": str(tmp_path / "webhook_links.json"),
                "R2_PUBLIC_BASE_URL": "https://media.example-r2.dev",
                **extra,
            }
        )

    return build


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Callable[[GatewaySettings], Any]]:
    stacks: list[Any] = []

    async def start(settings: GatewaySettings) -> Gateway:
        gw = Gateway(settings)
        ctx = gw.app.router.lifespan_context(gw.app)
        await ctx.__aenter__()
        stacks.append(ctx)
        return gw

    yield start
    for ctx in reversed(stacks):
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def gateway(
    make_settings: Callable[..., GatewaySettings], gateway_factory: Callable[..., Any]
) -> Gateway:
    gw: Gateway = await gateway_factory(make_settings())
    return gw


@pytest.fixture
async def authed(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in with the password, sending the CSRF header on every request."""
    async with gateway.client() as client:
        response = await login(client)
        assert response.status_code == 303
        client.headers["X-CSRF-Token"] = await csrf_of(client)
        yield client
