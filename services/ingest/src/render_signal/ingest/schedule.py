"""The polling schedule: when the IMAP watcher may watch, from ``polling_config``.

Keys (as in the original): ``active_days`` (0-6, Monday=0), ``active_start_hour``
and ``active_end_hour`` (start inclusive, end exclusive; start > end wraps past
midnight; start == end is an empty window, never active), ``vacation_start`` /
``vacation_end`` (ISO dates, inclusive), ``enable_polling`` (bool).
``sender_of_interest_for_polling`` is applied by the parser, not here.

Defaults, i.e. what an empty or partial document means: polling enabled, every
day, all day (hours 0-24), no vacation. So a fresh deployment watches at once.
Evaluated in ``POLLING_TIMEZONE``; the clock is injected.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

__all__ = ["PollingSchedule", "zone_clock"]

logger = logging.getLogger(__name__)

ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)


def zone_clock(timezone: str) -> Callable[[], dt.datetime]:
    """A clock returning aware 'now' in ``timezone``."""
    zone = ZoneInfo(timezone)
    return lambda: dt.datetime.now(zone)


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        logger.warning("SCHEDULE: ignoring invalid date %r", value)
        return None


def _hour(value: Any, default: int) -> int:
    try:
        hour = int(value)
    except (TypeError, ValueError):
        return default
    return hour if 0 <= hour <= 24 else default


class PollingSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed ``polling_config`` document."""

    enable_polling: bool = True
    active_days: tuple[int, ...] = ALL_DAYS
    active_start_hour: int = 0
    active_end_hour: int = 24
    vacation_start: dt.date | None = None
    vacation_end: dt.date | None = None

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> PollingSchedule:
        """Lenient parse: a bad value falls back to its default (and is logged)."""
        days_raw = data.get("active_days", ALL_DAYS)
        days: list[int] = []
        if isinstance(days_raw, list | tuple):
            for d in days_raw:
                try:
                    if 0 <= int(d) <= 6:
                        days.append(int(d))
                except (TypeError, ValueError):
                    logger.warning("SCHEDULE: ignoring invalid day %r", d)
        enable = data.get("enable_polling", True)
        if isinstance(enable, str):
            enable = enable.strip().lower() in ("1", "true", "yes", "on")
        return cls(
            enable_polling=bool(enable),
            active_days=tuple(sorted(set(days)))
            if isinstance(days_raw, list | tuple)
            else ALL_DAYS,
            active_start_hour=_hour(data.get("active_start_hour"), 0),
            active_end_hour=_hour(data.get("active_end_hour"), 24),
            vacation_start=_date(data.get("vacation_start")),
            vacation_end=_date(data.get("vacation_end")),
        )

    def on_vacation(self, today: dt.date) -> bool:
        if self.vacation_start is None or self.vacation_end is None:
            return False
        return self.vacation_start <= today <= self.vacation_end

    def in_hours(self, hour: int) -> bool:
        start, end = self.active_start_hour, self.active_end_hour
        if start == end:
            return False
        if start < end:
            return start <= hour < end
        return hour >= start or hour < end  # wraps past midnight

    def reason_inactive(self, now: dt.datetime) -> str | None:
        """None when polling is active at ``now``; otherwise why not (for the log)."""
        if not self.enable_polling:
            return "enable_polling is false"
        if self.on_vacation(now.date()):
            return f"vacation {self.vacation_start}..{self.vacation_end}"
        if now.weekday() not in self.active_days:
            return f"weekday {now.weekday()} not in active_days {list(self.active_days)}"
        if not self.in_hours(now.hour):
            return f"hour {now.hour} outside [{self.active_start_hour}, {self.active_end_hour})"
        return None

    def is_active(self, now: dt.datetime) -> bool:
        return self.reason_inactive(now) is None
