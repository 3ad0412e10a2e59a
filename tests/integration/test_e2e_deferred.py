"""A deferred email survives a restart of every service and Redis (issue 8, acceptance 3).

The ``webhook_config`` window opens a few seconds from now in
``POLLING_TIMEZONE`` (a private zone, see ``harness/tzshift.py``). The email
arrives outside the window and is parked; then all four services and Redis
are restarted (SIGTERM, AOF on); the email must reach the receiver once the
window opens -- not before, and exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from render_signal.common.keys import Keys
from render_signal.devstack.polling import wait_until

from .harness.fakes import marker_of
from .harness.mail import make_email
from .harness.pipeline import Pipeline
from .harness.tzshift import shifted_zone
from .harness.window import hhmm

pytestmark = pytest.mark.integration

OPENS_IN_S = 15.0


def _log_statuses(pipeline: Pipeline, marker: str) -> list[str]:
    client = pipeline.sync_redis()
    try:
        raw = client.lrange(Keys(pipeline.key_prefix).webhook_log, 0, 200)
    finally:
        client.close()
    entries = [json.loads(item) for item in raw]
    return [str(e.get("status")) for e in reversed(entries) if marker in str(e.get("subject"))]


def test_deferred_email_survives_restarts_and_is_sent_once_when_window_opens(
    pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    zones = tmp_path / "zoneinfo"
    zone, opens_at = shifted_zone(zones, OPENS_IN_S)
    pipeline = pipeline_factory(timezone=zone, extra_env={"PYTHONTZPATH": str(zones)})
    import zoneinfo

    zoneinfo.reset_tzpath([str(zones)])
    try:
        local_open = dt.datetime.fromtimestamp(opens_at, ZoneInfo(zone))
    finally:
        zoneinfo.reset_tzpath()
    assert local_open.second == 0
    start = local_open.hour * 60 + local_open.minute
    window = {"webhook_time_start": hhmm(start), "webhook_time_end": hhmm(start + 30)}
    pipeline.put_config("webhook_config", window)

    marker = f"E2E-{int(time.time()):x}-7"
    pipeline.ingress.post(marker, make_email(marker))
    wait_until(lambda: "deferred" in _log_statuses(pipeline, marker), 15, "the deferral log entry")
    assert time.time() < opens_at - 5, "set-up too slow: the window opened before the restarts"
    assert pipeline.receiver.requests == []

    # Restart everything, Redis included (SIGTERM: a normal restart / deploy).
    for service in pipeline.services.values():
        service.stop()
    pipeline.restart_redis(kill=False)
    for service in pipeline.services.values():
        service.start()
    pipeline.wait_all_ready()
    restarted_at = time.time()
    assert restarted_at < opens_at, "restarts took longer than the lead time"
    print(f"deferred: all services and Redis restarted {opens_at - restarted_at:.1f}s before open")

    delivery = pipeline.receiver.wait_for_markers({marker}, timeout_s=OPENS_IN_S + 20)[marker]
    print(f"deferred: delivered {delivery.at - opens_at:+.2f}s after the window opened")
    assert delivery.at >= opens_at, "sent before the window opened"
    assert delivery.json["webhooks_time_start"] == "maintenant"
    assert delivery.json["webhooks_time_end"] == window["webhook_time_end"]

    # Exactly once: the job is finished (nothing left scheduled), one request only.
    client = pipeline.sync_redis()
    try:
        wait_until(
            lambda: client.zcard(Keys(pipeline.key_prefix).notify_scheduled) == 0,
            10,
            "the notify schedule to drain",
        )
    finally:
        client.close()
    wait_until(lambda: "success" in _log_statuses(pipeline, marker), 5, "the success log entry")
    assert [marker_of(d) for d in pipeline.receiver.requests] == [marker]
    assert _log_statuses(pipeline, marker).count("success") == 1
