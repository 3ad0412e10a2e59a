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
    deadline = _Deadline(timeout_s, what, interval_s)
    while True:
        final = deadline.passed()
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(deadline.pause_after_miss(final))


def wait_until(
    check: Callable[[], T],
    timeout_s: float = 15.0,
    what: Description = "condition",
    *,
    interval_s: float = 0.02,
) -> T:
    """Call ``check`` until it is truthy and return that value (see the module docstring)."""
    deadline = _Deadline(timeout_s, what, interval_s)
    while True:
        final = deadline.passed()
        if value := check():
            return value
        time.sleep(deadline.pause_after_miss(final))


class _Deadline:
    """The one schedule both helpers follow (they differ only in how they sleep)."""

    def __init__(self, timeout_s: float, what: Description, interval_s: float) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self.interval_s = interval_s
        self.at = time.monotonic() + timeout_s

    def passed(self) -> bool:
        """Read before a check: a check started after the deadline is the final one."""
        return time.monotonic() >= self.at

    def pause_after_miss(self, final: bool) -> float:
        """Seconds to wait before the next check; fails when the missed one was final."""
        if final:
            what = self.what() if callable(self.what) else self.what
            raise AssertionError(f"timed out after {self.timeout_s}s waiting for {what}")
        return min(self.interval_s, max(0.0, self.at - time.monotonic()))
