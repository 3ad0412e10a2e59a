"""A local recording webhook receiver for dev mode.

When no ``WEBHOOK_URL`` is configured, ``render-signal up`` starts this sink on
loopback and points notify at it, so a newcomer sees a full delivery without a
Make.com account. Every request is appended to a JSON-lines file and answered
``200 {"success": true}`` (the original's success shape). It is a
:class:`~render_signal.devstack.receiver.Receiver` that keeps its requests in
the file rather than in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from render_signal.devstack.receiver import JSON, Receiver, Recorded, Reply

__all__ = ["RecordingSink"]

SINK_REPLY = Reply(200, b'{"success": true, "message": "recorded by the dev sink"}', JSON)


class RecordingSink:
    """HTTP server on 127.0.0.1 recording requests to ``record_path``."""

    def __init__(self, record_path: Path, port: int = 0) -> None:
        self.record_path = record_path
        # history=0: a stack may run for days; the file is the record.
        self.receiver = Receiver(SINK_REPLY, port=port, history=0, on_request=self.record)

    @property
    def url(self) -> str:
        return self.receiver.url

    def record(self, request: Recorded) -> None:
        """Append ``request`` to the file (called under the receiver's lock: one writer)."""
        entry = {
            "received_at": request.at,
            "path": request.path,
            "webhook_id": request.headers.get("webhook-id"),
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "body": request.body.decode("utf-8", errors="replace"),
        }
        with self.record_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def start(self) -> RecordingSink:
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        self.receiver.start()
        return self

    def stop(self) -> None:
        self.receiver.stop()
