"""The polling helpers: what they return, when they give up, what the failure says."""

from __future__ import annotations

import time

import pytest
from render_signal.devstack.polling import eventually, wait_until


async def test_eventually_returns_the_first_truthy_value_of_a_coroutine_check() -> None:
    calls: list[int] = []

    async def third_time() -> list[int]:
        calls.append(1)
        return list(calls) if len(calls) >= 3 else []

    assert await eventually(third_time, 5, "three calls") == [1, 1, 1]


async def test_eventually_accepts_a_plain_check() -> None:
    started = time.monotonic()
    assert await eventually(lambda: time.monotonic() - started > 0.05, 5) is True


async def test_eventually_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.1s waiting for the moon"):
        await eventually(lambda: False, 0.1, "the moon")


def test_wait_until_describes_the_state_only_on_failure() -> None:
    described: list[int] = []

    def describe() -> str:
        described.append(1)
        return "state: 42"

    assert wait_until(lambda: "ok", 1, describe) == "ok"
    assert described == []
    with pytest.raises(AssertionError, match="waiting for state: 42"):
        wait_until(lambda: 0, 0.1, describe)
    assert described == [1]


def test_wait_until_checks_once_more_at_the_deadline() -> None:
    started = time.monotonic()
    # A check slower than the timeout still gets a call after the deadline has passed.
    calls: list[float] = []

    def slow() -> bool:
        calls.append(time.monotonic() - started)
        time.sleep(0.15)
        return len(calls) == 2

    assert wait_until(slow, 0.1, "a slow check", interval_s=0.01) is True
    assert calls[1] >= 0.1


def test_an_exception_in_the_check_ends_the_wait() -> None:
    def broken() -> bool:
        raise RuntimeError("the server exited")

    with pytest.raises(RuntimeError, match="the server exited"):
        wait_until(broken, 10)
