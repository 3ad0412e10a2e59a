"""The dashboard's "test the webhook": a clearly marked payload, sent for real.

Answered by notify (``common.probes``) so the test goes exactly where and how
a delivery would: the target resolved from the configuration now, its
delivery mode, TLS setting, signature and timeout. The body says it is a test
(``"test": true``, subject ``[render-signal test]``, source
``render_signal_test``) and the webhook-id starts with ``test_``, so a
receiver can tell it from an email. Like any call to the endpoint, its result
updates the target's health, so a fixed URL turns the verdict green at once.
"""

from __future__ import annotations

import json
import secrets
import time

from render_signal.common.configstore import ConfigWatcher
from render_signal.common.logs import mask_url
from render_signal.common.probes import ProbeAnswer
from render_signal.common.records import ProbeRequest
from render_signal.notify.delivery import WebhookSender
from render_signal.notify.liveconfig import load_live_config
from render_signal.notify.outcomes import Outcomes
from render_signal.notify.settings import NotifySettings
from render_signal.notify.targets import Target, current_target

__all__ = ["WebhookTest", "test_payload"]

HINTS = {
    "request_failed": "the receiver could not be reached: check the URL, DNS and TLS",
    "upstream_client_error": "the receiver refused the request: check the URL path and its auth",
    "upstream_server_error": "the receiver failed: look at its logs",
    "unsupported_media_type": "the receiver wants another content type: try webhook_delivery_mode",
    "bot_protection_denied": "a bot protection (Imunify360...) blocked the call: allowlist us",
    "remote_application_error": "the receiver answered 2xx but said success:false",
}


def test_payload(target: Target, now: float) -> bytes:
    """A body a receiver recognises as a test, with the original's field names."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    payload = {
        "test": True,
        "microsoft_graph_email_id": f"render-signal-test-{secrets.token_hex(4)}",
        "subject": "[render-signal test] webhook test from the dashboard",
        "receivedDateTime": stamp,
        "sender_address": "render-signal <test@render-signal.invalid>",
        "sender_email": "test@render-signal.invalid",
        "bodyPreview": "A test sent from the render-signal dashboard. No email behind it.",
        "email_content": "A test sent from the render-signal dashboard. No email behind it.",
        "source": "render_signal_test",
        "target": target.name,
    }
    return json.dumps(payload, ensure_ascii=False).encode()


class WebhookTest:
    """The ``webhook`` probe handler."""

    def __init__(
        self,
        settings: NotifySettings,
        watcher: ConfigWatcher,
        sender: WebhookSender,
        outcomes: Outcomes,
    ) -> None:
        self.settings = settings
        self.watcher = watcher
        self.sender = sender
        self.outcomes = outcomes

    async def __call__(self, request: ProbeRequest) -> ProbeAnswer:
        config = await load_live_config(self.watcher, self.settings)
        wanted = request.target or "default"
        stored = (
            Target(url="", target_class="custom")
            if wanted == "default"
            else Target(url="", target_class="rule", role="rule", rule_id=wanted)
        )
        target = current_target(stored, config)
        if not target.url:
            return ProbeAnswer(
                ok=False,
                summary=f"no URL configured for {wanted}",
                hint="set WEBHOOK_URL or the dashboard's webhook URL (or the rule's target)",
            )
        result = await self.sender.send(
            target,
            test_payload(target, time.time()),
            f"test_{request.id}",
            mode=config.delivery_mode,
            fallback_on_415=config.fallback_on_415,
            timeout_s=config.timeout_s,
            ssl_verify=config.ssl_verify,
        )
        # A test is a real call to the endpoint: its health (and the verdict) follows.
        await self.outcomes.health(target, result)
        ok = result.outcome == "success"
        return ProbeAnswer(
            ok=ok,
            summary=(
                f"{target.name} answered {result.status_code}"
                if result.status_code
                else f"{target.name} did not answer"
            ),
            url=mask_url(target.url),
            status_code=result.status_code,
            response_snippet=result.snippet,
            duration_ms=result.duration_ms,
            error=None if ok else result.failure_reason,
            hint=None if ok else HINTS.get(result.failure_reason or ""),
        )
