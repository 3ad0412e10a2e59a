"""A real recording HTTP receiver on loopback, with programmable responses.

Usage::

    with Receiver() as rx:
        rx.respond(500, times=3)           # next three requests get 500
        rx.respond(429, headers={"Retry-After": "7"})
        ...  # then the default (200, {"success": true})
        rx.wait_for(4)
        rx.requests[0].headers["webhook-id"]

        rx.hold()                          # the next request gets no reply ...
        rx.release()                       # ... until this (then the default)
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"success": true}'
    gate: threading.Event | None = None  # set -> reply (held until then)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 resets bursts of new connections


class Receiver:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.replies: collections.deque[Reply] = collections.deque()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._gate = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = receiver._record(
                    Recorded(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                if reply.gate is not None:
                    reply.gate.wait()
                    if reply.status == 0:
                        self.close_connection = True  # released: drop it unanswered
                        return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = _handle
            do_GET = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        with self._lock:
            for _ in range(times):
                self.replies.append(Reply(status, headers or {}, body))

    def hold(self) -> None:
        """The next request is recorded but not answered until :meth:`release`."""
        with self._lock:
            self.replies.append(Reply(status=0, gate=self._gate))

    def release(self) -> None:
        """Let held requests go (their connection is closed without a reply)."""
        self._gate.set()

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies.popleft() if self.replies else self.default

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"receiver got {len(self.requests)} requests, wanted {count}")

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers.get("webhook-id", "") for r in self.requests]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
