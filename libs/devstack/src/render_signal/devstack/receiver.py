"""A recording HTTP receiver on loopback, with programmable answers.

It stands in for what the tests cannot run (a webhook receiver such as
Make.com, the Render API, the file-transfer providers, the R2 Worker when its
failures must be scripted) and is the dev sink of ``render-signal up``: a real
threaded HTTP server on 127.0.0.1, so the code under test makes real requests.

Every request is recorded (:class:`Recorded`) and answered with, in order:

1. the next queued reply, one per request (:meth:`Receiver.respond`,
   :meth:`Receiver.hold`);
2. otherwise ``Receiver.answer``: a fixed :class:`Reply`, or a function of the
   request that returns one (how a protocol stand-in answers per request).

A :class:`Reply` may be held until :meth:`Receiver.release` (or at most
``hold_max_s``), and may drop the connection without any response. Usage::

    with Receiver() as rx:
        rx.respond(500, times=3)                        # next three requests get 500
        rx.respond(429, headers={"Retry-After": "7"})
        ...                                             # then 200 {"success": true}
        rx.wait_for(4)
        rx.requests[0].headers["webhook-id"]            # header names: any case

        rx.hold()                                       # the next request gets no reply ...
        rx.release()                                    # ... and its connection is closed

``tls`` (an ``ssl.SSLContext``, e.g. from :mod:`.tlscert`) serves https instead.

Over 300 lines: the queue of replies, holding and the request handler are
one protocol stand-in; the helpers around them are a few lines each.
"""

from __future__ import annotations

import collections
import json
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, Self
from urllib.parse import quote

from render_signal.devstack.polling import wait_until

__all__ = ["JSON", "OK", "Headers", "Receiver", "Recorded", "Reply", "download"]

MAX_BODY_BYTES = 50 * 1024 * 1024  # read at most this much of a body (then close)
JSON: Mapping[str, str] = MappingProxyType({"Content-Type": "application/json"})


@dataclass(frozen=True)
class Reply:
    """One answer: status, headers, body; optionally held, or dropped."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Wait for :meth:`Receiver.release` before answering (at most ``hold_max_s``).
    hold: bool = False
    hold_max_s: float | None = None
    #: Close the connection without any response (after the hold, if any).
    drop: bool = False


#: The default answer: what Make.com and the original receivers answer.
OK = Reply(200, b'{"success": true}', JSON)


def download(data: bytes, filename: str) -> Reply:
    """A file as the transfer providers serve it (RFC 6266/5987 filename)."""
    disposition = f"attachment; filename=\"download.zip\"; filename*=UTF-8''{quote(filename)}"
    return Reply(200, data, {"Content-Type": "application/zip", "Content-Disposition": disposition})


class Headers(Mapping[str, str]):
    """Request headers as sent (names keep their case), looked up in any case."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._sent = dict(items)
        self._by_lower = {name.lower(): value for name, value in self._sent.items()}

    def __getitem__(self, name: str) -> str:
        return self._by_lower[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sent)

    def __len__(self) -> int:
        return len(self._sent)

    def __repr__(self) -> str:
        return f"Headers({self._sent!r})"


@dataclass(eq=False)
class Recorded:
    """One request the receiver got, and how it was answered."""

    method: str
    path: str
    headers: Headers
    body: bytes
    at: float = field(default_factory=time.time)
    #: The status chosen for it; None when the connection was dropped.
    status: int | None = None
    answered_at: float | None = None

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON; None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks ``webhook-id`` header ("" without one)."""
        return self.headers.get("webhook-id", "")

    @property
    def accepted(self) -> bool:
        """Answered 2xx: what a webhook sender counts as delivered."""
        return self.status is not None and 200 <= self.status < 300


Answer = Reply | Callable[[Recorded], Reply]


class Receiver:
    """The server. Start with ``with Receiver() as rx:`` or ``start()``/``stop()``.

    Args:
        answer: the reply when none is queued; a function of the request may
            compute it (it runs under :attr:`lock`, so keep it short).
        port: fixed port, or 0 for a free one.
        path: the path of :attr:`url`.
        history: how many requests :attr:`requests` keeps (None: all); a
            long-running sink keeps none.
        tls: serve https with this server context (handshakes happen as
            connections are accepted).
        on_request: called with each request once its reply is chosen, under
            :attr:`lock` (to index or persist requests as they arrive).
    """

    def __init__(
        self,
        answer: Answer = OK,
        *,
        port: int = 0,
        path: str = "/hook",
        history: int | None = None,
        on_request: Callable[[Recorded], None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answer = answer
        self.path = path
        self.on_request = on_request
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._queued: collections.deque[Reply] = collections.deque()
        self._requests: collections.deque[Recorded] = collections.deque(maxlen=history)
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.receiver = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def respond(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Queue ``status`` (with ``body`` and ``headers``) for the next ``times`` requests."""
        with self.lock:
            self._queued.extend([Reply(status, body, dict(headers or {}))] * times)

    def hold(self) -> None:
        """The next request is recorded but not answered until :meth:`release`, which
        closes its connection without a response."""
        with self.lock:
            self._queued.append(Reply(0, hold=True, drop=True))

    def release(self) -> None:
        """Let every held request (and any held later) go."""
        self._released.set()

    @property
    def requests(self) -> list[Recorded]:
        """The recorded requests, oldest first (a copy)."""
        with self.lock:
            return list(self._requests)

    def count(self) -> int:
        with self.lock:
            return len(self._requests)

    def ids(self) -> list[str]:
        """The ``webhook-id`` of each request, in arrival order."""
        return [request.webhook_id for request in self.requests]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Recorded]:
        """Block until ``count`` requests have arrived; return them all."""
        wait_until(
            lambda: self.count() >= count,
            timeout_s,
            lambda: f"{count} requests (got {self.count()})",
            interval_s=0.01,
        )
        return self.requests

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()  # held handlers must not keep the server from shutting down
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: _Handler, request: Recorded) -> None:
        with self.lock:
            if self._queued:
                reply = self._queued.popleft()
            else:
                reply = self.answer if isinstance(self.answer, Reply) else self.answer(request)
            request.status = None if reply.drop else reply.status
            self._requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.on_request is not None:
                self.on_request(request)
        try:
            if reply.hold:
                self._released.wait(reply.hold_max_s)
            if reply.drop:
                handler.close_connection = True
                return
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
            request.answered_at = time.time()
        finally:
            with self.lock:
                self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle + delayed ACK stall
    # every keep-alive response ~40 ms.
    disable_nagle_algorithm = True

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY_BYTES)) if length else b""
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the rest is unread: this connection is done
        headers = Headers(self.headers.items())
        self.server.receiver._serve(self, Recorded(self.command, self.path, headers, body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return  # the requests are recorded; keep test and console output quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets bursts of new connections
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, SIGKILL) leaves a broken pipe: expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
