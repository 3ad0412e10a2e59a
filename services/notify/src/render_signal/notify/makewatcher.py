"""MAKE_WATCHER: start/stop Make.com scenarios as sending is switched off/on.

Desired state = ``webhook_sending_enabled`` AND today (``POLLING_TIMEZONE``) is
not an Absence Globale day. The Make API is called only when the desired
state changes (the first evaluation always applies, as the original did):
``POST <base>/api/v2/scenarios/<id>/start|stop`` with
``Authorization: Token <MAKECOM_API_KEY>``. Inactive without a key or ids.
This is the only place the key is sent: to ``MAKE_API_BASE_URL`` (checked at
start, and at connect time by the guarded client), never to a webhook target.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from zoneinfo import ZoneInfo

import httpx
from redis.exceptions import RedisError
from render_signal.common.configstore import ConfigWatcher
from render_signal.common.outboundhttp import guarded_client
from render_signal.notify.clock import Clock
from render_signal.notify.liveconfig import load_live_config
from render_signal.notify.settings import NotifySettings

__all__ = ["MakeWatcher"]

logger = logging.getLogger(__name__)


class MakeWatcher:
    def __init__(
        self,
        settings: NotifySettings,
        watcher: ConfigWatcher,
        clock: Clock,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.watcher = watcher
        self.clock = clock
        self.client = client or guarded_client(
            settings.common.outbound_policy(), timeout=httpx.Timeout(15.0)
        )
        self.applied: bool | None = None

    async def desired(self) -> tuple[bool, tuple[str, ...]]:
        config = await load_live_config(self.watcher, self.settings)
        gate = config.gate
        today = dt.datetime.fromtimestamp(self.clock.now(), ZoneInfo(gate.timezone)).weekday()
        absent = gate.absence_enabled and today in gate.absence_days
        return gate.sending_enabled and not absent, config.scenario_ids

    async def tick(self) -> dict[str, bool] | None:
        """Apply the desired state if it changed; returns per-scenario results or None."""
        if not self.settings.makecom_api_key:
            return None
        wanted, scenario_ids = await self.desired()
        if not scenario_ids or wanted == self.applied:
            return None
        action = "start" if wanted else "stop"
        results: dict[str, bool] = {}
        for scenario in scenario_ids:
            url = f"{self.settings.make_api_base_url}/api/v2/scenarios/{scenario}/{action}"
            try:
                response = await self.client.post(
                    url, headers={"Authorization": f"Token {self.settings.makecom_api_key}"}
                )
                ok, status = response.is_success, str(response.status_code)
            except httpx.HTTPError as exc:
                ok, status = False, type(exc).__name__
            results[scenario] = ok
            logger.info(
                "MAKE_WATCHER: %s scenario %s -> ok=%s status=%s", action, scenario, ok, status
            )
        if all(results.values()):
            self.applied = wanted
        return results

    async def run(self, stop: asyncio.Event) -> None:
        if not self.settings.makecom_api_key:
            logger.info("MAKE_WATCHER: inactive (MAKECOM_API_KEY not set)")
            await stop.wait()  # a component returning early would stop the whole runtime
            await self.client.aclose()
            return
        while not stop.is_set():
            try:
                await self.tick()
            except (RedisError, OSError) as exc:
                logger.warning("MAKE_WATCHER: check failed (%s)", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.make_watcher_interval_s)
        await self.client.aclose()
