"""(1) Sending rules with an injected time: window, midnight, absence across DST, DESABO."""

from __future__ import annotations

import datetime as dt

import pytest
from notify_harness import PARIS, paris
from render_signal.notify.window import (
    DESABO,
    GateConfig,
    decide,
    in_window,
    next_opening,
    parse_hhmm,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("09:00", 540),
        ("9h30", 570),
        ("23h59", 1439),
        ("0:00", 0),
        ("24:00", None),
        ("9h", None),
        ("", None),
        ("ab", None),
        ("09:5", None),
    ],
)
def test_parse_hhmm(text: str, minutes: int | None) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize(
    ("start", "end", "now", "inside"),
    [
        ("09:00", "18:00", "08:59", False),
        ("09:00", "18:00", "09:00", True),
        ("09:00", "18:00", "17:59", True),
        ("09:00", "18:00", "18:00", False),
        ("22:00", "06:00", "23:30", True),  # crosses midnight
        ("22:00", "06:00", "03:00", True),
        ("22:00", "06:00", "06:00", False),
        ("22:00", "06:00", "12:00", False),
        ("10:00", "10:00", "10:00", False),  # start == end: never open
        ("10:00", "10:00", "03:00", False),
    ],
)
def test_window_membership(start: str, end: str, now: str, inside: bool) -> None:
    s, e, n = parse_hhmm(start), parse_hhmm(end), parse_hhmm(now)
    assert s is not None
    assert e is not None
    assert n is not None
    assert in_window(s, e, n) is inside


def _cfg(**kw: object) -> GateConfig:
    return GateConfig(timezone="Europe/Paris", **kw)  # type: ignore[arg-type]


# (description, config, local time, detector, urgent) -> (action, reason, start field, end field)
CASES = [
    ("no window", _cfg(), (2026, 3, 30, 3, 0), None, False, ("send", "open", None, None)),
    (
        "only start set: no window",
        _cfg(time_start="09:00"),
        (2026, 3, 30, 3, 0),
        None,
        False,
        ("send", "open", None, None),
    ),
    (
        "only end set: end field",
        _cfg(time_end="18h00"),
        (2026, 3, 30, 3, 0),
        None,
        False,
        ("send", "open", None, "18h00"),
    ),
    (
        "inside",
        _cfg(time_start="09:00", time_end="18:00"),
        (2026, 3, 30, 10, 0),
        "recadrage",
        False,
        ("send", "open", "maintenant", "18:00"),
    ),
    (
        "outside, recadrage",
        _cfg(time_start="09:00", time_end="18:00"),
        (2026, 3, 30, 19, 0),
        "recadrage",
        False,
        ("defer", "outside_window", None, "18:00"),
    ),
    (
        "outside, plain",
        _cfg(time_start="09:00", time_end="18:00"),
        (2026, 3, 30, 7, 0),
        None,
        False,
        ("defer", "outside_window", None, "18:00"),
    ),
    (
        "DESABO non-urgent early: bypass + start",
        _cfg(time_start="09h00", time_end="18h00"),
        (2026, 3, 30, 7, 0),
        DESABO,
        False,
        ("send", "desabo_bypass", "09h00", "18h00"),
    ),
    (
        "DESABO non-urgent late: bypass, no start",
        _cfg(time_start="09:00", time_end="18:00"),
        (2026, 3, 30, 19, 0),
        DESABO,
        False,
        ("send", "desabo_bypass", None, "18:00"),
    ),
    (
        "DESABO urgent outside: deferred",
        _cfg(time_start="09:00", time_end="18:00"),
        (2026, 3, 30, 7, 0),
        DESABO,
        True,
        ("defer", "outside_window", None, "18:00"),
    ),
    (
        "DESABO urgent inside",
        _cfg(time_start="09:00", time_end="18:00"),
        (2026, 3, 30, 9, 0),
        DESABO,
        True,
        ("send", "open", "maintenant", "18:00"),
    ),
    (
        "midnight crossing inside",
        _cfg(time_start="22:00", time_end="06:00"),
        (2026, 3, 30, 1, 0),
        None,
        False,
        ("send", "open", "maintenant", "06:00"),
    ),
    (
        "start == end",
        _cfg(time_start="10:00", time_end="10:00"),
        (2026, 3, 30, 10, 0),
        None,
        False,
        ("defer", "outside_window", None, "10:00"),
    ),
    (
        "sending disabled blocks DESABO",
        _cfg(sending_enabled=False),
        (2026, 3, 30, 10, 0),
        DESABO,
        False,
        ("defer", "sending_disabled", None, None),
    ),
    (
        "absence blocks DESABO",
        _cfg(absence_enabled=True, absence_days=frozenset({0})),
        (2026, 3, 30, 10, 0),
        DESABO,
        False,
        ("defer", "absence", None, None),
    ),
    (
        "absence disabled flag",
        _cfg(absence_enabled=False, absence_days=frozenset({0})),
        (2026, 3, 30, 10, 0),
        None,
        False,
        ("send", "open", None, None),
    ),
    (
        "policy drop outside",
        _cfg(time_start="09:00", time_end="18:00", policy="drop"),
        (2026, 3, 30, 19, 0),
        None,
        False,
        ("drop", "outside_window", None, "18:00"),
    ),
]


