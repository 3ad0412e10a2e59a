"""Driving the system Chromium in tests: where it is, and what a page did wrong.

Tests use ``/usr/bin/chromium`` (apt), never a browser downloaded by
``playwright install``. :func:`watch_page` records what an operator would see
as breakage: uncaught page errors and Content-Security-Policy refusals (an
inline script or style the CSP blocks); a test asserts the list stays empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "chromium_missing", "watch_page"]

CHROMIUM = Path("/usr/bin/chromium")


def chromium_missing() -> str | None:
    """Why Chromium cannot be driven here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    return None


def watch_page(page: Any, problems: list[str]) -> Any:
    """Append ``page``'s errors and CSP refusals to ``problems``; returns ``page``."""
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def console(message: Any) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused" in text):
            problems.append(f"CSP: {text}")

    page.on("console", console)
    return page
