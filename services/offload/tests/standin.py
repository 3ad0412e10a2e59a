"""A programmable R2 Worker stand-in: a real HTTP server on loopback.

Modes (set ``server.mode``; may change between requests):

* ``ok`` — 200 ``{success:true, r2_url, object_key, original_filename}``
* ``500`` — HTTP 500 with a plain-text body
* ``hang`` — holds the request until :meth:`WorkerStandIn.release` (or ``hang_max_s``),
  then answers like ``ok``
* ``fail`` — 200 ``{success:false, error}``
* ``source502`` — 502 ``{success:false, error:"Source fetch failed: 404"}`` (the real
  Worker's answer when the provider fails)
* ``badjson`` — 200 with a body that is not JSON
* ``close`` — drops the connection without any response

Every request is recorded (arrival time, headers, JSON body) before answering.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answered_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle + delayed ACK stall
    # every keep-alive response ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        record = Recorded(time.time(), self.path, dict(self.headers.items()), body)
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(record)
            mode = owner.mode
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            self._answer(mode, body, record)
        finally:
            with owner.lock:
                owner.in_flight -= 1

    def _answer(self, mode: str, body: dict[str, Any], record: Recorded) -> None:
        owner = self.server.owner
        if mode == "hang" and (owner.hang_only is None or body.get("email_id") in owner.hang_only):
            owner.released.wait(owner.hang_max_s)
            mode = "ok"
        if mode == "close":
            self.close_connection = True
            return
        if mode == "500":
            self._send(500, b"internal error", "text/plain")
        elif mode == "source502":
            payload = {"success": False, "error": "Source fetch failed: 404"}
            self._send(502, json.dumps(payload).encode())
        elif mode == "fail":
            self._send(200, json.dumps({"success": False, "error": "nope"}).encode())
        elif mode == "badjson":
            self._send(200, b"{not json", "application/json")
        else:
            key = body.get("object_key", "")
            payload = {
                "success": True,
                "r2_url": f"{owner.public_base}/{key}",
                "object_key": key,
                "original_filename": owner.filename,
            }
            self._send(200, json.dumps(payload).encode())
        record.answered_at = time.time()

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: WorkerStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, SIGKILL) leaves a broken pipe: expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class WorkerStandIn:
    """Start with ``with WorkerStandIn() as worker:``; ``worker.url`` is the endpoint."""

    def __init__(self, mode: str = "ok", *, hang_max_s: float = 30.0) -> None:
        self.mode = mode
        self.hang_max_s = hang_max_s
        self.filename: str | None = "report final.zip"
        self.public_base = "https://r2.test.invalid"
        self.requests: list[Recorded] = []
        #: In ``hang`` mode, hang only requests for these email ids (None: all).
        self.hang_only: set[str] | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> WorkerStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