@pytest.mark.parametrize(
    ("name", "cfg", "local", "detector", "urgent", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_decide_table(
    name: str,
    cfg: GateConfig,
    local: tuple[int, ...],
    detector: str | None,
    urgent: bool,
    expected: tuple[str, str, str | None, str | None],
) -> None:
    decision = decide(cfg, paris(*local), detector, urgent)
    got = (decision.action, decision.reason, decision.time_start_field, decision.time_end_field)
    assert got == expected
    if decision.action == "defer" and name not in (
        "start == end",
        "sending disabled blocks DESABO",
    ):
        assert decision.due is not None
        assert decision.due > paris(*local)


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@pytest.mark.parametrize("dst_monday", [(2026, 3, 30), (2026, 10, 26)])
@pytest.mark.parametrize("absent_day", range(7))
def test_absence_each_weekday_in_paris_across_dst(
    dst_monday: tuple[int, int, int], absent_day: int
) -> None:
    """00:30 in Paris is still the previous day in UTC: Paris decides."""
    cfg = _cfg(absence_enabled=True, absence_days=frozenset({absent_day}))
    monday = dt.date(*dst_monday)
    for offset in range(-6, 1):  # the week ending on that Monday: includes the DST Sunday
        day = monday + dt.timedelta(days=offset)
        ts = paris(day.year, day.month, day.day, 0, 30)
        utc_day = dt.datetime.fromtimestamp(ts, UTC).weekday()
        assert utc_day == (day.weekday() - 1) % 7  # the UTC day differs
        decision = decide(cfg, ts, None, False)
        assert (decision.action == "defer") is (day.weekday() == absent_day), (day, absent_day)


def test_monday_in_paris_sunday_in_utc_both_dst_changes() -> None:
    cfg = _cfg(absence_enabled=True, absence_days=frozenset({0}))  # monday
    for ts in (paris(2026, 3, 30, 0, 30), paris(2026, 10, 26, 0, 30)):
        assert dt.datetime.fromtimestamp(ts, UTC).strftime("%A") == "Sunday"
        assert decide(cfg, ts, None, False).reason == "absence"
    sunday_cfg = _cfg(absence_enabled=True, absence_days=frozenset({6}))
    assert decide(sunday_cfg, paris(2026, 3, 30, 0, 30), None, False).action == "send"


@pytest.mark.parametrize(
    ("cfg", "now", "expected"),
    [
        # Sunday evening of the spring DST change -> Monday 09:00 Paris (CEST).
        (
            _cfg(time_start="09:00", time_end="18:00"),
            paris(2026, 3, 29, 20, 0),
            paris(2026, 3, 30, 9, 0),
        ),
        # Monday is an absence day -> Tuesday 09:00.
        (
            _cfg(
                time_start="09:00",
                time_end="18:00",
                absence_enabled=True,
                absence_days=frozenset({0}),
            ),
            paris(2026, 3, 29, 20, 0),
            paris(2026, 3, 31, 9, 0),
        ),
        # Absence with no window -> next midnight of a non-absence day (autumn change).
        (
            _cfg(absence_enabled=True, absence_days=frozenset({6})),
            paris(2026, 10, 25, 12, 0),
            paris(2026, 10, 26, 0, 0),
        ),
        # Crossing midnight: at 12:00 the next opening is 22:00 the same day.
        (
            _cfg(time_start="22:00", time_end="06:00"),
            paris(2026, 3, 30, 12, 0),
            paris(2026, 3, 30, 22, 0),
        ),
        # Never open (start == end) -> unknown.
        (_cfg(time_start="10:00", time_end="10:00"), paris(2026, 3, 30, 12, 0), None),
        # Sending off -> unknown (re-checked later).
        (_cfg(sending_enabled=False), paris(2026, 3, 30, 12, 0), None),
    ],
)
def test_next_opening(cfg: GateConfig, now: float, expected: float | None) -> None:
    assert next_opening(cfg, now) == expected
    if expected is not None:
        assert dt.datetime.fromtimestamp(expected, PARIS).tzinfo is not None
