"""Logging: JSON lines off a TTY, readable text on one, secrets redacted everywhere.

Redaction works on the final rendered line, so a secret can't slip through a
format argument, an exception message or a traceback. Secret values are
registered by the settings reader as it reads them; URL-shaped secrets (webhook
URLs, magic-link paths, tokens in query strings) are also masked by pattern.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import time
from typing import Any

__all__ = [
    "RedactingFormatter",
    "log_context",
    "mask_email",
    "mask_url",
    "redact",
    "register_secret",
    "setup_logging",
]

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None

#: Context fields (service, event id, email id) added to every line.
log_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "render_signal_log_context", default=None
)

# Patterns for secrets we never registered explicitly, each after a substring
# that any match contains (in the lowercased line): most lines contain none, and
# the checks cost far less than running the seven scans on every line (issue 16).
_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    # Bearer / token headers echoed by libraries.
    ("bearer", re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (
        "x-r2-fetch-token",
        re.compile(r"(?i)(x-r2-fetch-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
        r"\1***",
    ),
    # Magic-link tokens in paths (uvicorn access logs print full paths).
    ("/login/magic/", re.compile(r"(/login/magic/)[A-Za-z0-9._~%-]+"), r"\1***"),
    # Query-string secrets: ?key=..., &token=..., password=...
    (
        "=",
        re.compile(
            r"(?i)([?&](?:key|token|api_key|apikey|password|secret|sig|signature)=)[^&\s\"']+"
        ),
        r"\1***",
    ),
    # Credentials in URLs: scheme://user:pass@host
    ("@", re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1***@"),
    # Make.com hook URLs: the path is the secret.
    ("make.com", re.compile(r"(?i)(https?://hook\.[a-z0-9.-]*make\.com/)[^\s\"']+"), r"\1***"),
]


def register_secret(value: str) -> None:
    """Remember a secret value so it is masked in every later log line."""
    global _secret_pattern
    if len(value) < 4:  # too short to mask without destroying normal text
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """Mask registered secrets and secret-shaped substrings in ``text``."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub("***", text)
    lowered = text.lower()
    for trigger, regex, replacement in _PATTERNS:
        if trigger in lowered:
            text = regex.sub(replacement, text)
    return text


def mask_url(url: str) -> str:
    """``scheme://host/***``: enough to tell targets apart, never the secret path."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/]*@)?([^/?#]+)", url or "")
    if not match:
        return "***"
    return f"{match.group(1)}{match.group(2)}/***"


def mask_email(address: str) -> str:
    """First character plus ``***@domain``, as the original logged senders."""
    local, _, domain = (address or "").partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


class RedactingFormatter(logging.Formatter):
    """Renders JSON or text, then redacts the whole line."""

    def __init__(self, service: str, json_lines: bool) -> None:
        super().__init__()
        self.service = service
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        context = log_context.get() or {}
        if self.json_lines:
            payload: dict[str, Any] = {
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname,
                "service": self.service,
                "logger": record.name,
                "msg": message,
            }
            payload.update(context)
            if record.exc_text:
                payload["exc"] = record.exc_text
            line = json.dumps(payload, ensure_ascii=False, default=str)
        else:
            ctx = " ".join(f"{k}={v}" for k, v in context.items())
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            line = f"{stamp} {record.levelname:<7} {self.service} {record.name}: {message}"
            if ctx:
                line += f" [{ctx}]"
            if record.exc_text:
                line += "\n" + record.exc_text
        # CR/LF from attacker-controlled values (subjects, senders) can't forge lines
        # in JSON mode because json.dumps escapes them.
        return redact(line)


def setup_logging(service: str, level: str = "INFO", log_format: str = "auto") -> None:
    """Configure the root logger once per process."""
    json_lines = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(service, json_lines))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    # Libraries that log request lines with full URLs stay at WARNING.
    for noisy in ("httpx", "httpcore", "imapclient", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
