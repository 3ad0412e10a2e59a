"""Logging: JSON off a TTY, and no secret ever reaches a log line (issue 2, acceptance 7)."""

from __future__ import annotations

import io
import json
import logging

from hypothesis import given, settings
from hypothesis import strategies as st
from render_signal.common import logs
from render_signal.common.logs import (
    RedactingFormatter,
    log_context,
    mask_email,
    mask_url,
    redact,
    register_secret,
)
from render_signal.common.settings import EnvReader


def render(message: str, *args: object, json_lines: bool = True) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("test", json_lines))
    logger = logging.getLogger(f"redaction-{id(stream)}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.info(message, *args)
    return stream.getvalue()


def test_secrets_read_by_settings_are_masked_in_every_form() -> None:
    sentinel = "SENTINEL-pw-4f9a2c7e"
    env = EnvReader(
        {
            "RENDER_SIGNAL_ENV": "production",
            "DASHBOARD_PASSWORD": sentinel,
            "REDIS_URL": "redis://:SENTINEL-redis-77aa@cache.internal:6379/0",
        },
        {},
    )
    env.secret("DASHBOARD_PASSWORD")
    from render_signal.common.settings import read_common

    read_common(env, "gateway")
    line = render("login failed for password=%s", sentinel)
    assert sentinel not in line
    assert "***" in line
    assert "SENTINEL-redis-77aa" not in render("connecting to %s", env.string("REDIS_URL"))
    try:
        raise ValueError(f"bad credentials {sentinel}")
    except ValueError:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(RedactingFormatter("test", True))
        log = logging.getLogger("redaction-exc")
        log.addHandler(handler)
        log.propagate = False
        log.exception("crash")
        assert sentinel not in stream.getvalue(), "tracebacks are redacted too"


def test_secret_shaped_values_are_masked_without_registration() -> None:
    samples = {
        "Authorization: Bearer abcdefghijklmnop1234": "abcdefghijklmnop1234",
        "GET /login/magic/Zm9vYmFyYmF6cXV4cXV1eA HTTP/1.1": "Zm9vYmFyYmF6cXV4cXV1eA",
        "hook https://api.render.com/deploy/srv-123?key=SuperSecretKey9": "SuperSecretKey9",
        "posting to https://hook.eu1.make.com/abc123secretpath": "abc123secretpath",
        "X-R2-FETCH-TOKEN: tok-value-998877": "tok-value-998877",
        "redis://user:hunter2pass@host:6379": "hunter2pass",
    }
    for text, secret in samples.items():
        assert secret not in redact(text), text


def test_json_lines_carry_context_and_escape_newlines() -> None:
    token = log_context.set({"event_id": "imap:INBOX:1:7"})
    try:
        line = render("subject %s", "evil\nFAKE LOG LINE")
    finally:
        log_context.reset(token)
    assert line.count("\n") == 1, "CR/LF in values must not forge log lines"
    record = json.loads(line)
    assert record["event_id"] == "imap:INBOX:1:7"
    assert record["service"] == "test"
    assert record["level"] == "INFO"


def test_masking_helpers() -> None:
    assert mask_url("https://user:pw@hooks.example.net/path/secret?x=1") == (
        "https://hooks.example.net/***"
    )
    assert mask_email("Alice.Smith@agency.fr") == "A***@agency.fr"
    register_secret("abc")  # too short to mask safely: ignored rather than mangling text
    assert redact("abcdef") == "abcdef"


_FRAGMENTS = [
    "Bearer ",
    "BEARER\t",
    "bearer",
    "abcdefgh12345678",
    "X-R2-Fetch-Token",
    "x-r2-fetch-token",
    ": ",
    "=",
    "'",
    '"',
    "/login/magic/",
    "/LOGIN/MAGIC/",
    "tok.en~%",
    "?",
    "&",
    "key",
    "TOKEN",
    "api_key",
    "Password",
    "sig",
    "https://",
    "redis://",
    "user",
    ":",
    "pw",
    "@",
    "host",
    "hook.eu1.",
    "Make.Com/",
    "make.com/",
    "path",
    " ",
    "\n",
    "é",
    "İ",
    "K",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=14))
def test_redaction_prefilters_never_skip_a_match(parts: list[str]) -> None:
    """Each pattern only runs when its trigger substring is in the lowercased line
    (issue 16); the result must equal running every pattern on every line."""
    text = "".join(parts)
    expected = text
    for _, regex, replacement in logs._PATTERNS:
        expected = regex.sub(replacement, expected)
    assert redact(text) == expected
