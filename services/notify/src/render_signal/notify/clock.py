"""Injectable clocks: every time-dependent decision takes a :class:`Clock`.

Tests pass ``render_signal.devstack.clock.ManualClock``.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Source of the current Unix time in seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()
