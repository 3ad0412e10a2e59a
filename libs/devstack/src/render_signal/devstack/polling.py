"""Wait for another process by polling a check against a deadline.

Tests wait for servers, services and Redis state they do not control; a fixed
sleep would either waste time or flake. Both helpers call ``check`` at least
once, again every ``interval_s`` and a last time at the deadline, return the
first truthy value it gives, and otherwise fail with :class:`AssertionError`
naming ``what``. ``what`` may be a function, called only on failure, to put
the state that was waited for into the message. An exception raised by
``check`` (for example "the server process exited") ends the wait at once.

``eventually`` is for asyncio code (``check`` may be a coroutine function or a
plain one); ``wait_until`` blocks the calling thread.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ["eventually", "wait_until"]

T = TypeVar("T")
Description = str | Callable[[], str]


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    timeout_s: float = ...,
    what: Description = ...,
    *,
    interval_s: float = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    timeout_s: float = ...,
    what: Description = ...,
    *,
    interval_s: float = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    timeout_s: float = 15.0,
    what: Description = "condition",
    *,
    interval_s: float = 0.02,
) -> Any:
    """Await ``check`` until it is truthy and return that value (see the module docstring)."""
    deadline = time.monotonic() + timeout_s
    while True:
        last = time.monotonic() >= deadline
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if last:
            raise AssertionError(_timed_out(timeout_s, what))
        await asyncio.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))


def wait_until(
    check: Callable[[], T],
    timeout_s: float = 15.0,
    what: Description = "condition",
    *,
    interval_s: float = 0.02,
) -> T:
    """Call ``check`` until it is truthy and return that value (see the module docstring)."""
    deadline = time.monotonic() + timeout_s
    while True:
        last = time.monotonic() >= deadline
        value = check()
        if value:
            return value
        if last:
            raise AssertionError(_timed_out(timeout_s, what))
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))


def _timed_out(timeout_s: float, what: Description) -> str:
    return f"timed out after {timeout_s}s waiting for {what() if callable(what) else what}"
