"""Sending rules: global switch, Absence Globale, time window (original §6.4/§6.5).

Order of evaluation, each decision returned with a reason:

1. ``webhook_sending_enabled`` false -> defer (``sending_disabled``);
2. Absence Globale: today (in ``POLLING_TIMEZONE``, not UTC as the original
   did) is a configured day -> defer (``absence``), DESABO included;
3. time window (both sides set, ``start <= now < end``, crossing midnight when
   start > end, never open when start == end): outside -> defer
   (``outside_window``), except DESABO non-urgent which bypasses it as the
   original did.

Deferred items are parked until :func:`next_opening`. ``outside_window_policy
= "drop"`` turns an absence/window deferral into a drop (a "skipped" log).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec
from render_signal.common.configdocs import WEEKDAYS
from render_signal.common.events import DETECTOR_DESABO

__all__ = [
    "DESABO",
    "Decision",
    "GateConfig",
    "decide",
    "in_window",
    "is_open",
    "next_opening",
    "parse_hhmm",
]

DESABO = DETECTOR_DESABO
_HHMM = re.compile(r"^\s*([01]?\d|2[0-3])\s*[:hH]\s*([0-5]\d)\s*$")


class GateConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The effective sending rules (config store over env defaults)."""

    timezone: str = "Europe/Paris"
    sending_enabled: bool = True
    absence_enabled: bool = False
    absence_days: frozenset[int] = frozenset()
    time_start: str = ""
    time_end: str = ""
    policy: Literal["defer", "drop"] = "defer"


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What to do with one send now, and the payload's window fields."""

    action: Literal["send", "defer", "drop"]
    reason: str
    due: float | None = None
    time_start_field: str | None = None
    time_end_field: str | None = None


def parse_hhmm(text: str | None) -> int | None:
    """Minutes since midnight for ``HH:MM`` / ``HHhMM`` (hour 1-2 digits), else None."""
    match = _HHMM.match(text or "")
    if not match:
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def weekday_numbers(names: object) -> frozenset[int]:
    """English weekday names (any case) -> ``datetime.weekday()`` numbers."""
    if not isinstance(names, list | tuple | set | frozenset):
        return frozenset()
    return frozenset(
        WEEKDAYS.index(str(n).strip().lower()) for n in names if str(n).strip().lower() in WEEKDAYS
    )


def in_window(start: int, end: int, now: int) -> bool:
    """``start <= now < end``; crosses midnight when start > end; never when equal."""
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def _local(cfg: GateConfig, ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(cfg.timezone))


def _window(cfg: GateConfig) -> tuple[int, int] | None:
    start, end = parse_hhmm(cfg.time_start), parse_hhmm(cfg.time_end)
    if start is None or end is None:
        return None
    return start, end


def _absent(cfg: GateConfig, local: dt.datetime) -> bool:
    return cfg.absence_enabled and local.weekday() in cfg.absence_days


def is_open(cfg: GateConfig, ts: float) -> bool:
    """True when a non-bypassing send may go out at ``ts``."""
    if not cfg.sending_enabled:
        return False
    local = _local(cfg, ts)
    if _absent(cfg, local):
        return False
    window = _window(cfg)
    return window is None or in_window(*window, local.hour * 60 + local.minute)


def next_opening(cfg: GateConfig, now: float) -> float | None:
    """The next time (>= now) sends may go out; None when it can't be known.

    None means sending is switched off or every day is an absence day: the
    caller parks the item and re-checks later.
    """
    if not cfg.sending_enabled:
        return None
    if is_open(cfg, now):
        return now
    tz = ZoneInfo(cfg.timezone)
    today = _local(cfg, now).date()
    window = _window(cfg)
    for offset in range(9):
        day = today + dt.timedelta(days=offset)
        minutes = [0] if window is None else [0, window[0]]
        for minute in minutes:
            local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
            ts = local.timestamp()
            if ts >= now and is_open(cfg, ts):
                return ts
    return None


def decide(cfg: GateConfig, now: float, detector: str | None, is_urgent: bool) -> Decision:
    """Apply the rules in order for one send at ``now``."""
    local = _local(cfg, now)
    window = _window(cfg)
    end_field = cfg.time_end.strip() or None
    if not cfg.sending_enabled:
        return Decision(action="defer", reason="sending_disabled", time_end_field=end_field)
    blocked: str | None = None
    start_field: str | None = None
    if _absent(cfg, local):
        blocked = "absence"
    elif window is not None:
        minute = local.hour * 60 + local.minute
        if in_window(*window, minute):
            start_field = "maintenant"
        elif detector == DESABO and not is_urgent:
            start_field = cfg.time_start if minute < window[0] else None
            return Decision(
                action="send",
                reason="desabo_bypass",
                time_start_field=start_field,
                time_end_field=end_field,
            )
        else:
            blocked = "outside_window"
    if blocked is None:
        return Decision(
            action="send", reason="open", time_start_field=start_field, time_end_field=end_field
        )
    if cfg.policy == "drop":
        return Decision(action="drop", reason=blocked, time_end_field=end_field)
    return Decision(
        action="defer", reason=blocked, due=next_opening(cfg, now), time_end_field=end_field
    )
