"""Time-window values for the ``webhook_config`` document, relative to now."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = ["hhmm", "open_window"]


def hhmm(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def open_window(timezone: str, before_min: int = 60, after_min: int = 120) -> tuple[str, str]:
    """A window containing now (local in ``timezone``); may cross midnight."""
    now = dt.datetime.now(ZoneInfo(timezone))
    minute = now.hour * 60 + now.minute
    return hhmm(minute - before_min), hhmm(minute + after_min)
