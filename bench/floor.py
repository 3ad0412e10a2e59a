"""The layout's floor: what the required layout costs per email with no work but the parse.

Target 2 of issue 16 asks the pipeline, R2 offload off, to deliver at least half
of the parse-only ceiling (ingest's parse alone, one loop) on the same two
cores. This measures the least that any implementation of the brief's layout
could spend per email there, so the target can be judged against it:

* an HTTP ingress on FastAPI + uvicorn (the gateway): bearer check, ``XADD`` of
  the body, 202 ``{"success": true}``;
* three consumers over Redis Streams (ingest, offload, notify), each a process
  reading batches with ``XREADGROUP`` and answering each batch with one
  pipeline of ``XADD`` + ``XACK``: the first runs ingest's own parse and
  analysis (the parse-only baseline's work) and forwards the subject and both
  bodies, the second forwards them as they are, the third POSTs a JSON webhook
  (subject, bodies) over keep-alive HTTP/1.1 written by hand, then acknowledges;
* the same Redis (AOF ``everysec``), load generator, closed loop and recording
  receiver as ``make bench``'s R2-off phase.

Nothing else: no dedup, no signatures, no timeline, no retries, no metrics, no
logs, no config. Streams are capped with ``MAXLEN ~`` on each ``XADD`` (the
closed loop keeps at most 40 emails in flight, far below the cap).

``uv run python -m bench.floor`` prints the floor's rate, its ratio to the
same run's parse-only ceiling, and CPU ms per email per process;
``make bench`` runs it after its R2-off phase.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import psutil
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from render_signal.common.events import MailRaw
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port
from render_signal.devstack.redisserver import RedisServer, find_redis_server
from render_signal.ingest.analysis import analyse, read_event
from render_signal.ingest.identity import email_id
from render_signal.ingest.message import ParseLimits

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "floor-token"
GROUP = "floor"
STREAMS = ("floor.raw", "floor.parsed", "floor.passed")
MAXLEN = 2000
BATCH = 64


class Fields(msgspec.Struct):
    """What the floor carries from parse to webhook (the webhook's JSON body too)."""

    subject: str
    text: str
    html: str


def _parse(raw: bytes, limits: ParseLimits) -> bytes:
    """The parse-only baseline's work on one email; what notify needs, encoded."""
    parsed = read_event(MailRaw(event_id="0", source="http_raw", received_at=0.0, raw=raw), limits)
    analyse(parsed)
    email_id(parsed, "http_raw")
    return msgspec.msgpack.encode(Fields(parsed.subject, parsed.body_text, parsed.body_html))


class Webhook:
    """POSTs over keep-alive HTTP/1.1 connections written by hand (a pool per batch)."""

    def __init__(self, url: str) -> None:
        host_port, _, path = url.removeprefix("http://").partition("/")
        host, _, port = host_port.partition(":")
        self.host, self.port, self.path = host, int(port), "/" + path
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, body: bytes) -> int:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        await reader.readexactly(length)
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return int(status_line.split()[1])


async def _hop(redis_url: str, source: str, target: str, work: str, hook_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    limits = ParseLimits()
    webhook = Webhook(hook_url) if work == "deliver" else None
    while True:
        # redis-py types the reply as a union of RESP2 and RESP3 shapes; this is RESP2's.
        reply: Any = await client.xreadgroup(GROUP, "c", {source: ">"}, count=BATCH, block=1000)
        if not reply:
            continue
        entries = reply[0][1]
        pipe = client.pipeline(transaction=False)
        if webhook is not None:
            bodies = []
            for _, fields in entries:
                found = msgspec.msgpack.decode(fields[b"f"], type=Fields)
                bodies.append(msgspec.json.encode(found))
            statuses = await asyncio.gather(*(webhook.post(body) for body in bodies))
            assert all(status == 200 for status in statuses), statuses
        else:
            for _, fields in entries:
                out = _parse(fields[b"raw"], limits) if work == "parse" else fields[b"f"]
                pipe.xadd(target, {"f": out}, maxlen=MAXLEN, approximate=True)
        pipe.xack(source, GROUP, *(entry_id for entry_id, _ in entries))
        await pipe.execute()


def _gateway_app(redis_url: str) -> Any:
    import redis.asyncio as aioredis

    app = FastAPI()
    client = aioredis.Redis.from_url(redis_url)

    @app.post("/api/ingress/raw")
    async def ingress(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"success": False}, status_code=401)
        raw = await request.body()
        await client.xadd(STREAMS[0], {"raw": raw}, maxlen=MAXLEN, approximate=True)
        return JSONResponse({"success": True}, status_code=202)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def _serve(role: str, redis_url: str, arg: str) -> None:
    if role == "gateway":
        import uvicorn

        uvicorn.run(_gateway_app(redis_url), host="127.0.0.1", port=int(arg), log_level="warning")
        return
    source, target, work = {
        "ingest": (STREAMS[0], STREAMS[1], "parse"),
        "offload": (STREAMS[1], STREAMS[2], "pass"),
        "notify": (STREAMS[2], "", "deliver"),
    }[role]
    try:
        import uvloop

        uvloop.run(_hop(redis_url, source, target, work, arg))
    except ImportError:  # pragma: no cover - a platform without uvloop wheels
        asyncio.run(_hop(redis_url, source, target, work, arg))


