"""Prometheus metrics of the IMAP watcher (fixed label sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["CONNECTED", "LOCK_HELD", "MODE", "RECONNECTS", "SCHEDULE_ACTIVE", "set_mode"]

CONNECTED = Gauge("render_signal_imap_connected", "1 while the IMAP watcher holds a session")
MODE = Gauge("render_signal_imap_mode", "1 for the watcher's current mode", ["mode"])
RECONNECTS = Counter(
    "render_signal_imap_reconnects_total", "IMAP sessions that failed and will be retried"
)
LOCK_HELD = Gauge("render_signal_imap_lock_held", "1 while this replica holds the poller lock")
SCHEDULE_ACTIVE = Gauge(
    "render_signal_imap_schedule_active", "1 while polling_config allows watching, else 0"
)


def set_mode(mode: str | None) -> None:
    for name in ("idle", "poll"):
        MODE.labels(name).set(1 if name == mode else 0)
