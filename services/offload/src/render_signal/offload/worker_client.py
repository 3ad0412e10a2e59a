"""Client for the R2 Worker: one POST per link, bounded retries, breaker, global cap.

Contract (docs/architecture.md, "R2 Worker"): ``POST R2_FETCH_ENDPOINT`` with
``Content-Type: application/json`` and ``X-R2-FETCH-TOKEN``; body
``{source_url, object_key, bucket, provider, email_id}``. Success is HTTP 200
with ``{success: true, r2_url, ...}`` and a non-empty ``r2_url``; anything else
means "keep the source URL".

Failure handling:

* **Retried** (``retries`` extra attempts, exponential backoff with full
  jitter): connection errors (refused, reset, closed mid-response) and 5xx,
  except the Worker's JSON ``502/504 {success:false}`` ("Source fetch failed"),
  which is the source's fault: no retry, no breaker failure.
* **Not retried**: read/write timeouts (the Worker may still be working; a
  second wait would double the cost of a dead Worker), 4xx, redirects (never
  followed), ``success:false``, invalid JSON.
* Every failed attempt (timeouts, transport errors, 5xx, other non-200 without
  a JSON refusal, invalid JSON) counts towards the circuit breaker; while it is
  open no request is made at all. A well-formed ``{success:false}`` JSON
  answer below 500 (source 404, HTML preview, too large, host refused) is the
  Worker refusing *that source*: the link falls back, but it counts as a
  healthy answer, so bad links in mail don't trip the breaker for good ones.
* A global semaphore caps Worker calls in flight across all emails.
* The endpoint (``R2_FETCH_ENDPOINT``) is checked at start without DNS and at
  every connect on its resolved address (``common.outboundhttp``): a refused
  address is a transport error like any other (retried, counted, then fallback).

:meth:`WorkerClient.offload` never raises for Worker problems: it returns a
:class:`WorkerResult` whose ``reason`` names the fallback cause.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx
import msgspec
from render_signal.common.errors import PermanentError, RetryableError
from render_signal.common.logs import mask_url
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.outboundhttp import guarded_client
from render_signal.offload.breaker import CircuitBreaker
from render_signal.offload.metrics import BREAKER_OPEN, WORKER_SECONDS

__all__ = ["WorkerClient", "WorkerResult", "timeout_for"]

logger = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()

USER_AGENT = "render-signal/offload"


class WorkerResult(msgspec.Struct, frozen=True):
    """``r2_url`` set on success; otherwise ``reason`` is a fallback reason label."""

    r2_url: str | None = None
    original_filename: str | None = None
    reason: str | None = None
    attempts: int = 0


class _Retryable(RetryableError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _Final(PermanentError):
    def __init__(self, reason: str, detail: str, *, worker_fault: bool = True) -> None:
        super().__init__(detail)
        self.reason = reason
        self.worker_fault = worker_fault


def _is_refusal(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("success") is False


def timeout_for(source_url: str, timeout_s: float, folder_timeout_s: float) -> float:
    """15 s normally, 120 s for Dropbox ``/scl/fo/`` folder links (configurable)."""
    return folder_timeout_s if "/scl/fo/" in source_url else timeout_s


class WorkerClient:
    """Posts offload requests to one Worker endpoint."""

    def __init__(
        self,
        *,
        endpoint: str,
        token: str,
        bucket: str,
        timeout_s: float,
        folder_timeout_s: float,
        retries: int,
        concurrency: int,
        breaker: CircuitBreaker,
        policy: OutboundPolicy,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 2.0,
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.timeout_s = timeout_s
        self.folder_timeout_s = folder_timeout_s
        self.retries = retries
        self.breaker = breaker
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._client = guarded_client(
            policy,
            timeout=timeout_s,
            headers={
                "Content-Type": "application/json",
                "X-R2-FETCH-TOKEN": token,
                "User-Agent": USER_AGENT,
            },
            limits=httpx.Limits(max_connections=max(1, concurrency) * 2),
        )
        BREAKER_OPEN.set(0)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def probe(self) -> tuple[int | None, str, float]:
        """POST an empty request: the Worker checks the token before the body, so
        400 means "reached and authorised", 401 a wrong token. Returns
        ``(status or None, error or response text, seconds)``; never raises."""
        started = time.perf_counter()
        try:
            response = await self._client.post(self.endpoint, json={}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started
        return response.status_code, response.text[:200], time.perf_counter() - started

    async def offload(
        self, *, source_url: str, object_key: str, provider: str, email_id: str
    ) -> WorkerResult:
        """Ask the Worker to copy ``source_url`` into R2 at ``object_key``."""
        body = {
            "source_url": source_url,
            "object_key": object_key,
            "bucket": self.bucket,
            "provider": provider,
            "email_id": email_id,
        }
        timeout = timeout_for(source_url, self.timeout_s, self.folder_timeout_s)
        attempt = 0
        reason = "transport"
        async with self._semaphore:
            while True:
                if not self.breaker.allow():
                    return WorkerResult(reason="breaker_open", attempts=attempt)
                attempt += 1
                try:
                    r2_url, filename = await self._post(body, timeout)
                except _Retryable as exc:
                    self._failed()
                    reason = exc.reason
                    logger.warning(
                        "R2_TRANSFER: attempt %d for %s failed (%s)",
                        attempt,
                        mask_url(source_url),
                        exc,
                    )
                    if attempt > self.retries:
                        return WorkerResult(reason=reason, attempts=attempt)
                    delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
                    await asyncio.sleep(random.uniform(0, delay))  # full jitter
                    continue
                except _Final as exc:
                    if exc.worker_fault:
                        self._failed()
                    else:
                        self.breaker.record_success()  # the Worker answered sensibly
                    logger.warning(
                        "R2_TRANSFER: %s refused or failed (%s)", mask_url(source_url), exc
                    )
                    return WorkerResult(reason=exc.reason, attempts=attempt)
                except asyncio.CancelledError:
                    self.breaker.release_probe()
                    raise
                self.breaker.record_success()
                BREAKER_OPEN.set(0)
                return WorkerResult(r2_url=r2_url, original_filename=filename, attempts=attempt)

    def _failed(self) -> None:
        was = self.breaker.state
        self.breaker.record_failure()
        if self.breaker.state == "open":
            BREAKER_OPEN.set(1)
            if was != "open":
                logger.warning(
                    "R2_TRANSFER: circuit breaker open for %.0fs after %d consecutive failures;"
                    " links fall back to their source URL",
                    self.breaker.cooldown_s,
                    self.breaker.failure_threshold,
                )

    async def _post(self, body: dict[str, str], limit_s: float) -> tuple[str, str | None]:
        started = time.perf_counter()
        try:
            # httpx timeouts are per phase; asyncio.timeout bounds the whole call.
            async with asyncio.timeout(limit_s):
                response = await self._client.post_bytes(
                    self.endpoint,
                    content=_encoder.encode(body),
                    timeouts=httpx.Timeout(limit_s, connect=min(limit_s, 5.0)),
                )
        except (TimeoutError, httpx.ReadTimeout, httpx.WriteTimeout) as exc:
            raise _Final("timeout", f"timed out after {limit_s:.1f}s") from exc
        except httpx.TransportError as exc:  # connect errors, resets, pool timeouts
            raise _Retryable("transport", type(exc).__name__) from exc
        finally:
            WORKER_SECONDS.observe(time.perf_counter() - started)
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 500:
            if response.status_code in (502, 504) and _is_refusal(payload):
                # The Worker's own JSON "Source fetch failed": the *source* is bad, not the
                # Worker; retrying a dead link or tripping the breaker would punish others.
                raise _Final(
                    "http_status",
                    f"HTTP {response.status_code} ({str(payload.get('error'))[:120]})",
                    worker_fault=False,
                )
            raise _Retryable("http_status", f"HTTP {response.status_code}")
        if payload is None:
            if response.status_code != 200:
                raise _Final("http_status", f"HTTP {response.status_code}")
            raise _Final("invalid_response", "invalid JSON")
        if _is_refusal(payload):
            # A well-formed refusal (source 404, HTML preview, too large) proves the
            # Worker is alive: fall back for this link without tripping the breaker.
            raise _Final(
                "http_status" if response.status_code != 200 else "invalid_response",
                f"HTTP {response.status_code}, success:false ({str(payload.get('error'))[:120]})",
                worker_fault=False,
            )
        if response.status_code != 200:
            raise _Final("http_status", f"HTTP {response.status_code}")
        if not isinstance(payload, dict) or payload.get("success") is not True:
            raise _Final("invalid_response", "success is not true")
        r2_url = payload.get("r2_url")
        if not isinstance(r2_url, str) or not r2_url:
            raise _Final("invalid_response", "no r2_url")
        filename = payload.get("original_filename")
        return r2_url, filename if isinstance(filename, str) and filename else None