def run(
    parse_only_per_s: float, say: Callable[[str], None] = print, rate: float | None = None
) -> dict[str, Any]:
    """The floor's saturation, R2 offload off, against ``parse_only_per_s`` (same run);
    with ``rate``, an open loop at that many emails/s instead (CPU per email at a rate)."""
    from redis import Redis

    from bench.e2e_bench import Corpus, open_loop, own_cpu, process_cpu, saturation
    from tests.integration.harness.fakes import WebhookReceiver
    from tests.integration.harness.mail import HttpIngress
    from tests.integration.harness.processes import http_ok

    if find_redis_server() is None:
        return {"available": False, "reason": "redis-server not found"}
    workdir = Path(tempfile.mkdtemp(prefix="rs-floor-"))
    children: dict[str, subprocess.Popen[bytes]] = {}
    with RedisServer(workdir / "redis") as redis_server, WebhookReceiver() as receiver:
        try:
            with Redis.from_url(redis_server.url) as admin:
                for stream in STREAMS:
                    admin.xgroup_create(stream, GROUP, id="0", mkstream=True)
            port = free_port()
            for role, arg in (
                ("gateway", str(port)),
                ("ingest", ""),
                ("offload", ""),
                ("notify", receiver.url),
            ):
                children[role] = subprocess.Popen(
                    [sys.executable, "-m", "bench.floor", role, redis_server.url, arg],
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    cwd=ROOT,  # `-m bench.floor` from wherever the bench was started
                )
            ingress = HttpIngress(f"http://127.0.0.1:{port}", TOKEN)
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{port}/health"), 30, lambda: "floor gateway"
            )
            processes = {name: psutil.Process(child.pid) for name, child in children.items()}
            assert redis_server.process is not None
            processes["redis-server"] = psutil.Process(redis_server.process.pid)
            pipeline = SimpleNamespace(receiver=receiver, ingress=ingress)
            load = "closed loop" if rate is None else f"open loop, {rate}/s"
            say(f"floor bench: the layout's floor, HTTP ingress ({load})")
            cpu0 = {name: process_cpu(p) for name, p in processes.items()}
            own0, delivered0 = own_cpu(), receiver.delivered_count()
            result: dict[str, Any] = (
                saturation(pipeline, Corpus("f100"), "http", threads=4)  # type: ignore[arg-type]
                if rate is None
                else open_loop(pipeline, Corpus("f100"), "http", rate)  # type: ignore[arg-type]
            )
            delivered = receiver.delivered_count() - delivered0
            result["cpu_ms_per_email"] = {
                name: round((process_cpu(p) - cpu0[name]) / delivered * 1000, 2)
                for name, p in processes.items()
            }
            result["load_and_receiver_cpu_ms_per_email"] = round(
                (own_cpu() - own0) / delivered * 1000, 2
            )
            if rate is None:
                result["ratio_to_parse_only"] = round(result["per_s"] / parse_only_per_s, 3)
            say(f"  {result}")
            return {"available": True, **result}
        finally:
            for child in children.values():
                child.kill()
                child.wait(10)
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _serve(*sys.argv[1:4])
    elif len(sys.argv) == 3 and sys.argv[1] == "--rate":
        print(json.dumps(run(0.0, rate=float(sys.argv[2])), indent=2))
    else:
        from bench.e2e_bench import Corpus as _Corpus
        from bench.e2e_bench import parse_only

        sample = _Corpus("ba5e")
        ceiling = parse_only([sample.next()[1] for _ in range(50)])
        print(f"parse-only {ceiling:.1f}/s")
        print(json.dumps(run(ceiling), indent=2))
