"""Loopback HTTP servers standing in for systems we cannot run.

Both build on :class:`render_signal.devstack.receiver.Receiver`:

* :class:`ProviderFiles` -- the file-transfer providers behind the Worker's
  ``PROVIDER_ORIGIN``: any GET path answers a small deterministic zip-typed
  body with the last path segment as the Content-Disposition filename; paths
  containing a marker given to :meth:`ProviderFiles.slow` answer only after a
  delay (a huge Dropbox folder), and every GET is counted by path.
* :class:`WebhookReceiver` -- the webhook receiver (Make.com or any HTTPS
  endpoint): records every request with its arrival time, answers 200 / 500 /
  429 + Retry-After / 200 ``{"success": false}`` (the original's PHP receiver
  on an application error) depending on the current phase (``set_phase``), and
  indexes the first accepted delivery of each test email by its marker.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from urllib.parse import unquote, urlsplit

from render_signal.devstack.polling import wait_until
from render_signal.devstack.receiver import JSON, OK, Receiver, Recorded, Reply, download

__all__ = ["ProviderFiles", "WebhookReceiver", "marker_of"]

MARKER = re.compile(r"E2E-[0-9a-f]+-\d+")
FAILED = b'{"success": false}'
APP_ERROR = b'{"success": false, "message": "Failed to send RECADRAGE email"}'


def marker_of(delivery: Recorded) -> str | None:
    """The test email's marker in a delivery's payload subject, if any."""
    payload = delivery.json
    subject = str(payload.get("subject", "")) if isinstance(payload, dict) else ""
    found = MARKER.search(subject)
    return found.group(0) if found else None


class ProviderFiles(Receiver):
    """Provider stand-in; ``body_bytes`` per file, content derived from the path."""

    def __init__(self, body_bytes: int = 2048) -> None:
        super().__init__(self._file, history=0)
        self.body_bytes = body_bytes
        self.gets: Counter[str] = Counter()  # path -> GETs (under self.lock)
        self._slow: dict[str, float] = {}

    def slow(self, fragment: str, seconds: float) -> None:
        """Paths containing ``fragment`` answer after ``seconds`` (the body at the end)."""
        with self.lock:
            self._slow[fragment] = seconds

    def count(self, fragment: str) -> int:
        """GETs so far of paths containing ``fragment``."""
        with self.lock:
            return sum(n for path, n in self.gets.items() if fragment in path)

    def _file(self, request: Recorded) -> Reply:
        path = unquote(urlsplit(request.path).path)
        self.gets[path] += 1
        name = path.rstrip("/").rsplit("/", 1)[-1] or "file"
        if "." not in name:
            name += ".zip"
        reply = download(self.content(path), name)
        delay = next((s for f, s in self._slow.items() if f in path), None)
        if delay is None:
            return reply
        # Held (never released early), then answered: a transfer that takes this long.
        return Reply(reply.status, reply.body, reply.headers, hold=True, hold_max_s=delay)

    def content(self, path: str) -> bytes:
        seed = hashlib.sha256(path.encode()).digest()
        return (seed * (self.body_bytes // len(seed) + 1))[: self.body_bytes]

    @property
    def origin(self) -> str:
        return self.base_url


class WebhookReceiver(Receiver):
    """Recording webhook receiver with phases: ``ok`` (200), ``500``, ``429``, ``app_error``."""

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__(self._by_phase, on_request=self._index)
        self.retry_after_s = retry_after_s
        self.phase = "ok"
        #: Seconds each answer is held back (a slow receiver keeps notify's jobs in flight).
        self.delay_s = 0.0
        #: Per test email (marker): seconds its answers are held back instead.
        self.slow_markers: dict[str, float] = {}
        self.first_at: dict[str, float] = {}  # marker -> first accepted delivery time
        #: Notified (under :attr:`lock`) each time a test email is first delivered:
        #: a closed-loop load waits on it instead of polling.
        self.arrivals = threading.Condition(self.lock)

    def set_phase(self, phase: str) -> None:
        assert phase in ("ok", "500", "429", "app_error")
        self.phase = phase

    def _by_phase(self, request: Recorded) -> Reply:
        if self.phase == "500":
            return Reply(500, FAILED, JSON)
        if self.phase == "429":
            return Reply(429, FAILED, {**JSON, "Retry-After": str(self.retry_after_s)})
        if self.phase == "app_error":
            return Reply(200, APP_ERROR, JSON)
        delay = self.slow_markers.get(marker_of(request) or "", self.delay_s)
        if delay:
            return Reply(OK.status, OK.body, OK.headers, hold=True, hold_max_s=delay)
        return OK

    def _index(self, delivery: Recorded) -> None:  # under self.lock
        marker = marker_of(delivery)
        if marker and delivery.accepted and marker not in self.first_at:
            self.first_at[marker] = delivery.at
            self.arrivals.notify_all()

    def delivered_count(self, markers: set[str] | None = None) -> int:
        with self.lock:
            if markers is None:
                return len(self.first_at)
            return sum(1 for m in markers if m in self.first_at)

    def wait_for_markers(self, markers: set[str], timeout_s: float) -> dict[str, Recorded]:
        """First accepted delivery per marker; fails naming the missing ones."""

        def missing() -> str:
            with self.lock:
                left = sorted(markers - self.first_at.keys())
            got = len(markers) - len(left)
            return f"{got}/{len(markers)} emails at the receiver; missing e.g. {left[:5]}"

        wait_until(lambda: self.delivered_count(markers) == len(markers), timeout_s, missing)
        found: dict[str, Recorded] = {}
        for delivery in self.requests:
            marker = marker_of(delivery)
            if marker in markers and delivery.accepted:
                found.setdefault(marker, delivery)
        return found
