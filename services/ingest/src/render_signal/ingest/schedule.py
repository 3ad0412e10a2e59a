"""The polling schedule: when the IMAP watcher may watch, from ``polling_config``.

Keys (as in the original): ``active_days`` (0-6, Monday=0), ``active_start_hour``
and ``active_end_hour`` (start inclusive, end exclusive; start > end wraps past
midnight; start == end is an empty window, never active), ``vacation_start`` /
``vacation_end`` (ISO dates, inclusive), ``enable_polling`` (bool).
``sender_of_interest_for_polling`` is applied by the parser, not here.

Fields the dashboard has not set come from ``POLLING_ACTIVE_DAYS``,
``POLLING_ACTIVE_START_HOUR`` and ``POLLING_ACTIVE_END_HOUR``; without those:
every day, all day (hours 0-24), no vacation. (The original's default was
Mon-Fri 9-23; a relay that ignores mail at night unless told is a surprise, so
ours watches always unless configured -- the original's values are a setting
away.) Evaluated in ``POLLING_TIMEZONE``; the clock is injected.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

import msgspec
from render_signal.common.configdocs import PollingConfig, pick
from render_signal.ingest.settings import IngestSettings

__all__ = ["PollingSchedule", "zone_clock"]

logger = logging.getLogger(__name__)

ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)


def zone_clock(timezone: str) -> Callable[[], dt.datetime]:
    """A clock returning aware 'now' in ``timezone``."""
    zone = ZoneInfo(timezone)
    return lambda: dt.datetime.now(zone)


class PollingSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """The schedule in force: ``polling_config`` over the environment defaults."""

    enable_polling: bool = True
    active_days: tuple[int, ...] = ALL_DAYS
    active_start_hour: int = 0
    active_end_hour: int = 24
    vacation_start: dt.date | None = None
    vacation_end: dt.date | None = None

    @classmethod
    def effective(cls, doc: PollingConfig, settings: IngestSettings) -> PollingSchedule:
        """Stored values win; unset ones come from ``POLLING_ACTIVE_*``."""
        return cls(
            enable_polling=doc.enable_polling,
            active_days=tuple(pick(doc.active_days, list(settings.polling_active_days))),
            active_start_hour=pick(doc.active_start_hour, settings.polling_start_hour),
            active_end_hour=pick(doc.active_end_hour, settings.polling_end_hour),
            vacation_start=doc.vacation_start,
            vacation_end=doc.vacation_end,
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
