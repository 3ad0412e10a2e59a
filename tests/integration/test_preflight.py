"""Preflight (issue 2, acceptance 3): each service refuses to start, naming the variable.

Each case starts the real console script with a deliberately broken
environment and checks the exit code and the one-line-per-problem message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE = {
    "REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: preflight fails first
    "RENDER_SIGNAL_ENV": "production",
    "SECRET_KEY": "3f9c1a7e5b2d8046c9e1f3a5b7d90c2e4f6a8b0d",
    "DASHBOARD_PASSWORD": "correct horse battery staple",
    "PROCESS_API_TOKEN": "tok-4b8e2d61c09a7f3e5b1d8c6a4e2f0b9d",
    "WEBHOOK_URL": "https://hooks.receiver.invalid-tld-for-tests.net/hook",
}

CASES = [
    # (service, env changes, variable the message must name)
    ("ingest", {"REDIS_URL": None}, "REDIS_URL"),
    ("ingest", {"IMAP_SERVER": "imap.mail.net", "EMAIL_PASSWORD": "p" * 20}, "EMAIL_ADDRESS"),
    ("ingest", {"IMAP_SERVER": "imap.mail.net", "EMAIL_ADDRESS": "a@b.net"}, "EMAIL_PASSWORD"),
    (
        "ingest",
        {"IMAP_SERVER": "imap.mail.net", "EMAIL_ADDRESS": "a@b.net", "EMAIL_PASSWORD": "changeme"},
        "EMAIL_PASSWORD: placeholder secret",
    ),
    ("offload", {"REDIS_URL": None}, "REDIS_URL"),
    ("offload", {"R2_FETCH_TOKEN": "changeme"}, "R2_FETCH_TOKEN: placeholder secret"),
    (
        "offload",
        {"R2_FETCH_ENDPOINT": "http://worker.internal.net/"},
        "R2_FETCH_ENDPOINT: must use https",
    ),
    ("notify", {"REDIS_URL": None}, "REDIS_URL"),
    ("notify", {"WEBHOOK_URL": None}, "WEBHOOK_URL"),
    ("notify", {"WEBHOOK_URL": "https://example.com/hook"}, "WEBHOOK_URL: placeholder host"),
    ("notify", {"WEBHOOK_SIGNING_SECRET": "secret"}, "WEBHOOK_SIGNING_SECRET: placeholder secret"),
    ("notify", {"RENDER_SIGNAL_FAULT": "notify.after_send"}, "RENDER_SIGNAL_FAULT: fault"),
    # The delivery window and schedule from the environment: a typo is refused at
    # start, not applied as "always open" (the console shows env-set values).
    (
        "notify",
        {"WEBHOOKS_TIME_START": "25:99", "WEBHOOKS_TIME_END": "18:00"},
        "WEBHOOKS_TIME_START",
    ),
    ("notify", {"WEBHOOKS_TIME_START": "08:00"}, "set both (HH:MM) or neither"),
    ("notify", {"POLLING_TIMEZONE": "Europe/Pariss"}, "POLLING_TIMEZONE: unknown timezone"),
    ("ingest", {"POLLING_ACTIVE_START_HOUR": "24"}, "POLLING_ACTIVE_START_HOUR"),
    ("ingest", {"RENDER_SIGNAL_FAULT": "ingest.after_publish"}, "RENDER_SIGNAL_FAULT: fault"),
    ("gateway", {"REDIS_URL": None}, "REDIS_URL"),
    ("gateway", {"SECRET_KEY": None}, "SECRET_KEY"),
    ("gateway", {"DASHBOARD_PASSWORD": None}, "DASHBOARD_PASSWORD"),
    ("gateway", {"PROCESS_API_TOKEN": None}, "PROCESS_API_TOKEN"),
    ("gateway", {"DASHBOARD_PASSWORD": "changeme"}, "DASHBOARD_PASSWORD: placeholder secret"),
    (
        "gateway",
        {"SECRET_KEY": None, "FLASK_SECRET_KEY": "changeme"},
        "FLASK_SECRET_KEY: placeholder",
    ),
    ("gateway", {"RENDER_DEPLOY_HOOK_PREFIX": "http://127.0.0.1/"}, "RENDER_DEPLOY_HOOK_PREFIX"),
    # Issue 12, finding 4: weak secrets, each named with the rule.
    ("gateway", {"SECRET_KEY": "x"}, "SECRET_KEY: too weak: at least 32 characters"),
    ("gateway", {"DASHBOARD_PASSWORD": "1"}, "DASHBOARD_PASSWORD: too weak: at least 12"),
    ("gateway", {"PROCESS_API_TOKEN": "a"}, "PROCESS_API_TOKEN: too weak: at least 32"),
    ("gateway", {"SECRET_KEY": "s" * 40}, "SECRET_KEY: too weak"),  # long, one character
    # Finding 8: '*' would let any client pick its own address.
    ("gateway", {"TRUSTED_PROXIES": "*"}, "TRUSTED_PROXIES: '*' lets any client"),
]


def run_service(
    service: str, changes: dict[str, str | None], cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(BASE))}
    env.update(BASE)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env["RENDER_SIGNAL_ENV_FILE"] = str(cwd / "absent.env")
    return subprocess.run(
        [sys.executable, "-m", f"render_signal.{service}.main"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("service", "changes", "named"), CASES)
def test_service_refuses_to_start_naming_the_variable(
    service: str, changes: dict[str, str | None], named: str, tmp_path: Path
) -> None:
    result = run_service(service, changes, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("CONFIG ERROR:")]
    assert any(named in line for line in lines), result.stderr
    assert lines[-1].startswith("CONFIG ERROR: refusing to start")


def test_legacy_aliases_are_accepted(tmp_path: Path) -> None:
    """TRIGGER_PAGE_PASSWORD and FLASK_SECRET_KEY stand in for the new names."""
    from render_signal.common.settings import EnvReader
    from render_signal.gateway.settings import read_settings

    env = dict(BASE)
    env.pop("SECRET_KEY")
    env.pop("DASHBOARD_PASSWORD")
    env.update(
        FLASK_SECRET_KEY="f0e1d2c3b4a5968778695a4b3c2d1e0f-legacy",
        TRIGGER_PAGE_PASSWORD="legacy-pass-1",
        TRIGGER_PAGE_USER="ops",
    )
    reader = EnvReader(env, {})
    settings = read_settings(reader)
    assert reader.problems == []
    assert settings.secret_key == "f0e1d2c3b4a5968778695a4b3c2d1e0f-legacy"
    assert settings.dashboard_password == "legacy-pass-1"
    assert settings.dashboard_user == "ops"


def test_environment_overrides_env_file_and_dev_mode_allows_loopback() -> None:
    from render_signal.common.settings import EnvReader
    from render_signal.notify.settings import read_settings

    file_values = {
        "WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "RENDER_SIGNAL_ENV": "dev",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    reader = EnvReader({"RENDER_SIGNAL_ENV": "dev"}, file_values)
    assert read_settings(reader).webhook_url == "http://127.0.0.1:9/hook"
    assert reader.problems == []
    prod = EnvReader({"RENDER_SIGNAL_ENV": "production"}, file_values)
    read_settings(prod)
    assert any("loopback" in p and "refused outside dev mode" in p for p in prod.problems)


def test_the_dev_env_that_make_run_writes_satisfies_the_production_secret_rules(
    tmp_path: Path,
) -> None:
    """Issue 12, finding 4: `make run` secrets would pass even outside dev mode."""
    from render_signal.common.envreader import load_env_file
    from render_signal.common.settings import EnvReader
    from render_signal.devstack.devenv import ensure_dev_env
    from render_signal.gateway.settings import read_settings

    for attempt in range(20):  # random values: a handful of draws
        path = tmp_path / f"{attempt}.env"
        assert ensure_dev_env(path)
        values = {**load_env_file(path), "RENDER_SIGNAL_ENV": "production"}
        reader = EnvReader({**values, "REDIS_URL": "redis://127.0.0.1:1/0"}, {})
        read_settings(reader)
        assert reader.problems == [], reader.problems


def test_a_hashed_dashboard_password_is_taken_as_is(tmp_path: Path) -> None:
    from argon2 import PasswordHasher
    from render_signal.common.settings import EnvReader
    from render_signal.gateway.settings import read_settings

    hashed = PasswordHasher().hash("a long enough passphrase")
    for stored in (hashed, "pbkdf2:sha256:600000$salt$" + "ab" * 32):
        reader = EnvReader({**BASE, "DASHBOARD_PASSWORD": stored}, {})
        read_settings(reader)
        assert reader.problems == []
