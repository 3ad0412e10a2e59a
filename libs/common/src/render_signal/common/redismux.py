"""A redis-py client whose non-blocking commands share one multiplexed connection.

Why (issue 16): under the bench load redis-py 8's per-command path (pool
checkout and release, a retry wrapper, observability hooks, an
``asyncio.timeout`` per reply, Python RESP packing) cost 180 us of client CPU
per round trip and about 100 us per extra command in a pipeline, against
40 us for the same SET on a plain asyncio connection (``bench/README.md``,
seventh pass). Every email makes about a dozen round trips per service, many
of them pipelines of 5 to 12 commands, so this was the largest cost left in
our own code.

How: :class:`MultiplexedRedis` is redis-py's ``Redis`` with the same commands,
reply callbacks, scripts, exceptions and retry policy; only the wire changes.
Commands and pipelines that do not block go through one
:class:`~render_signal.common.sharedconnection.SharedConnection` (packed by
hiredis in C, written at once, replies matched in order by a reader task).
Anything that needs a connection of its own still takes one from the pool, as
before: blocking reads (``XREADGROUP ... BLOCK``, ``BLPOP`` ...), pipelines
that ``WATCH``, pub/sub. On a dropped connection or a timeout the client's
``Retry`` reconnects and retries as redis-py would.
"""

from __future__ import annotations

import inspect
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import ConnectionPool
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.exceptions import ExecAbortError, ResponseError, WatchError
from render_signal.common.sharedconnection import SharedConnection, needs_own_connection, pack

__all__ = ["MultiplexedPipeline", "MultiplexedRedis"]


async def _apply(callbacks: Any, args: tuple[Any, ...], reply: Any, options: Any) -> Any:
    """redis-py's reply callback for ``args[0]`` (the same parsing as its own path)."""
    options.pop("keys", None)
    options.pop(NEVER_DECODE, None)
    command = args[0]
    if command in callbacks:
        reply = callbacks[command](reply, **options)
        if inspect.isawaitable(reply):
            reply = await reply
    return reply


class MultiplexedRedis(Redis):
    """redis-py's asyncio client; non-blocking commands share one connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = SharedConnection(self.connection_pool)
        #: Set on a :meth:`lane`: its one caller may block on its connection.
        self.blocking_ok = False

    def lane(self) -> MultiplexedRedis:
        """A client on the same server whose commands, blocking reads included, all
        go over one connection of its own: for a single loop that blocks (a
        consumer's reads), so that its reads skip the pool too. Anything else sent
        on it while a read blocks waits behind the read. Close it with ``aclose``.
        """
        lane = MultiplexedRedis(connection_pool=self.connection_pool)
        lane.blocking_ok = True
        return lane

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.single_connection_client or needs_own_connection(
            args, blocking_ok=self.blocking_ok
        ):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        (reply,) = await self.shared.call(pack(args), 1)
        if isinstance(reply, ResponseError):
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise reply
        options.pop(EMPTY_RESPONSE, None)
        return await _apply(self.response_callbacks, args, reply, options)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = MultiplexedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint, self.shared
        )
        pipe.blocking_ok = self.blocking_ok
        return pipe

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        self.shared.disconnect()
        await super().aclose(close_connection_pool)


class MultiplexedPipeline(Pipeline):
    """redis-py's pipeline; executed on the shared connection unless it must not be."""

    def __init__(
        self,
        connection_pool: ConnectionPool,
        response_callbacks: Any,
        transaction: bool,
        shard_hint: str | None,
        shared: SharedConnection,
    ) -> None:
        super().__init__(connection_pool, response_callbacks, transaction, shard_hint)
        self.shared = shared
        self.blocking_ok = False

    def _own_connection(self) -> bool:
        return (
            self.watching
            or self.connection is not None
            or any(
                EMPTY_RESPONSE in options
                or needs_own_connection(args, blocking_ok=self.blocking_ok)
                for args, options in self.command_stack
            )
        )

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if not stack or self._own_connection():
            return await super().execute(raise_on_error)
        try:
            if self.scripts:
                await self.load_scripts()  # type: ignore[no-untyped-call]
            transaction = self.is_transaction or self.explicit_transaction
            packed = [pack(args) for args, _ in stack]
            if transaction:
                packed = [pack(("MULTI",)), *packed, pack(("EXEC",))]
            replies = await self.shared.call(b"".join(packed), len(packed))
            if transaction:
                return await self._transaction_replies(replies, raise_on_error)
            return await self._pipeline_replies(replies, raise_on_error)
        finally:
            await self.reset()  # type: ignore[no-untyped-call]

    async def _pipeline_replies(self, replies: list[Any], raise_on_error: bool) -> list[Any]:
        stack = self.command_stack
        response = [
            reply
            if isinstance(reply, ResponseError)
            else await _apply(self.response_callbacks, args, reply, options)
            for reply, (args, options) in zip(replies, stack, strict=True)
        ]
        if raise_on_error:
            self.raise_first_error(stack, response)
        return response

    async def _transaction_replies(self, replies: list[Any], raise_on_error: bool) -> list[Any]:
        """As redis-py's ``_execute_transaction`` reads MULTI, the QUEUED replies and EXEC."""
        stack = self.command_stack
        errors: list[tuple[int, ResponseError]] = []
        if isinstance(replies[0], ResponseError):
            errors.append((0, replies[0]))
        for index, (args, _) in enumerate(stack):
            queued = replies[index + 1]
            if isinstance(queued, ResponseError):
                self.annotate_exception(queued, index + 1, args)
                errors.append((index, queued))
        response = replies[-1]
        if isinstance(response, ExecAbortError):
            if errors:
                raise errors[0][1] from response
            raise response
        if isinstance(response, ResponseError):
            raise response
        if response is None:
            raise WatchError("Watched variable changed.")
        for index, error in errors:
            response.insert(index, error)
        if len(response) != len(stack):
            self.shared.disconnect()
            raise ResponseError("Wrong number of response items from pipeline execution")
        if raise_on_error:
            self.raise_first_error(stack, response)
        return [
            reply
            if isinstance(reply, Exception)
            else await _apply(self.response_callbacks, args, reply, options)
            for reply, (args, options) in zip(response, stack, strict=True)
        ]
