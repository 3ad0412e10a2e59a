"""One HTTP attempt to one target, classified for the retry policy.

Exception/outcome tree (never raises for HTTP or transport problems):

* ``success``: a 2xx, unless its body is a JSON object saying ``success:
  false`` (with ``accept_any_2xx``: any 2xx; with ``require_success_true``:
  only the original's 200 + JSON ``success: true``). A body that is not JSON,
  such as Make's plain ``Accepted``, says nothing: success;
* ``retry``: 5xx, 408, 429, timeouts and transport errors (``Retry-After``
  is parsed when present), and a 2xx saying ``success: false``
  (``remote_application_error``: the receiver failed, e.g. could not send its
  email, and may succeed later);
* ``gone``: 410 -- the target is disabled;
* ``fail``: any other 4xx, 415 after every mode, a 2xx without the
  ``success: true`` that ``require_success_true`` wants, or a destination the
  outbound policy refuses (``destination_refused``: the target resolves to a
  loopback/private/metadata address; retrying can't make it acceptable) --
  dead-lettered at once.

Connections go through :func:`~render_signal.common.outboundhttp.guarded_client`:
the target's name is resolved, checked and pinned at connect time. No
credential of ours travels with a webhook: ``MAKECOM_API_KEY`` belongs to the
Make API (:mod:`.makewatcher`), never to a target, since anyone who can add a
target would otherwise receive it (Make webhooks need no key: their URL is
the secret).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import signal
import time
from typing import Literal

import httpx
import msgspec
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.outboundhttp import guarded_client, refusal
from render_signal.notify.clock import Clock, SystemClock
from render_signal.notify.signing import webhook_headers
from render_signal.notify.targets import Target

__all__ = ["AttemptResult", "WebhookSender", "parse_retry_after"]

logger = logging.getLogger(__name__)

CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
MAX_RESPONSE_HEADERS = 30
_WS = re.compile(r"\s+")


class AttemptResult(msgspec.Struct, kw_only=True):
    outcome: Literal["success", "retry", "gone", "fail"]
    status_code: int | None = None
    snippet: str = ""
    failure_reason: str | None = None
    retry_after: float | None = None
    delivery_mode: str = "json"
    modes_tried: list[str] = []
    duration_ms: int = 0
    #: What was sent and received, for the timeline (no secret: Authorization is left out).
    request_headers: dict[str, str] = {}
    response_headers: dict[str, str] = {}


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _snippet(text: str) -> str:
    return _WS.sub(" ", text).strip()[:200]


def _failure_reason(status: int, body: str) -> str:
    lowered = body.lower()
    if "imunify360" in lowered or "bot-protection" in lowered or "bot protection" in lowered:
        return "bot_protection_denied"
    if status == 415:
        return "unsupported_media_type"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "upstream_server_error"
    if status >= 400:
        return "upstream_client_error"
    return "remote_application_error"


def _success_field(body: str) -> object:
    """The ``success`` member of a JSON object body, or None (not JSON, not an object)."""
    if not body.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("success") if isinstance(data, dict) else None


class WebhookSender:
    """Shared guarded httpx clients (one verifying TLS, one not), explicit timeouts, no
    redirects.

    Args:
        policy: where targets may connect (``CommonSettings.outbound_policy()``).
        signing_secret: Standard Webhooks secret ("" = unsigned).
        wall_clock: source of ``webhook-timestamp`` (receivers check it against
            real time, so tests keep the system clock here).
        fault: ``notify.after_send`` SIGKILLs the process right after a response.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        signing_secret: str = "",
        wall_clock: Clock | None = None,
        fault: str = "",
    ) -> None:
        self.signing_secret = signing_secret
        self.wall_clock = wall_clock or SystemClock()
        self.fault = fault
        self._clients = {
            verify: guarded_client(policy, verify=verify, timeout=30.0) for verify in (True, False)
        }

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def send(
        self,
        target: Target,
        body: bytes,
        msg_id: str,
        *,
        mode: str,
        fallback_on_415: bool,
        timeout_s: float,
        ssl_verify: bool,
    ) -> AttemptResult:
        modes = [mode] + ([m for m in ("json", "form") if m != mode] if fallback_on_415 else [])
        timestamp = int(self.wall_clock.now())
        headers = {
            "Accept": "application/json, text/plain, */*",
            "User-Agent": "render-signal-notify/1",
            **webhook_headers(self.signing_secret, msg_id, timestamp, body),
        }
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        client = self._clients[ssl_verify]
        tried: list[str] = []
        started = time.perf_counter()
        result = AttemptResult(outcome="retry", failure_reason="request_failed")
        for current in modes:
            tried.append(current)
            try:
                response = await client.post_bytes(
                    target.url,
                    content=body,
                    headers={**headers, "Content-Type": CONTENT_TYPES[current]},
                    timeouts=timeout,
                )
            except httpx.HTTPError as exc:
                refused = refusal(exc)
                result = AttemptResult(
                    outcome="fail" if refused else "retry",
                    failure_reason="destination_refused" if refused else "request_failed",
                    snippet=_snippet(f"{type(exc).__name__}: {refused or exc}"),
                    delivery_mode=current,
                )
                break
            self._fault_hook()
            result = self._classify(response, target, current)
            result.response_headers = {
                k: v[:200] for k, v in list(response.headers.items())[:MAX_RESPONSE_HEADERS]
            }
            if response.status_code != 415:
                break
        result.modes_tried = tried
        result.duration_ms = int((time.perf_counter() - started) * 1000)
        result.request_headers = {
            **{k: v for k, v in headers.items() if k.lower() != "authorization"},
            "Content-Type": CONTENT_TYPES[result.delivery_mode],
        }
        return result

    def _classify(self, response: httpx.Response, target: Target, mode: str) -> AttemptResult:
        status = response.status_code
        text = response.text
        snippet = _snippet(text)
        if 200 <= status < 300:
            said = None if target.accept_any_2xx else _success_field(text)
            strict_ok = status == 200 and said is True
            if said is False or (target.require_success_true and not strict_ok):
                return AttemptResult(
                    outcome="retry" if said is False else "fail",
                    status_code=status,
                    snippet=snippet,
                    failure_reason="remote_application_error",
                    delivery_mode=mode,
                )
            return AttemptResult(
                outcome="success", status_code=status, snippet=snippet, delivery_mode=mode
            )
        reason = _failure_reason(status, text)
        if status == 410:
            outcome: Literal["retry", "gone", "fail"] = "gone"
        elif status >= 500 or status in (408, 429):
            outcome = "retry"
        else:
            outcome = "fail"
        return AttemptResult(
            outcome=outcome,
            status_code=status,
            snippet=snippet,
            failure_reason=reason,
            retry_after=parse_retry_after(response.headers.get("retry-after"), time.time()),
            delivery_mode=mode,
        )

    def _fault_hook(self) -> None:
        if self.fault == "notify.after_send":
            logger.error("FAULT: notify.after_send -> SIGKILL")
            os.kill(os.getpid(), signal.SIGKILL)
