"""One Redis connection shared by concurrent callers, replies matched in order.

RESP answers in request order, so any number of coroutines can share one
socket: each request is packed by hiredis (C), written at once, and a reader
task hands each caller its replies. A MULTI ... EXEC block is written in one
piece, so nothing interleaves with it. Commands that block or change the
connection's state (:func:`needs_own_connection`) must not come here.

Failures: a reply not seen within ``socket_timeout``, or a socket error, drops
the connection and fails every request waiting on it (their order on the wire
is then unknown) with redis-py's ``TimeoutError`` / ``ConnectionError``. A
caller cancelled while waiting leaves its slot in the queue, so the replies
after it still reach their callers. Used by :mod:`render_signal.common.redismux`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.exceptions import ConnectionError, DataError, InvalidResponse, TimeoutError

__all__ = ["ConnectFailed", "SharedConnection", "needs_own_connection", "pack"]


class ConnectFailed(ConnectionError):
    """The connection could not be opened, after redis-py's own connect retries.

    Not retried again by the caller: ``Connection.connect`` already ran the
    client's ``Retry`` (as redis-py's pool does when it hands out a connection),
    and retrying it around that would multiply the attempts, each up to the
    connect timeout, when the server's name or address does not answer.
    """


def _retryable(error: Exception) -> bool:
    """Whether the client's ``Retry`` may try again (a failed connect already has)."""
    return not isinstance(error, ConnectFailed)


#: Commands that may wait on the server: only a connection of one caller may carry them.
_BLOCKING = frozenset(
    {
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "WAIT",
        "WAITAOF",
    }
)
#: Commands that change a connection's state: never on a shared one.
_STATEFUL = frozenset(
    {
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "MONITOR",
        "WATCH",
        "MULTI",
        "EXEC",
        "DISCARD",
        "UNWATCH",
        "SELECT",
        "CLIENT",
        "HELLO",
        "AUTH",
        "RESET",
        "QUIT",
    }
)
_STREAM_READS = frozenset({"XREAD", "XREADGROUP"})
_NOT_ENOUGH_DATA = object()


def _name(args: tuple[Any, ...]) -> str:
    first = args[0]
    name = first.decode() if isinstance(first, bytes) else str(first)
    return name.split(" ", 1)[0].upper()


