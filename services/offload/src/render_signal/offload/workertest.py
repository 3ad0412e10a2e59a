"""The dashboard's "test the Worker": can offload reach the R2 Worker, and is its token right?

Answered by offload (``common.probes``), with its real endpoint and token: an
empty request is refused by the Worker after the token check, which tells
reach and authorisation apart without copying anything.
"""

from __future__ import annotations

from render_signal.common.logs import mask_url
from render_signal.common.probes import ProbeAnswer
from render_signal.common.records import ProbeRequest
from render_signal.offload.settings import OffloadSettings
from render_signal.offload.worker_client import WorkerClient

__all__ = ["WorkerTest"]


class WorkerTest:
    """The ``worker`` probe handler."""

    def __init__(self, settings: OffloadSettings, client: WorkerClient | None) -> None:
        self.settings = settings
        self.client = client

    async def __call__(self, request: ProbeRequest) -> ProbeAnswer:
        if self.client is None:
            return ProbeAnswer(
                ok=False,
                summary="R2 offload is disabled: links keep their source URL",
                hint="set R2_FETCH_ENABLED=true, R2_FETCH_ENDPOINT and R2_FETCH_TOKEN",
            )
        status, text, seconds = await self.client.probe()
        url = mask_url(self.settings.endpoint)
        duration_ms = int(seconds * 1000)
        if status == 400:
            return ProbeAnswer(
                ok=True,
                summary="the Worker answered and accepted the token",
                url=url,
                status_code=status,
                duration_ms=duration_ms,
            )
        if status is None:
            summary, hint = (
                "the Worker could not be reached",
                ("check R2_FETCH_ENDPOINT and that the Worker is deployed"),
            )
            return ProbeAnswer(
                ok=False, summary=summary, error=text, hint=hint, url=url, duration_ms=duration_ms
            )
        if status in (401, 403):
            summary = "the Worker refused the token"
            hint = "R2_FETCH_TOKEN must match the Worker's secret"
        else:
            summary = f"the Worker answered {status}"
            hint = "look at the Worker's logs (wrangler tail); it may be misconfigured"
        return ProbeAnswer(
            ok=False,
            summary=summary,
            response_snippet=text,
            hint=hint,
            url=url,
            status_code=status,
            duration_ms=duration_ms,
        )
