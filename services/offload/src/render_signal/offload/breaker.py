"""A per-endpoint circuit breaker, so a dead Worker costs one timeout, not one per link.

States:

* **closed** — calls go through; ``failure_threshold`` consecutive failures
  (timeouts included) open it.
* **open** — calls are refused (the caller falls back at once) until
  ``cooldown_s`` has passed.
* **half-open** — exactly one probe call is let through; its success closes
  the breaker, its failure re-opens it for another cool-down. Other calls are
  refused while the probe is in flight.

Single event loop, no awaits inside: no lock needed. The clock is injectable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Consecutive-failure breaker with a cool-down and a single half-open probe."""

    def __init__(
        self,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failure_threshold = max(1, failure_threshold)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (an open breaker past its cool-down)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open, True once for the probe."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_in_flight:
            self._probe_in_flight = True
            self._set("half_open")
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._set("closed")

    def record_failure(self) -> None:
        self._failures += 1
        if self._probe_in_flight or self._failures >= self.failure_threshold:
            self._probe_in_flight = False
            self._opened_at = self._clock()
            self._set("open")

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled): let the next call probe."""
        self._probe_in_flight = False

    def _set(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)
