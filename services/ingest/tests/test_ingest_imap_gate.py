"""Which switch decides whether the IMAP watcher runs (issue 14, item 4): the precedence."""

from __future__ import annotations

import pytest
from render_signal.common.settings import EnvReader
from render_signal.ingest.settings import imap_gate, read_settings

BASE = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "RENDER_SIGNAL_ENV": "dev",
    "EMAIL_ADDRESS": "alice",
    "EMAIL_PASSWORD": "secret-pw-1",
}


@pytest.mark.parametrize(
    ("env", "on", "why"),
    [
        ({}, False, "IMAP_SERVER is not set"),
        ({"ENABLE_BACKGROUND_TASKS": "true"}, False, "IMAP_SERVER is not set"),
        ({"IMAP_SERVER": "imap.test"}, True, "IMAP_SERVER is set"),
        ({"IMAP_SERVER": "imap.test", "ENABLE_BACKGROUND_TASKS": "false"}, False, "ENABLE_"),
        ({"IMAP_SERVER": "imap.test", "ENABLE_BACKGROUND_TASKS": "1"}, True, "ENABLE_"),
        ({"IMAP_SERVER": "imap.test", "IMAP_ENABLED": "false"}, False, "IMAP_ENABLED=false"),
        (
            {"IMAP_SERVER": "imap.test", "IMAP_ENABLED": "true", "ENABLE_BACKGROUND_TASKS": "0"},
            True,
            "IMAP_ENABLED=true",
        ),
        (
            {"IMAP_SERVER": "imap.test", "IMAP_ENABLED": "true", "DISABLE_BACKGROUND_TASKS": "1"},
            False,
            "DISABLE_BACKGROUND_TASKS",
        ),
        (
            {"IMAP_SERVER": "imap.test", "DISABLE_BACKGROUND_TASKS": "false"},
            True,
            "IMAP_SERVER is set",
        ),
    ],
)
def test_imap_gate_precedence(env: dict[str, str], on: bool, why: str) -> None:
    reader = EnvReader({**BASE, **env}, {})
    assert imap_gate(reader)[0] is on
    assert why in imap_gate(reader)[1]
    settings = read_settings(reader)
    reader.check()
    assert settings.imap_enabled is on and why in settings.imap_gate_reason


def test_a_watcher_kept_off_needs_no_imap_credentials() -> None:
    env = {"REDIS_URL": BASE["REDIS_URL"], "IMAP_SERVER": "imap.test"}
    reader = EnvReader({**env, "ENABLE_BACKGROUND_TASKS": "0"}, {})
    assert read_settings(reader).imap_enabled is False
    reader.check()  # EMAIL_ADDRESS/EMAIL_PASSWORD are not required then
