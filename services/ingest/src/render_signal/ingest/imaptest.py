"""The dashboard's "test IMAP": log in and select the mailbox, with ingest's own settings.

Answered by ingest (``common.probes``): the exact error of each step and a
hint an operator can act on.
"""

from __future__ import annotations

import time

import msgspec
from render_signal.common.probes import ProbeAnswer
from render_signal.common.records import ProbeRequest
from render_signal.ingest.imap_client import (
    ImapAdapter,
    ImapAuthError,
    ImapEndpoint,
    ImapUnavailable,
)
from render_signal.ingest.settings import IngestSettings

__all__ = ["ImapTest", "hint_for"]


def hint_for(error: str, settings: IngestSettings) -> str:
    """What to check for an IMAP failure message."""
    text = error.lower()
    if "login" in text or "authentic" in text or "credentials" in text:
        return "check EMAIL_ADDRESS and EMAIL_PASSWORD (Gmail and Outlook need an app password)"
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "check IMAP_USE_SSL / IMAP_STARTTLS and the server certificate (IMAP_SSL_CA_FILE)"
    if "refused" in text or "no answer" in text or "timed out" in text or "unreachable" in text:
        return f"check IMAP_SERVER and IMAP_PORT ({settings.imap_server}:{settings.imap_port})"
    if "select" in text or "mailbox" in text:
        return f"check IMAP_MAILBOX ({settings.imap_mailbox!r} must exist)"
    if "name or service" in text or "getaddrinfo" in text or "nodename" in text:
        return f"IMAP_SERVER {settings.imap_server!r} does not resolve"
    return "see the error; the ingest log has the same line"


#: Socket timeout of the test's IMAP calls at least (connect allows two of them).
PROBE_TIMEOUT_S = 12.0


class ImapTest:
    """The ``imap`` probe handler."""

    def __init__(self, settings: IngestSettings, endpoint: ImapEndpoint | None) -> None:
        self.settings = settings
        self.endpoint = endpoint

    async def __call__(self, request: ProbeRequest) -> ProbeAnswer:
        settings = self.settings
        if self.endpoint is None:
            return ProbeAnswer(
                ok=False,
                summary="IMAP is not configured",
                hint="set IMAP_SERVER, EMAIL_ADDRESS and EMAIL_PASSWORD (and leave the"
                " watcher enabled: ENABLE_BACKGROUND_TASKS / IMAP_ENABLED)",
            )
        started = time.perf_counter()
        # Servers delay a refused login (Dovecot 2 s and more, Gmail too): a short
        # watcher timeout would report "timed out" instead of the real refusal.
        endpoint = msgspec.structs.replace(
            self.endpoint, timeout_s=max(self.endpoint.timeout_s, PROBE_TIMEOUT_S)
        )
        imap = ImapAdapter(endpoint)
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        try:
            await imap.connect()
            box = await imap.select(settings.imap_mailbox)
        except ImapAuthError as exc:
            return ProbeAnswer(
                ok=False,
                summary=f"login refused by {where}",
                error=str(exc),
                hint=hint_for("login", settings),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
        except ImapUnavailable as exc:
            return ProbeAnswer(
                ok=False,
                summary=f"could not use {where}",
                error=str(exc),
                hint=hint_for(str(exc), settings),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
        finally:
            await imap.logout()
        return ProbeAnswer(
            ok=True,
            summary=f"logged in to {where}; {box.name} holds {box.exists} message(s)",
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