def needs_own_connection(args: tuple[Any, ...], *, blocking_ok: bool = False) -> bool:
    """True for a command that changes the connection's state, or that blocks
    (unless ``blocking_ok``: the connection has a single caller)."""
    name = _name(args)
    if name in _STATEFUL:
        return True
    if blocking_ok:
        return False
    if name in _BLOCKING:
        return True
    return name in _STREAM_READS and any(a in ("BLOCK", b"BLOCK") for a in args)


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP, as redis-py would pack it (``'XINFO CONSUMERS'`` split)."""
    first = args[0]
    if isinstance(first, str) and " " in first:
        args = (*first.split(), *args[1:])
    try:
        return bytes(hiredis.pack_command(args))
    except TypeError as exc:
        if not any(isinstance(a, memoryview | bytearray) for a in args):
            # bool, None, ...: redis-py's Encoder refuses them too
            raise DataError(f"Invalid input in command {_name(args)}: {exc}") from None
    return pack(tuple(bytes(a) if isinstance(a, memoryview | bytearray) else a for a in args))


class _Request:
    __slots__ = ("count", "future", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []


class SharedConnection:
    """One connection from ``pool``'s settings, shared by all non-blocking callers.

    The connection is opened (handshake, AUTH, TLS, database: redis-py's own
    ``Connection.connect``) on first use and again after it is dropped.
    """

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        timeout = pool.connection_kwargs.get("socket_timeout")
        self.timeout: float | None = float(timeout) if timeout else None
        retry = pool.connection_kwargs.get("retry")
        #: The client's retry policy (redis-py's, from the pool's settings).
        self._retry = retry if isinstance(retry, Retry) else None
        self._connection: AbstractConnection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[_Request] = deque()
        self._opening = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None
        #: Requests of this event-loop turn, written together at its end (see _send).
        self._outbox: list[bytes] = []

    async def _open(self) -> asyncio.StreamWriter:
        async with self._opening:
            if self._writer is not None:
                return self._writer
            connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            try:
                await connection.connect()
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise ConnectFailed(str(exc)) from exc
            reader, writer = connection._reader, connection._writer
            if reader is None or writer is None:  # pragma: no cover - connect() sets both
                raise ConnectionError("Redis connection did not open")
            parser = hiredis.Reader(
                protocolError=InvalidResponse,
                replyError=BaseParser.parse_error,
                notEnoughData=_NOT_ENOUGH_DATA,
            )
            self._connection, self._writer = connection, writer
            self._reading = asyncio.get_running_loop().create_task(
                self._read(connection, reader, parser), name="redis-shared-reader"
            )
            return writer  # type: ignore[no-any-return]

    async def _read(
        self, connection: AbstractConnection, reader: asyncio.StreamReader, parser: Any
    ) -> None:
        push = getattr(hiredis, "PushNotification", ())
        pending = self._pending
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("Connection closed by server.")
                parser.feed(data)
                while (reply := parser.gets()) is not _NOT_ENOUGH_DATA:
                    if push and isinstance(reply, push):
                        continue  # no subscriptions here; a server notice is not an answer
                    if not pending:
                        raise InvalidResponse("a reply nobody asked for")
                    request = pending[0]
                    request.replies.append(reply)
                    if len(request.replies) == request.count:
                        pending.popleft()
                        if not request.future.done():  # done: its caller was cancelled
                            request.future.set_result(request.replies)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._drop(connection, exc)

    def _drop(self, connection: AbstractConnection, exc: BaseException) -> None:
        """Close ``connection`` (if still current) and fail everything waiting on it."""
        if connection is not self._connection:
            return
        writer, reading = self._writer, self._reading
        self._connection = self._writer = self._reading = None
        self._outbox = []  # unsent requests of the dropped connection: failed below
        if writer is not None:
            writer.transport.abort()
        # Closed here, not by redis-py: without this its __del__ reports it unclosed.
        connection._reader = connection._writer = None
        if reading is not None and reading is not asyncio.current_task():
            reading.cancel()
        if not isinstance(exc, ConnectionError | TimeoutError):
            exc = ConnectionError(f"Error while reading from Redis: {exc!r}")
        while self._pending:
            request = self._pending.popleft()
            if not request.future.done():
                request.future.set_exception(exc)

    def _expire(self, connection: AbstractConnection, future: asyncio.Future[list[Any]]) -> None:
        if not future.done():
            self._drop(connection, TimeoutError("Timeout reading from Redis"))

    async def call(self, packed: bytes, count: int) -> list[Any]:
        """The ``count`` replies to ``packed`` (``count`` commands), retried as the
        client's ``Retry`` says on a dropped connection or a timeout; a failed
        connect is not retried again (:class:`ConnectFailed`)."""
        if self._retry is None:
            return await self._request(packed, count)
        return await self._retry.call_with_retry(
            lambda: self._request(packed, count), self._on_failure, _retryable
        )

    async def _request(self, packed: bytes, count: int) -> list[Any]:
        """Write ``packed`` (``count`` commands) and return their ``count`` replies."""
        writer = self._writer or await self._open()
        connection = self._connection
        assert connection is not None
        if writer.transport.is_closing():
            self._drop(connection, ConnectionError("Connection closed by server."))
            raise ConnectionError("Connection closed by server.")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append(_Request(future, count))
        self._send(writer, packed)
        timer = (
            loop.call_later(self.timeout, self._expire, connection, future)
            if self.timeout
            else None
        )
        try:
            replies = await future
        finally:
            if timer is not None:
                timer.cancel()
        for reply in replies:
            if isinstance(reply, ConnectionError):  # LOADING, max clients ...: retried
                self._drop(connection, reply)
                raise reply
        return replies

    def _send(self, writer: asyncio.StreamWriter, packed: bytes) -> None:
        """Queue ``packed`` for one write at the end of this event-loop turn.

        Why: callers that run in the same turn (the entries of one batch, each in
        its task, resumed by one read of their replies) then share one send; a
        loopback send costs tens of microseconds in the kernel whatever its size.
        """
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush, writer, self._outbox)
        self._outbox.append(packed)

    def _flush(self, writer: asyncio.StreamWriter, outbox: list[bytes]) -> None:
        if outbox is not self._outbox or writer is not self._writer:
            return  # the connection was dropped meanwhile: its requests were failed
        self._outbox = []
        writer.writelines(outbox)  # one send, the bodies not copied into a joined buffer

    def disconnect(self) -> None:
        """Close the connection (requests still waiting fail)."""
        if self._connection is not None:
            self._drop(self._connection, ConnectionError("Connection closed by client."))

    async def _on_failure(self, error: Exception) -> None:
        """Retry callback: the next attempt opens a fresh connection."""
        self.disconnect()
