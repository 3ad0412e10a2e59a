"""Entry point: ``render-signal-gateway`` (uvicorn serving :func:`create_app`)."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from render_signal.common.legacyenv import warn_legacy_variables
from render_signal.common.logs import setup_logging
from render_signal.common.settings import load_or_exit
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
    warn_legacy_variables(settings.common.env_set)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.common.metrics_port,
        log_config=None,
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        timeout_graceful_shutdown=int(settings.common.drain_timeout_s),
    )
    GatewayServer(config).run()


if __name__ == "__main__":
    main()
