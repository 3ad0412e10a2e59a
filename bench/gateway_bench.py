"""Gateway throughput: requests/s on /api/ping and /api/webhook_logs, as ratios to bare Starlette.

The gateway (``render_signal.gateway.main``) and a bare Starlette app answering
the same ``/api/ping`` JSON each run under uvicorn in a subprocess on loopback,
measured in the same run by the same bounded asyncio + httpx load loop, so the
ratios say what our middleware, session lookup and Redis reads cost, not how
fast this box is. Redis: ``REDIS_URL`` if set, else a private redis-server.

Usage: ``uv run python bench/gateway_bench.py`` (prints JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from render_signal.devstack.polling import eventually
from render_signal.devstack.ports import free_port

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "3"))
USER, PASSWORD = "bench", "bench-password-123"

BARE_APP = """
import time, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def ping(request):
    return JSONResponse({"status": "pong", "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ")})

app = Starlette(routes=[Route("/api/ping", ping)])
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning",
            access_log=False)
"""


async def _wait_ready(base: str, deadline_s: float = 20.0) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:

        async def ready() -> bool:
            try:
                return (await client.get("/api/ping")).status_code == 200
            except httpx.HTTPError:  # not listening yet
                return False

        await eventually(ready, deadline_s, f"the server at {base}", interval_s=0.1)


async def _load(base: str, path: str, cookies: dict[str, str] | None = None) -> float:
    """Requests/s over DURATION_S with CONCURRENCY workers (warm-up excluded)."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=base, cookies=cookies, limits=limits, timeout=10
    ) as client:
        for _ in range(20):  # warm-up
            (await client.get(path)).raise_for_status()
        done = 0
        stop_at = time.perf_counter() + DURATION_S

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                response = await client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - started)


async def _login(base: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match
        response = await client.post(
            "/login",
            data={"username": USER, "password": PASSWORD, "csrf_token": match.group(1)},
        )
        if response.status_code != 303:
            raise RuntimeError(f"login failed: {response.status_code}")
        return {"rs_session": client.cookies["rs_session"]}


async def _measure(redis_url: str, tmp: Path) -> dict[str, Any]:
    import redis.asyncio as aioredis
    from render_signal.common.keys import Keys
    from render_signal.common.records import WebhookAttempt
    from render_signal.common.timefmt import iso
    from render_signal.common.webhooklog import append_attempt

    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(redis_url)
    now = time.time()
    for i in range(200):
        entry = WebhookAttempt(
            timestamp=iso(now - i * 60),
            email_id=f"e{i}",
            webhook_id=f"msg_{i}",
            target="https://hook.eu2.make.com/***",
            target_class="make",
            status="success",
        )
        await append_attempt(client, Keys(prefix), entry)
    gw_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "RENDER_SIGNAL_ENV": "test",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "SECRET_KEY": "bench-secret-key-0123456789",
        "DASHBOARD_USER": USER,
        "DASHBOARD_PASSWORD": PASSWORD,
        "PROCESS_API_TOKEN": "bench-token-0123456789",
        "PORT": str(gw_port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "WEBHOOK_LINKS_FILE": str(tmp / "links.json"),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "render_signal.gateway.main"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-c", BARE_APP, str(bare_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    gw, bare = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{bare_port}"
    try:
        await _wait_ready(gw)
        await _wait_ready(bare)
        bare_rps = await _load(bare, "/api/ping")
        ping_rps = await _load(gw, "/api/ping")
        cookies = await _login(gw)
        logs_rps = await _load(gw, "/api/webhook_logs?days=7", cookies)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    return {
        "concurrency": CONCURRENCY,
        "duration_s": DURATION_S,
        "bare_starlette_ping_rps": round(bare_rps, 1),
        "gateway_ping_rps": round(ping_rps, 1),
        "gateway_webhook_logs_rps": round(logs_rps, 1),
        "ping_ratio_vs_bare": round(ping_rps / bare_rps, 3),
        "webhook_logs_ratio_vs_bare": round(logs_rps / bare_rps, 3),
    }


def run() -> dict[str, Any]:
    """Run the benchmark and return its numbers."""
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        url = os.environ.get("REDIS_URL")
        if url:
            return asyncio.run(_measure(url, Path(tmp)))
        from render_signal.devstack.redisserver import RedisServer

        server = RedisServer(Path(tmp) / "redis", aof=False).start()
        try:
            return asyncio.run(_measure(server.url, Path(tmp)))
        finally:
            server.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
