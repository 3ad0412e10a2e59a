"""The operator console in real Chromium, against a running :class:`Pipeline`.

Shared by the console's tests (``test_operator_console.py``) and the screenshot
command (``screenshots.py``): launch the system Chromium (``/usr/bin/chromium``,
never ``playwright install``), log in through the login form as an operator
would (the API steps are in :mod:`.operator`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

from render_signal.devstack.browser import CHROMIUM, chromium_missing, watch_page

from .pipeline import Pipeline

__all__ = ["CHROMIUM", "ConsoleBrowser", "chromium_missing", "env_defaults"]


def env_defaults(timezone: str) -> dict[str, str]:
    """Settings given by the environment, as a deployment does, which the console must
    show with their source: a delivery window that holds for the next hours (from two
    hours ago to three hours ahead, so nothing is held by it) and the polling hours."""
    now = dt.datetime.now(zoneinfo.ZoneInfo(timezone))
    start, end = now - dt.timedelta(hours=2), now + dt.timedelta(hours=3)
    return {
        "WEBHOOKS_TIME_START": start.strftime("%H:00"),
        "WEBHOOKS_TIME_END": end.strftime("%H:00"),
        "POLLING_ACTIVE_START_HOUR": "0",
        "POLLING_ACTIVE_END_HOUR": "24",
    }


class ConsoleBrowser:
    """One Chromium; pages logged in to the pipeline's gateway, problems recorded.

    ``problems`` collects uncaught page errors and Content-Security-Policy
    refusals (an inline script would be one): a test asserts it stays empty.
    """

    def __init__(self, browser: Any, pipeline: Pipeline) -> None:
        self.browser = browser
        self.pipeline = pipeline
        self.problems: list[str] = []
        self._contexts: list[Any] = []

    @classmethod
    @contextlib.contextmanager
    def launched(cls, pipeline: Pipeline) -> Iterator[ConsoleBrowser]:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            console = cls(browser, pipeline)
            try:
                yield console
            finally:
                console.close()
                browser.close()

    def new_page(
        self, *, lang: str = "fr", width: int = 1366, height: int = 768, timeout_ms: int = 15_000
    ) -> Any:
        """A fresh context (its own cookies) in ``lang`` at ``width``×``height``."""
        context = self.browser.new_context(
            base_url=self.pipeline.gateway_url,
            locale="fr-FR" if lang == "fr" else "en-GB",
            viewport={"width": width, "height": height},
        )
        context.set_default_timeout(timeout_ms)
        self._contexts.append(context)
        return watch_page(context.new_page(), self.problems)

    def login(self, page: Any, *, lang: str = "fr") -> Any:
        """Log in with the login form (``?lang=`` chosen there) and wait for the dashboard."""
        from playwright.sync_api import expect

        page.goto(f"/login?lang={lang}")
        page.fill("#username", "admin")
        page.fill("#password", self.pipeline.dashboard_password)
        page.click("#login-submit")
        page.wait_for_url(f"{self.pipeline.gateway_url}/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        return page

    def open(self, *, lang: str = "fr", width: int = 1366, height: int = 768) -> Any:
        """A logged-in dashboard page."""
        return self.login(self.new_page(lang=lang, width=width, height=height), lang=lang)

    def close(self) -> None:
        for context in self._contexts:
            with contextlib.suppress(Exception):
                context.close()
        self._contexts.clear()
