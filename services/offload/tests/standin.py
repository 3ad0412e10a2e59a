"""A programmable R2 Worker stand-in: the shared recording receiver, speaking the Worker's protocol.

Modes (set ``worker.mode``; may change between requests):

* ``ok`` — 200 ``{success:true, r2_url, object_key, original_filename}``
* ``500`` — HTTP 500 with a plain-text body
* ``hang`` — holds the request until :meth:`WorkerStandIn.release` (or ``hang_max_s``),
  then answers like ``ok``
* ``fail`` — 200 ``{success:false, error}``
* ``source502`` — 502 ``{success:false, error:"Source fetch failed: 404"}`` (the real
  Worker's answer when the provider fails)
* ``badjson`` — 200 with a body that is not JSON
* ``close`` — drops the connection without any response

Every request is recorded (arrival time, headers, body; ``request.json`` is the
Worker request) before answering; ``in_flight``/``max_in_flight`` count
concurrent calls.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from render_signal.devstack.receiver import JSON, Receiver, Recorded, Reply

WORKER_502 = {"success": False, "error": "Source fetch failed: 404"}


class WorkerStandIn(Receiver):
    """Start with ``with WorkerStandIn() as worker:``; ``worker.url`` is the endpoint."""

    def __init__(self, mode: str = "ok", *, hang_max_s: float = 30.0) -> None:
        super().__init__(self._answer, path="/")
        self.mode = mode
        self.hang_max_s = hang_max_s
        self.filename: str | None = "report final.zip"
        self.public_base = "https://r2.test.invalid"
        #: In ``hang`` mode, hang only requests for these email ids (None: all).
        self.hang_only: set[str] | None = None

    def _answer(self, request: Recorded) -> Reply:
        body: dict[str, Any] = request.json if isinstance(request.json, dict) else {}
        mode = self.mode
        if mode == "hang" and (self.hang_only is None or body.get("email_id") in self.hang_only):
            return dataclasses.replace(self._ok(body), hold=True, hold_max_s=self.hang_max_s)
        if mode == "close":
            return Reply(drop=True)
        if mode == "500":
            return Reply(500, b"internal error", {"Content-Type": "text/plain"})
        if mode == "source502":
            return Reply(502, json.dumps(WORKER_502).encode(), JSON)
        if mode == "fail":
            return Reply(200, json.dumps({"success": False, "error": "nope"}).encode(), JSON)
        if mode == "badjson":
            return Reply(200, b"{not json", JSON)
        return self._ok(body)

    def _ok(self, body: dict[str, Any]) -> Reply:
        key = body.get("object_key", "")
        payload = {
            "success": True,
            "r2_url": f"{self.public_base}/{key}",
            "object_key": key,
            "original_filename": self.filename,
        }
        return Reply(200, json.dumps(payload).encode(), JSON)
