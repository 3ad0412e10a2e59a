"""Which emails ingest publishes: runtime flags, sender allowlist, reply prefixes.

Runtime values come from config-store documents, read through a
:class:`~render_signal.common.configstore.ConfigWatcher` so a change made in the
dashboard applies to the next email without a restart:

* ``runtime_flags.gmail_ingress_enabled`` (default true): false skips Gmail pushes.
* ``runtime_flags.disable_email_id_dedup`` (default false): true bypasses the
  email-id check (the original's flag had no effect — bug #7; this one does).
* ``polling_config.sender_of_interest_for_polling``: a non-empty list replaces
  ``SENDER_OF_INTEREST_FOR_POLLING``; an empty effective list lets every sender in.
* ``processing_prefs.detectors_enabled``: detector names to run (default all).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from render_signal.common.configstore import ConfigWatcher
from render_signal.ingest.detectors import ALL_DETECTORS
from render_signal.ingest.settings import IngestSettings

__all__ = [
    "POLLING_CONFIG_DOC",
    "PROCESSING_PREFS_DOC",
    "RUNTIME_FLAGS_DOC",
    "SKIP_REASONS",
    "IngestPolicy",
    "has_reply_prefix",
    "load_policy",
]

RUNTIME_FLAGS_DOC = "runtime_flags"
POLLING_CONFIG_DOC = "polling_config"
PROCESSING_PREFS_DOC = "processing_prefs"

SKIP_GMAIL_DISABLED = "gmail_ingress_disabled"
SKIP_DUPLICATE = "duplicate"
SKIP_SENDER = "sender_not_allowed"
SKIP_REPLY = "reply_prefix"
SKIP_REASONS = (SKIP_GMAIL_DISABLED, SKIP_DUPLICATE, SKIP_SENDER, SKIP_REPLY)

_REPLY_PREFIX = re.compile(r"\s{0,20}(?:re|fw|fwd|rv|tr|confirmation)\s{0,3}:", re.IGNORECASE)


class IngestPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The filters in force for one email."""

    gmail_ingress_enabled: bool = True
    dedup_enabled: bool = True
    allowlist: frozenset[str] = frozenset()
    skip_reply_prefixes: bool = True
    detectors: frozenset[str] = frozenset(ALL_DETECTORS)

    def sender_allowed(self, sender_email: str) -> bool:
        return not self.allowlist or sender_email.lower() in self.allowlist


def has_reply_prefix(subject: str) -> bool:
    """``Re:``, ``Fwd:``, ``TR :``, ``Confirmation:``... (repeats included)."""
    return _REPLY_PREFIX.match(subject) is not None


def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, int | float):
        return bool(value)
    return default


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        return []
    return [v.strip().lower() for v in value if isinstance(v, str) and v.strip()]


async def load_policy(watcher: ConfigWatcher, settings: IngestSettings) -> IngestPolicy:
    """Current policy from the config store, with settings as the fallback."""
    flags = (await watcher.get(RUNTIME_FLAGS_DOC)).data
    polling = (await watcher.get(POLLING_CONFIG_DOC)).data
    prefs = (await watcher.get(PROCESSING_PREFS_DOC)).data
    stored_allowlist = _strings(polling.get("sender_of_interest_for_polling"))
    allowlist = stored_allowlist or list(settings.sender_allowlist)
    detectors = (
        frozenset(_strings(prefs["detectors_enabled"]))
        if "detectors_enabled" in prefs and isinstance(prefs["detectors_enabled"], list | str)
        else frozenset(ALL_DETECTORS)
    )
    return IngestPolicy(
        gmail_ingress_enabled=_flag(flags, "gmail_ingress_enabled", True),
        dedup_enabled=not _flag(flags, "disable_email_id_dedup", False),
        allowlist=frozenset(allowlist),
        skip_reply_prefixes=settings.skip_reply_prefixes,
        detectors=detectors,
    )
