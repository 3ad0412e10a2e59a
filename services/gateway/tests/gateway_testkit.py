"""Helpers for the gateway tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from render_signal.common.settings import EnvReader
from render_signal.gateway.app import create_app
from render_signal.gateway.context import GatewayContext, app_context
from render_signal.gateway.settings import GatewaySettings, read_settings

USER = "operator"
PASSWORD = "pw-sentinel-9f3c1a7e"
API_TOKEN = "tok-sentinel-4b8e2d61c0-9a7f3e5b1d"  # production rules: >= 32 characters
SECRET = "secret-key-sentinel-0123456789abcdef"

BASE_ENV = {
    "RENDER_SIGNAL_ENV": "test",
    "SECRET_KEY": SECRET,
    "DASHBOARD_USER": USER,
    "DASHBOARD_PASSWORD": PASSWORD,
    "PROCESS_API_TOKEN": API_TOKEN,
    "HEARTBEAT_INTERVAL_SECONDS": "5",
    "LOG_LEVEL": "DEBUG",
}


def build_settings(env: dict[str, str]) -> GatewaySettings:
    reader = EnvReader({**BASE_ENV, **env}, {})
    settings = read_settings(reader)
    reader.check()
    return settings


class Gateway:
    """An app running its lifespan, with an httpx client over ASGI."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.app = create_app(settings)

    @property
    def ctx(self) -> GatewayContext:
        return app_context(self.app)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        kwargs.setdefault("base_url", "http://testserver")
        return httpx.AsyncClient(transport=transport, **kwargs)


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token in form"
    return match.group(1)


async def login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "username": USER,
            "password": password,
            "csrf_token": form_csrf(page.text),
            "next": "/",
        },
    )


async def csrf_of(client: httpx.AsyncClient) -> str:
    """The session's CSRF token, as the dashboard would read it from its meta tag."""
    response = await client.get("/api/auth/session")
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


async def magic_post(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """Open a magic link like a browser: the landing page, then its button."""
    landing = await client.get(path)
    assert landing.status_code == 200
    assert landing.headers["referrer-policy"] == "no-referrer"
    return await client.post(path, data={"csrf_token": form_csrf(landing.text)})


async def dump_redis(redis: Any, prefix: str) -> str:
    """Every key and value under ``prefix`` as one text blob (to search for secrets)."""
    parts: list[str] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=500):
        parts.append(key.decode())
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts.append(repr(await redis.get(key)))
        elif kind == "hash":
            parts.append(repr(await redis.hgetall(key)))
        elif kind == "set":
            parts.append(repr(await redis.smembers(key)))
        elif kind == "list":
            parts.append(repr(await redis.lrange(key, 0, -1)))
        elif kind == "zset":
            parts.append(repr(await redis.zrange(key, 0, -1, withscores=True)))
        elif kind == "stream":
            parts.append(repr(await redis.xrange(key)))
    return "\n".join(parts)
