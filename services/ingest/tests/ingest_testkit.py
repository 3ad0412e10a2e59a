"""Helpers of the ingest IMAP tests: test emails, a proxy that can go silent, what was published.

* :func:`make_email` -- a small RFC 822 message with a unique Message-ID;
* :class:`SilentProxy` -- forwards TCP to Dovecot until ``freeze()``: then it keeps
  accepting connections but never answers, and stops forwarding on open ones (a
  server that accepts and hangs). ``thaw()`` resumes;
* :func:`raw_events`, :func:`message_id_of`, :func:`mid`, :func:`metric` -- what
  the watcher published and counted (:func:`observe_mail_raw` when a parser runs).

The Dovecot server itself is :mod:`render_signal.devstack.dovecot`.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import uuid
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis
from render_signal.common.events import MailRaw, decode_entry
from render_signal.common.keys import Keys

__all__ = [
    "SilentProxy",
    "make_email",
    "message_id_of",
    "metric",
    "mid",
    "observe_mail_raw",
    "raw_events",
]


def make_email(subject: str, body: str = "hello", *, message_id: str | None = None) -> bytes:
    """A small RFC 822 message with a unique Message-ID (returned inside the bytes)."""
    mid = message_id or f"<{uuid.uuid4().hex}@test.render-signal>"
    return (
        f"From: Sender <sender@fromsmash.com>\r\n"
        f"To: alice@localhost\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {mid}\r\n"
        f"Date: Mon, 03 Feb 2026 10:00:00 +0100\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"{body}\r\n"
    ).encode()


class SilentProxy:
    """TCP forwarder to ``upstream_port`` that can turn into a black hole."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()
        for sock in self._held:
            with contextlib.suppress(OSError):
                sock.close()
        self._held.clear()

    def close(self) -> None:
        self.closed.set()
        self.thaw()
        with contextlib.suppress(OSError):
            self.listener.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _accept_loop(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.frozen.is_set():
                self._held.append(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while not self.closed.is_set():
                if self.frozen.is_set():
                    self.closed.wait(0.05)  # hold everything: no bytes in either direction
                    continue
                for key, _ in selector.select(timeout=0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def observe_mail_raw(redis: Redis, key_prefix: str) -> None:
    """Keep every ``mail.raw`` entry for :func:`raw_events` while a parser consumes it.

    The parser's consumer trims what every group has acknowledged, every second;
    a group that never reads (this one) keeps the entries it has not acked.
    """
    await redis.xgroup_create(Keys(key_prefix).mail_raw, "test-observer", id="0", mkstream=True)


async def raw_events(redis: Redis, key_prefix: str) -> list[MailRaw]:
    """Every MailRaw on this test's ``mail.raw`` stream, oldest first (with a parser
    running, only after :func:`observe_mail_raw`)."""
    entries: Any = await redis.xrange(Keys(key_prefix).mail_raw)
    return [decode_entry(fields, MailRaw) for _, fields in entries]


def message_id_of(event: MailRaw) -> str:
    for line in event.raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def mid(message: bytes) -> str:
    for line in message.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise ValueError("no Message-ID")
