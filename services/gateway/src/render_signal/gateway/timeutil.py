"""Timestamps as the APIs show them: UTC ISO 8601 with ``Z``."""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["iso", "to_epoch"]


def iso(ts: float | None) -> str | None:
    """Unix seconds -> ``2026-03-30T07:00:00Z`` (None stays None)."""
    if ts is None:
        return None
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def to_epoch(value: Any) -> float | None:
    """Unix seconds from a number, a numeric string or an ISO string; None if unparseable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
