"""Async adapter over the blocking ``imapclient`` library, with a watchdog.

Every IMAP call of one connection runs on that connection's own worker thread
(a single-thread executor, so calls never interleave on the socket). The event
loop waits for each call with a deadline; when a call overruns it (a server that
accepted the TCP connection but never answers, a half-dead NAT path) the adapter
shuts the socket down from the loop, which unblocks the thread, abandons the
executor and raises :class:`ImapUnavailable`. The socket also carries a read
timeout of ``timeout_s`` (never ``None``: imapclient's default blocks forever),
so an abandoned thread ends on its own too.

Exceptions: everything the library or the network raises surfaces as
:class:`ImapUnavailable` (retryable: reconnect with backoff), except a refused
login, :class:`ImapAuthError` (still retried, but logged as a config problem).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import select
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from render_signal.common.errors import RetryableError

__all__ = ["ImapAdapter", "ImapAuthError", "ImapEndpoint", "ImapUnavailable", "SelectedMailbox"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Extra time the loop grants a call beyond the socket timeout before force-closing.
WATCHDOG_MARGIN_S = 2.0


def _at_eof(sock: socket.socket) -> bool:
    """True when the peer closed the connection (readable, and a peek reads nothing)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _swallow(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class ImapUnavailable(RetryableError):
    """The server is unreachable, silent, or broke the session: reconnect later."""


class ImapAuthError(ImapUnavailable):
    """The server refused our credentials."""


class ImapEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Where and how to connect."""

    host: str
    port: int
    username: str
    password: str
    use_ssl: bool = True
    starttls: bool = False
    timeout_s: float = 30.0
    ca_file: str = ""

    def tls_context(self) -> ssl.SSLContext:
        """A verifying client context (system CAs, or ``ca_file`` when given)."""
        return ssl.create_default_context(cafile=self.ca_file or None)


class SelectedMailbox(msgspec.Struct, frozen=True):
    """SELECT result: the identity of the UID space and where it is heading."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int


class ImapAdapter:
    """One IMAP connection, driven from asyncio. Create, ``await connect()``, use, ``close()``."""

    def __init__(self, endpoint: ImapEndpoint) -> None:
        self.endpoint = endpoint
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
        self._client: IMAPClient | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.closed = False

    # -- plumbing -------------------------------------------------------------------
    async def _call(self, op: str, fn: Callable[[], T], deadline_s: float | None = None) -> T:
        if self.closed:
            raise ImapUnavailable(f"{op}: connection already closed")
        limit = (
            deadline_s if deadline_s is not None else self.endpoint.timeout_s + WATCHDOG_MARGIN_S
        )
        future = asyncio.wrap_future(self._executor.submit(fn))
        try:
            done, _ = await asyncio.wait({future}, timeout=limit)
            if not done:
                # The watchdog: the thread is stuck past the deadline. Shutting the socket
                # down from here unblocks it; the connection is abandoned.
                logger.warning(
                    "IMAP: %s exceeded its %.1fs deadline; closing the socket", op, limit
                )
                future.add_done_callback(_swallow)  # the abandoned call's late error is moot
                self.close()
                raise ImapUnavailable(f"{op}: no answer within {limit:.1f}s")
            return future.result()
        except ImapUnavailable:
            raise
        except LoginError as exc:
            self.close()
            raise ImapAuthError(f"{op}: login refused: {exc}") from exc
        except asyncio.CancelledError:
            self.close()
            raise
        except Exception as exc:  # imaplib/ssl/socket errors of every kind
            self.close()
            raise ImapUnavailable(f"{op}: {type(exc).__name__}: {exc}") from exc

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ImapUnavailable("not connected")
        return self._client

    def close(self) -> None:
        """Force-close from the loop: shut the socket down, abandon the thread. Idempotent."""
        if self.closed:
            return
        self.closed = True
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                sock = client.socket()
                # Plain socket shutdown even for TLS: unblocks a recv() in the thread at once.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                client.socket().close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- session --------------------------------------------------------------------
    async def connect(self) -> None:
        """TCP (+TLS) connect, greeting, optional STARTTLS, LOGIN, CAPABILITY."""
        ep = self.endpoint

        def _open() -> tuple[IMAPClient, frozenset[str]]:
            context = ep.tls_context() if (ep.use_ssl or ep.starttls) else None
            client = IMAPClient(
                ep.host, port=ep.port, ssl=ep.use_ssl, ssl_context=context, timeout=ep.timeout_s
            )
            client.normalise_times = False  # keep INTERNALDATE timezone-aware
            # IMAPClient turns imaplib's protocol trace on (debug 5) and routes it to
            # the "imapclient.imaplib" logger, so every line and every fetched literal
            # is %r-formatted even though that logger discards it (a fifth of
            # ingest's CPU on IMAP mail in the bench profile). Only trace when asked.
            trace = logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG)
            client._imap.debug = 5 if trace else 0
            self._client = client
            if ep.starttls and not ep.use_ssl:
                client.starttls(context)
            client.login(ep.username, ep.password)
            caps = frozenset(c.decode().upper() for c in client.capabilities())
            return client, caps

        # connect + greeting + TLS + login: a few round trips, each bounded by the socket timeout.
        _, self.capabilities = await self._call(
            "connect", _open, deadline_s=2 * ep.timeout_s + WATCHDOG_MARGIN_S
        )

    @property
    def supports_idle(self) -> bool:
        return "IDLE" in self.capabilities

    async def select(self, mailbox: str) -> SelectedMailbox:
        info: dict[bytes, Any] = await self._call(
            "select", lambda: self.client.select_folder(mailbox)
        )
        return SelectedMailbox(
            mailbox,
            int(info.get(b"UIDVALIDITY", 0)),
            int(info.get(b"UIDNEXT", 0)),
            int(info.get(b"EXISTS", 0)),
        )

    async def search(self, criteria: list[Any] | str) -> list[int]:
        found: list[int] = await self._call("search", lambda: self.client.search(criteria))
        return sorted(int(u) for u in found)

    async def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        if not uids:
            return {}
        result: dict[int, dict[bytes, Any]] = await self._call(
            "fetch", lambda: self.client.fetch(uids, items)
        )
        return {int(k): v for k, v in result.items()}

    async def sizes(self, uids: list[int]) -> dict[int, tuple[int, dt.datetime | None]]:
        """RFC822.SIZE and INTERNALDATE per UID (expunged UIDs are absent)."""
        rows = await self.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])
        return {
            uid: (int(row.get(b"RFC822.SIZE", 0)), row.get(b"INTERNALDATE"))
            for uid, row in rows.items()
        }

    async def mark_seen(self, uids: list[int]) -> None:
        await self._call("store", lambda: self.client.add_flags(uids, [b"\\Seen"]))

    async def noop(self) -> None:
        await self._call("noop", lambda: self.client.noop())

    async def new_mail_reported(self) -> bool:
        """Whether the server reported new mail (EXISTS) since the last check.

        A message that arrives while a command runs is announced in that
        command's response, which imapclient leaves unread in imaplib's
        ``untagged_responses``; the server never repeats it at IDLE. NOOP first,
        so changes since the last command are reported too.
        """

        def _check() -> bool:
            self.client.noop()
            pending = self.client._imap.untagged_responses
            return bool(pending.pop("EXISTS", None)) | bool(pending.pop("RECENT", None))

        reported: bool = await self._call("noop", _check)
        return reported

    async def idle_start(self) -> None:
        await self._call("idle", lambda: self.client.idle())

    async def idle_check(self, wait_s: float) -> list[Any]:
        """Wait up to ``wait_s`` for untagged responses while in IDLE."""

        def _check() -> list[Any]:
            started = time.monotonic()
            found: list[Any] = self.client.idle_check(timeout=wait_s)
            # imapclient swallows EOF inside idle_check and returns []: an early empty
            # return on a readable socket means the server hung up.
            early = time.monotonic() - started < wait_s * 0.9
            if not found and early and _at_eof(self.client.socket()):
                raise ConnectionAbortedError("server closed the connection during IDLE")
            return found

        responses: list[Any] = await self._call(
            "idle_check", _check, deadline_s=wait_s + self.endpoint.timeout_s + WATCHDOG_MARGIN_S
        )
        return responses

    async def idle_done(self) -> None:
        await self._call("idle_done", lambda: self.client.idle_done())

    async def logout(self) -> None:
        """Polite LOGOUT, bounded; always ends closed."""
        if self.closed or self._client is None:
            self.close()
            return
        with contextlib.suppress(ImapUnavailable):
            await self._call("logout", lambda: self.client.logout(), deadline_s=2.0)
        self.close()
