"""The original's variables render-signal does not read: one warning line each, at start."""

from __future__ import annotations

import logging

import pytest
from render_signal.common.legacyenv import (
    LEGACY_VARIABLES,
    legacy_warnings,
    warn_legacy_variables,
)


def test_one_line_per_legacy_variable_set_naming_the_replacement(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env_set = {"GUNICORN_WORKERS", "RESTART_CMD", "REDIS_URL", "WEBHOOK_URL", "IMAP_SSL"}
    caplog.set_level(logging.WARNING, logger="render_signal.common.legacyenv")
    assert warn_legacy_variables(env_set) == 3
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split()[1] for line in lines] == ["GUNICORN_WORKERS", "IMAP_SSL", "RESTART_CMD"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert lines[1] == (
        "LEGACY: IMAP_SSL is set but render-signal does not read it; instead: IMAP_USE_SSL"
    )


def test_nothing_to_say_for_a_render_signal_environment() -> None:
    assert legacy_warnings({"REDIS_URL", "SECRET_KEY", "FLASK_SECRET_KEY"}) == []
    assert all(text.strip() for text in LEGACY_VARIABLES.values())
