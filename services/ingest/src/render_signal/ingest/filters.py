"""Which emails ingest publishes: runtime flags, sender allowlist, prefixes, keywords.

Runtime values come from config-store documents, read through a
:class:`~render_signal.common.configstore.ConfigWatcher` so a change made in the
dashboard applies to the next email without a restart:

* ``runtime_flags.gmail_ingress_enabled`` (default true): false skips Gmail pushes.
* ``runtime_flags.disable_email_id_dedup`` (default ``DISABLE_EMAIL_ID_DEDUP``,
  false): true bypasses the email-id check (the original's flag had no effect --
  its bug #7; this one does).
* ``polling_config.sender_of_interest_for_polling`` (default
  ``SENDER_OF_INTEREST_FOR_POLLING``): accepted senders; an empty list lets
  every sender in.
* ``processing_prefs.detectors_enabled``: detector names to run (default all).
* ``processing_prefs.exclude_keywords``: an email whose subject or body contains
  one (case-insensitive) is skipped; ``exclude_keywords_recadrage`` and
  ``exclude_keywords_autorepondeur`` do the same for recadrage and DESABO
  (auto-reply) emails only.
"""

from __future__ import annotations

import re

import msgspec
from render_signal.common.configdocs import PollingConfig, ProcessingPrefs, RuntimeFlags, pick
from render_signal.common.configstore import ConfigWatcher
from render_signal.common.events import DETECTOR_DESABO, DETECTOR_RECADRAGE
from render_signal.ingest.settings import IngestSettings

__all__ = [
    "SKIP_REASONS",
    "IngestPolicy",
    "has_reply_prefix",
    "load_policy",
]

SKIP_GMAIL_DISABLED = "gmail_ingress_disabled"
SKIP_DUPLICATE = "duplicate"
SKIP_SENDER = "sender_not_allowed"
SKIP_REPLY = "reply_prefix"
SKIP_EXCLUDED = "excluded_keyword"
SKIP_REASONS = (SKIP_GMAIL_DISABLED, SKIP_DUPLICATE, SKIP_SENDER, SKIP_REPLY, SKIP_EXCLUDED)

_REPLY_PREFIX = re.compile(r"\s{0,20}(?:re|fw|fwd|rv|tr|confirmation)\s{0,3}:", re.IGNORECASE)


class IngestPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The filters in force for one email."""

    gmail_ingress_enabled: bool = True
    dedup_enabled: bool = True
    allowlist: frozenset[str] = frozenset()
    skip_reply_prefixes: bool = True
    detectors: frozenset[str] = frozenset({DETECTOR_RECADRAGE, DETECTOR_DESABO})
    exclude: tuple[str, ...] = ()
    exclude_by_detector: dict[str, tuple[str, ...]] = {}

    def sender_allowed(self, sender_email: str) -> bool:
        return not self.allowlist or sender_email.lower() in self.allowlist

    def excluded_keyword(self, detector: str | None, *texts: str) -> str | None:
        """The first excluded keyword found in ``texts``, or None."""
        words = self.exclude + self.exclude_by_detector.get(detector or "", ())
        if not words:
            return None
        haystack = "\n".join(texts).lower()
        return next((word for word in words if word.lower() in haystack), None)

    def skip_reason(
        self, source: str, sender_email: str, subject: str, detector: str | None, *texts: str
    ) -> str | None:
        """The filter that skips this email (sender, reply prefix, keyword), or None."""
        if not self.sender_allowed(sender_email):
            return SKIP_SENDER
        if source != "gmail_push" and self.skip_reply_prefixes and has_reply_prefix(subject):
            return SKIP_REPLY
        if self.excluded_keyword(detector, subject, *texts):
            return SKIP_EXCLUDED
        return None


def has_reply_prefix(subject: str) -> bool:
    """``Re:``, ``Fwd:``, ``TR :``, ``Confirmation:``... (repeats included)."""
    return _REPLY_PREFIX.match(subject) is not None


async def load_policy(watcher: ConfigWatcher, settings: IngestSettings) -> IngestPolicy:
    """Current policy from the config store, with settings as the fallback."""
    flags = (await watcher.get(RuntimeFlags)).doc
    polling = (await watcher.get(PollingConfig)).doc
    prefs = (await watcher.get(ProcessingPrefs)).doc
    senders = pick(polling.sender_of_interest_for_polling, list(settings.sender_allowlist))
    return IngestPolicy(
        gmail_ingress_enabled=flags.gmail_ingress_enabled,
        dedup_enabled=not pick(flags.disable_email_id_dedup, settings.dedup_disabled),
        allowlist=frozenset(s.lower() for s in senders),
        skip_reply_prefixes=settings.skip_reply_prefixes,
        detectors=frozenset(prefs.detectors_enabled),
        exclude=tuple(prefs.exclude_keywords),
        exclude_by_detector={
            DETECTOR_RECADRAGE: tuple(prefs.exclude_keywords_recadrage),
            DETECTOR_DESABO: tuple(prefs.exclude_keywords_autorepondeur),
        },
    )
