"""``make screenshots``: every page of the console, in French and English, at 1366×768
and 390×844, written to ``docs/screenshots/<page>-<lang>-<width>.png``.

Opt-in (never part of ``make test``): it starts the real pipeline
(:class:`~tests.integration.harness.pipeline.Pipeline`: Redis, Dovecot, the Worker
in workerd, the four services), feeds it sample emails so every view has
something true to show (delivered, skipped, dead-lettered after the receiver
answered 500, held by Absence Globale), runs the test buttons, then drives the
system Chromium through each page. Pages are shot from the top, at most
:data:`MAX_HEIGHT` pixels tall, to keep the PNGs small, then
quantised with ``pngquant`` when it is installed (``apt-get install pngquant``:
about three times smaller, no visible change for flat UI colours).

    uv run python -m tests.integration.screenshots [--out DIR] [--serve]

``--serve`` leaves the seeded pipeline running and prints its URL and login
(for working on the page by hand); Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path
from typing import Any

import httpx
from render_signal.devstack.polling import wait_until

from .harness.console import ConsoleBrowser, chromium_missing, env_defaults
from .harness.operator import post_email
from .harness.pipeline import Pipeline, missing_components

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "screenshots"
SIZES = ((1366, 768), (390, 844))
LANGS = ("fr", "en")
MAX_HEIGHT = 2000
PAGES = (
    "login",
    "overview",
    "history",
    "email",
    "webhooks",
    "routing",
    "schedule",
    "operations",
    "tools",
)


def _state(client: httpx.Client, email_id: str, wanted: str) -> None:
    def reached() -> bool:
        reply = client.get(f"/api/emails/{email_id}")
        return reply.status_code == 200 and reply.json().get("state") == wanted

    wait_until(reached, 60, lambda: f"email {email_id} never reached {wanted}")


def seed(pipeline: Pipeline) -> dict[str, str]:
    """Sample history; returns the ids the screenshots open (``dead``)."""
    with pipeline.dashboard() as client:
        rule = {
            "id": "urgent",
            "name": "Urgences Média Solution",
            "conditions": [{"field": "subject", "operator": "contains", "value": "URGENT"}],
            "actions": {"webhook_url": pipeline.receiver.url_for("/urgent"), "priority": "high"},
        }
        assert client.post("/api/routing_rules", json={"rules": [rule]}).status_code == 200
        pipeline.receiver.set_phase("500")
        _marker, dead = post_email(pipeline, marker="Lot-41")
        _state(client, dead, "dead_letter")
        pipeline.receiver.set_phase("ok")
        for lot in ("Lot-42", "Lot-43", "Lot-44"):
            _marker, delivered = post_email(pipeline, marker=lot)
            _state(client, delivered, "delivered")
        _marker, skipped = post_email(pipeline, marker="Lot-43", subject_prefix="Re: ")
        _state(client, skipped, "skipped")
        day = dt.datetime.now(zoneinfo.ZoneInfo(pipeline.timezone)).strftime("%A").lower()
        absence = {"absence_pause_enabled": True, "absence_pause_days": [day]}
        assert client.post("/api/absence", json=absence).status_code == 200
        _marker, held = post_email(pipeline, marker="Lot-45")
        _state(client, held, "deferred")
    return {"dead": dead}


def _settle(page: Any) -> None:
    """Wait for what the page is loading (no fixed sleep): every aria-busy cleared.

    (Not ``wait_for_function``: a string predicate is eval'd, which the CSP refuses.)
    """
    from playwright.sync_api import expect

    expect(page.locator('[aria-busy="true"]')).to_have_count(0)


def shoot(console: ConsoleBrowser, out: Path, ids: dict[str, str]) -> list[Path]:
    from playwright.sync_api import expect

    written: list[Path] = []
    for lang in LANGS:
        for width, height in SIZES:
            page = console.new_page(lang=lang, width=width, height=height)

            def save(name: str, page: Any = page, lang: str = lang, width: int = width) -> None:
                _settle(page)
                full = int(page.evaluate("document.documentElement.scrollHeight"))
                path = out / f"{name}-{lang}-{width}.png"
                page.screenshot(
                    path=str(path),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": min(full, MAX_HEIGHT)},
                )
                written.append(path)

            page.goto(f"/login?lang={lang}")
            save("login")
            console.login(page, lang=lang)
            for button in ("[data-run=webhook][data-target=default]", "#check-imap"):
                page.click(button)
            for row in ('[data-check="webhook"][data-target="default"]', '[data-check="imap"]'):
                expect(page.locator(f"{row} .check-result")).to_have_attribute(
                    "data-outcome", "ok", timeout=30_000
                )
            save("overview")
            page.click("#tab-history")
            expect(page.locator("#history-rows > li").first).to_be_visible()
            save("history")
            page.goto(f"/#history/{ids['dead']}")
            expect(page.locator("#email-detail .attempt").first).to_be_visible()
            save("email")
            for tab in ("webhooks", "routing", "schedule", "operations", "tools"):
                page.click(f"#tab-{tab}")
                save(tab)
            page.context.close()
    return written


def shrink(paths: list[Path]) -> None:
    """Quantise the PNGs in place with pngquant, when it is installed."""
    pngquant = shutil.which("pngquant")
    if pngquant is None or not paths:
        print("pngquant not found: PNGs left as Chromium wrote them", file=sys.stderr)
        return
    subprocess.run(
        [pngquant, "--force", "--ext", ".png", "--quality", "70-95", "--strip", *map(str, paths)],
        check=True,
        timeout=300,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"directory (default {OUT})")
    parser.add_argument("--serve", action="store_true", help="keep the seeded pipeline running")
    args = parser.parse_args(argv)
    missing = missing_components() or chromium_missing()
    if missing:
        print(f"screenshots need the real components: {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rs-screenshots-") as tmp:
        env = {"WEBHOOK_MAX_ATTEMPTS": "2", **env_defaults("Europe/Paris")}
        with Pipeline(Path(tmp), extra_env=env, timezone="Europe/Paris") as pipeline:
            ids = seed(pipeline)
            if args.serve:
                print(f"{pipeline.gateway_url}  admin / {pipeline.dashboard_password}", flush=True)
                try:
                    while True:
                        time.sleep(3600)  # until Ctrl-C: a dev server, not synchronisation
                except KeyboardInterrupt:
                    return 0
            args.out.mkdir(parents=True, exist_ok=True)
            with ConsoleBrowser.launched(pipeline) as console:
                written = shoot(console, args.out, ids)
            if console.problems:
                print("\n".join(console.problems), file=sys.stderr)
                return 1
    shrink(written)
    total = sum(p.stat().st_size for p in written)
    print(f"{len(written)} screenshots, {total // 1024} KiB, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
