"""A local recording webhook receiver for dev mode.

When no ``WEBHOOK_URL`` is configured, ``render-signal up`` starts this sink on
loopback and points notify at it, so a newcomer sees a full delivery without a
Make.com account. Every request is appended to a JSON-lines file and answered
``200 {"success": true}`` (the original's success shape).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["RecordingSink"]


class RecordingSink:
    """Threaded HTTP server on 127.0.0.1 recording requests to ``record_path``."""

    def __init__(self, record_path: Path, port: int = 0) -> None:
        self.record_path = record_path
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 50 * 1024 * 1024))
                sink.record(self.path, dict(self.headers.items()), body)
                reply = b'{"success": true, "message": "recorded by the dev sink"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return  # requests are in the record file; keep the console quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        entry = {
            "received_at": time.time(),
            "path": path,
            "webhook_id": headers.get("webhook-id") or headers.get("Webhook-Id"),
            "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
            "body": body.decode("utf-8", errors="replace"),
        }
        with self._lock, self.record_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def start(self) -> RecordingSink:
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
