"""The parser's Prometheus metrics (``render_signal_ingest_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from render_signal.ingest.filters import SKIP_REASONS

__all__ = ["ARRIVAL_TO_PUBLISH", "EMAILS", "PARSE_SECONDS"]

EMAILS = Counter(
    "render_signal_ingest_emails_total",
    "Emails handled by the ingest parser, by outcome and reason",
    ["outcome", "reason"],
)
PARSE_SECONDS = Histogram(
    "render_signal_ingest_parse_seconds",
    "Time to parse one email, extract its links and run the detectors",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ARRIVAL_TO_PUBLISH = Histogram(
    "render_signal_ingest_imap_arrival_to_publish_seconds",
    "From the IMAP watcher seeing an email to mail.received being published",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
# Fixed label set, all pre-created so dashboards see zeros rather than gaps.
_LABELS = [("published", "ok"), ("dead_lettered", "unreadable")] + [
    ("skipped", reason) for reason in SKIP_REASONS
]
for _outcome, _reason in _LABELS:
    EMAILS.labels(_outcome, _reason)
