"""Offload metrics. Labels come from fixed sets, never URLs or ids.

* ``render_signal_offload_attempts_total{provider, outcome}`` — one per link;
  ``outcome`` is ``success`` (Worker returned an r2_url), ``fallback`` (Worker
  failed or the breaker was open: source kept), ``skipped`` (not eligible:
  offload disabled, host not allowlisted, not https), ``reused`` (r2_url taken
  from the link journal) or ``error`` (unexpected exception: source kept).
* ``render_signal_offload_worker_seconds`` — wall time of each Worker HTTP call.
* ``render_signal_offload_fallbacks_total{reason}`` — links kept at their source
  because of the Worker; ``reason`` in :data:`FALLBACK_REASONS`.
* ``render_signal_offload_breaker_open`` — 1 while the breaker refuses calls.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ATTEMPTS",
    "BREAKER_OPEN",
    "FALLBACKS",
    "FALLBACK_REASONS",
    "OUTCOMES",
    "PROVIDERS",
    "WORKER_SECONDS",
    "provider_label",
]

OUTCOMES = ("success", "fallback", "skipped", "reused", "error")
PROVIDERS = ("dropbox", "fromsmash", "swisstransfer", "wetransfer", "other")
FALLBACK_REASONS = (
    "http_status",
    "invalid_response",
    "timeout",
    "transport",
    "breaker_open",
    "exception",
)

ATTEMPTS = Counter(
    "render_signal_offload_attempts_total",
    "Links offered to R2 offload, by provider and outcome",
    ["provider", "outcome"],
)
WORKER_SECONDS = Histogram(
    "render_signal_offload_worker_seconds",
    "Duration of each R2 Worker HTTP call",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120),
)
FALLBACKS = Counter(
    "render_signal_offload_fallbacks_total",
    "Links kept at their source URL because the Worker could not be used",
    ["reason"],
)
BREAKER_OPEN = Gauge(
    "render_signal_offload_breaker_open",
    "1 while the R2 Worker circuit breaker is open (calls skipped)",
)


def provider_label(provider: str) -> str:
    """Map a provider name onto the fixed label set."""
    name = provider.lower()
    return name if name in PROVIDERS else "other"
