"""A clock tests move by hand, for code that takes an injectable clock.

It satisfies any ``Clock`` protocol with a ``now() -> float`` method (notify's
:class:`render_signal.notify.clock.Clock`), so a test decides what time it is
instead of sleeping until then.
"""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """Unix time in seconds that only moves when told to (thread-safe)."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def set(self, value: float) -> None:
        with self._lock:
            self._now = value

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now
