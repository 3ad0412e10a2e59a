"""Operator tests run by the service that owns the resource, with its real settings.

The dashboard's "test the webhook", "test IMAP" and "test the Worker" buttons
must report what a real attempt meets, so the gateway does not imitate them:
it appends a :class:`~render_signal.common.records.ProbeRequest` to
``<p>probe:<service>`` (:func:`request_probe`) and waits (BLPOP, bounded) for
the :class:`~render_signal.common.records.ProbeResult` that one replica of that
service pushes to ``<p>probe:result:<id>`` (:class:`ProbeResponder`, a
consumer group so exactly one replica answers). No replica running means no
answer: the caller says so rather than guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from render_signal.common.keys import Keys
from render_signal.common.records import ProbeKind, ProbeRequest, ProbeResult
from render_signal.common.streams import Entry

__all__ = ["ProbeAnswer", "ProbeHandler", "ProbeResponder", "request_probe"]

logger = logging.getLogger(__name__)

GROUP = "probes"
RESULT_TTL_S = 300
#: A request older than this when read is stale (the asker gave up): not run.
MAX_AGE_S = 60.0


class ProbeAnswer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a handler found; the responder adds who answered (``ProbeResult``)."""

    ok: bool
    summary: str
    error: str | None = None
    hint: str | None = None
    url: str | None = None
    status_code: int | None = None
    response_snippet: str | None = None
    duration_ms: int | None = None


ProbeHandler = Callable[[ProbeRequest], Awaitable[ProbeAnswer]]
_request_decoder = msgspec.json.Decoder(ProbeRequest)
_result_decoder = msgspec.json.Decoder(ProbeResult)


async def request_probe(
    redis: Redis, keys: Keys, service: str, kind: ProbeKind, *, target: str = "", timeout_s: float
) -> ProbeResult | None:
    """Ask ``service`` to run the test; its result, or None if no replica answered in time."""
    request = ProbeRequest(
        id=secrets.token_hex(8), kind=kind, requested_at=time.time(), target=target
    )
    await redis.xadd(
        keys.probe_requests(service),
        {"data": msgspec.json.encode(request)},
        maxlen=1000,
        approximate=True,
    )
    deadline = time.monotonic() + timeout_s
    # Short BLPOPs: each stays under the client's socket timeout (redisclient).
    while (left := deadline - time.monotonic()) > 0:
        reply = await redis.blpop(
            [keys.probe_result(request.id)], timeout=max(1, min(2, int(left)))
        )
        if reply:
            return _result_decoder.decode(reply[1])
    return None


class ProbeResponder:
    """Answers probe requests for one service (run it as a component)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        service: str,
        instance: str,
        handlers: Mapping[ProbeKind, ProbeHandler],
        timeout_s: float = 30.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.stream = keys.probe_requests(service)
        self.service = service
        self.instance = instance
        self.handlers = dict(handlers)
        self.timeout_s = timeout_s

    async def _answer(self, request: ProbeRequest) -> ProbeResult:
        handler = self.handlers.get(request.kind)
        if handler is None:
            answer = ProbeAnswer(ok=False, summary=f"{self.service} cannot test {request.kind}")
        else:
            try:
                answer = await asyncio.wait_for(handler(request), self.timeout_s)
            except TimeoutError:
                answer = ProbeAnswer(
                    ok=False, summary="no answer", error=f"timed out after {self.timeout_s:.0f}s"
                )
        return ProbeResult(
            id=request.id,
            service=self.service,
            instance=self.instance,
            **msgspec.structs.asdict(answer),
        )

    async def run(self, stop: asyncio.Event) -> None:
        consumer = f"{self.service}-{self.instance}"
        while not stop.is_set():
            try:
                with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                    await self.redis.xgroup_create(self.stream, GROUP, id="$", mkstream=True)
                response: list[tuple[bytes, list[Entry]]] = await self.redis.xreadgroup(  # type: ignore[assignment]
                    GROUP, consumer, {self.stream: ">"}, count=4, block=1000
                )
                for _stream, entries in response or []:
                    for entry_id, fields in entries:
                        await self._handle(fields.get(b"data", b""))
                        await self.redis.xack(self.stream, GROUP, entry_id)
            except (RedisError, OSError) as exc:
                logger.warning("PROBE: %s responder waiting for Redis (%s)", self.service, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _handle(self, raw: bytes) -> None:
        try:
            request = _request_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if time.time() - request.requested_at > MAX_AGE_S:
            return
        result = await self._answer(request)
        logger.info(
            "PROBE: %s test %s: %s (%s)",
            request.kind,
            "ok" if result.ok else "failed",
            result.summary,
            result.error or "no error",
        )
        key = self.keys.probe_result(request.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, msgspec.json.encode(result))
            pipe.expire(key, RESULT_TTL_S)
            await pipe.execute()
