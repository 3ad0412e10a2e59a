"""The dev ``.env``: written on first ``make run`` with random secrets.

A fresh clone has no ``.env``; ``render-signal up`` writes one in dev mode so
the stack starts with no accounts and no hand-made secrets. An existing file
is never overwritten.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["DEV_TEMPLATE", "ensure_dev_env", "is_generated_dev_env"]

MARKER = "# Written by `render-signal up`"

DEV_TEMPLATE = """\
{marker} on {date} for local development.
# Secrets below are random and local to this checkout; never commit this file.
RENDER_SIGNAL_ENV=dev
SECRET_KEY={secret_key}
DASHBOARD_USER=admin
DASHBOARD_PASSWORD={password}
PROCESS_API_TOKEN={api_token}
WEBHOOK_SIGNING_SECRET=whsec_{signing}
HEARTBEAT_INTERVAL_SECONDS=60
# WEBHOOK_URL is left unset: dev mode then delivers to a local recording sink.
# IMAP_SERVER is left unset: emails arrive through `render-signal send` or HTTP ingress.
"""


def ensure_dev_env(path: Path) -> bool:
    """Create ``path`` with dev defaults if it does not exist. True when written."""
    if path.exists():
        return False
    import base64
    import datetime as dt

    text = DEV_TEMPLATE.format(
        marker=MARKER,
        date=dt.date.today().isoformat(),
        secret_key=secrets.token_urlsafe(48),
        password=secrets.token_urlsafe(12),
        api_token=secrets.token_urlsafe(32),
        signing=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    return True


def is_generated_dev_env(path: Path) -> bool:
    """True when ``path`` is the dev file ``ensure_dev_env`` wrote (its secrets are throwaway)."""
    try:
        return path.read_text(encoding="utf-8").startswith(MARKER)
    except OSError:
        return False
