"""Timestamps as records and APIs carry them: UTC ISO 8601 with ``Z``."""

from __future__ import annotations

import datetime as dt
import time

__all__ = ["epoch", "iso"]


def iso(ts: float | None = None) -> str:
    """Unix seconds (default: now) -> ``2026-03-30T07:00:00.123456Z``."""
    moment = dt.datetime.fromtimestamp(time.time() if ts is None else ts, dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch(stamp: str | None) -> float | None:
    """Unix seconds from an ISO 8601 string (naive means UTC); None if unparseable."""
    if not stamp:
        return None
    try:
        moment = dt.datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
