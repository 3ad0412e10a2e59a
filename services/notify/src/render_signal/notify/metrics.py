"""Prometheus metrics of the notify service (fixed label sets, never URLs or ids).

* ``render_signal_notify_deliveries_total{target_class, outcome}``: outcome in
  success, retry, dead_letter, deferred, skipped, rate_limited;
* ``render_signal_notify_attempts_total{target_class, outcome}``: HTTP attempts,
  outcome success | retry | dead_letter;
* ``render_signal_notify_delivery_latency_seconds{target_class}``: email
  received -> 2xx;
* ``render_signal_notify_deferred_queue_size``: items in the schedule ZSET;
* ``render_signal_notify_dead_letters``: entries in the dead-letter stream.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["ATTEMPTS", "DEAD_LETTERS", "DEFERRED", "DELIVERIES", "LATENCY", "OUTCOMES"]

TARGET_CLASSES = ("make", "custom", "rule")
OUTCOMES = ("success", "retry", "dead_letter", "deferred", "skipped", "rate_limited")

DELIVERIES = Counter(
    "render_signal_notify_deliveries_total",
    "Webhook delivery decisions and results, by target class and outcome",
    ["target_class", "outcome"],
)
ATTEMPTS = Counter(
    "render_signal_notify_attempts_total",
    "HTTP attempts to webhook targets, by target class and outcome",
    ["target_class", "outcome"],
)
LATENCY = Histogram(
    "render_signal_notify_delivery_latency_seconds",
    "Time from email receipt to a 2xx from the target",
    ["target_class"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)
DEFERRED = Gauge(
    "render_signal_notify_deferred_queue_size", "Items parked in the schedule (deferred/retrying)"
)
DEAD_LETTERS = Gauge(
    "render_signal_notify_dead_letters", "Entries in the notify dead-letter stream"
)
