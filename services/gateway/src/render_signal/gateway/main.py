"""Entry point: ``render-signal-gateway`` (uvicorn serving :func:`create_app`)."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from render_signal.common.allocator import tune_allocator
from render_signal.common.legacyenv import warn_legacy_variables
from render_signal.common.logs import setup_logging
from render_signal.common.runtime import HAND_BACK_SHARE
from render_signal.common.settings import load_or_exit, warn_exposed_dev_mode
from render_signal.gateway.app import create_app
from render_signal.gateway.settings import read_settings

__all__ = ["main"]

logger = logging.getLogger(__name__)


class GatewayServer(uvicorn.Server):
    """uvicorn with the original's shutdown log line."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            logger.info("PROCESS: SIGTERM received; shutting down gracefully (signal %d)", sig)
        super().handle_exit(sig, frame)


def main() -> None:
    settings = load_or_exit(read_settings)
    setup_logging("gateway", settings.common.log_level, settings.common.log_format)
    tune_allocator()
    warn_legacy_variables(settings.common.env_set)
    warn_exposed_dev_mode(settings.common, settings.host, "HOST")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.common.metrics_port,
        log_config=None,
        access_log=False,
        # SecurityMiddleware reads X-Forwarded-* (TRUSTED_PROXIES / TRUSTED_PROXY_HOPS);
        # uvicorn's reading would take the leftmost address, which the client writes.
        proxy_headers=False,
        # Requests in flight get the drain's share the workers' handlers get; the
        # lifespan's close (GatewayContext.close) has the rest, so the whole stop fits
        # DRAIN_TIMEOUT_SECONDS even when each Redis call hangs (a Redis host name
        # that stops resolving: 23.3 s for a 20 s drain when requests had all of it).
        timeout_graceful_shutdown=max(
            1, int(settings.common.drain_timeout_s * (1 - HAND_BACK_SHARE))
        ),
    )
    GatewayServer(config).run()


if __name__ == "__main__":
    main()
