"""Loopback HTTP servers standing in for systems we cannot run.

* :class:`ProviderFiles` -- the file-transfer providers behind the Worker's
  ``PROVIDER_ORIGIN``: any GET path answers a small deterministic zip-typed
  body with the last path segment as the Content-Disposition filename.
* :class:`Receiver` -- the webhook receiver (Make.com or any HTTPS endpoint):
  records every request with its arrival time, answers 200 / 500 / 429 +
  Retry-After depending on the current phase (``set_phase``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

__all__ = ["Delivery", "ProviderFiles", "Receiver", "marker_of"]

MARKER = re.compile(r"E2E-[0-9a-f]+-\d+")


def marker_of(text: str) -> str | None:
    found = MARKER.search(text)
    return found.group(0) if found else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets bursts of new connections


class ProviderFiles:
    """Provider stand-in; ``body_bytes`` per file, content derived from the path."""

    def __init__(self, body_bytes: int = 2048) -> None:
        self.body_bytes = body_bytes
        self.requests = 0
        files = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                files.requests += 1
                path = unquote(urlsplit(self.path).path)
                name = path.rstrip("/").rsplit("/", 1)[-1] or "file"
                if "." not in name:
                    name += ".zip"
                data = files.content(path)
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header(
                    "Content-Disposition",
                    f"attachment; filename=\"download.zip\"; filename*=UTF-8''{quote(name)}",
                )
                self.end_headers()
                self.wfile.write(data)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def content(self, path: str) -> bytes:
        seed = hashlib.sha256(path.encode()).digest()
        return (seed * (self.body_bytes // len(seed) + 1))[: self.body_bytes]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProviderFiles:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Delivery:
    """One request the receiver got."""

    at: float
    status: int
    headers: dict[str, str]
    body: bytes
    marker: str | None
    json: dict[str, Any] = field(default_factory=dict)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class Receiver:
    """Recording webhook receiver with phases: ``ok`` (200), ``500``, ``429``."""

    def __init__(self, retry_after_s: int = 1) -> None:
        self.retry_after_s = retry_after_s
        self.phase = "ok"
        self.deliveries: list[Delivery] = []
        self.first_at: dict[str, float] = {}  # marker -> first accepted delivery time
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, extra = receiver._answer()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = {}
                subject = str(parsed.get("subject", "")) if isinstance(parsed, dict) else ""
                receiver._record(
                    Delivery(
                        time.time(),
                        status,
                        headers,
                        body,
                        marker_of(subject),
                        parsed if isinstance(parsed, dict) else {},
                    )
                )
                reply = b'{"success": true}' if status == 200 else b'{"success": false}'
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def set_phase(self, phase: str) -> None:
        assert phase in ("ok", "500", "429")
        with self.lock:
            self.phase = phase

    def _answer(self) -> tuple[int, dict[str, str]]:
        with self.lock:
            phase = self.phase
        if phase == "500":
            return 500, {}
        if phase == "429":
            return 429, {"Retry-After": str(self.retry_after_s)}
        return 200, {}

    def _record(self, delivery: Delivery) -> None:
        with self.changed:
            self.deliveries.append(delivery)
            if delivery.marker and 200 <= delivery.status < 300:
                self.first_at.setdefault(delivery.marker, delivery.at)
            self.changed.notify_all()

    def delivered_count(self, markers: set[str] | None = None) -> int:
        with self.lock:
            if markers is None:
                return len(self.first_at)
            return sum(1 for m in markers if m in self.first_at)

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def accepted(self) -> list[Delivery]:
        """Requests answered 2xx: what the receiver considers delivered."""
        return [d for d in self.snapshot() if 200 <= d.status < 300]

    def wait_for_markers(self, markers: set[str], timeout_s: float) -> dict[str, Delivery]:
        """First accepted delivery per marker; fails naming the missing ones."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                found: dict[str, Delivery] = {}
                for d in self.deliveries:
                    if d.marker in markers and 200 <= d.status < 300 and d.marker not in found:
                        found[d.marker] = d
                if len(found) == len(markers):
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(markers - found.keys())
                    raise AssertionError(
                        f"receiver got {len(found)}/{len(markers)} emails after {timeout_s}s;"
                        f" missing e.g. {missing[:5]}"
                    )
                self.changed.wait(min(left, 0.5))

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
