"""Fault-injection hooks for crash tests. Inert unless configured.

``RENDER_SIGNAL_FAULT=<point>`` (honoured only in dev/test mode,
``RENDER_SIGNAL_ENV=test``) makes the process SIGKILL itself the first time it
reaches ``<point>``. Points:

* ``ingest.after_publish`` — right after XADD of a raw email to ``mail.raw``,
  before the IMAP checkpoint advances and before \\Seen is set.

A test restarts the process without the variable to observe recovery.
"""

from __future__ import annotations

import logging
import os
import signal

__all__ = ["FaultPoints"]

logger = logging.getLogger(__name__)


class FaultPoints:
    """Holds the one configured fault point (or none)."""

    def __init__(self, point: str = "") -> None:
        self.point = point
        if point:
            logger.warning("FAULT: fault injection armed at %s (test hook)", point)

    def hit(self, point: str) -> None:
        """Kill this process at once if ``point`` is the armed one."""
        if self.point and point == self.point:
            logger.warning("FAULT: %s reached; SIGKILL self", point)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)
