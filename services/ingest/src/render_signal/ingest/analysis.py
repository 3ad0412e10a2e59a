"""Parse, extract links, detect: the synchronous, CPU-bound part of ingest.

Runs in a worker thread (the service) or in a loop (the benchmark). Everything
here is bounded by the caps in :mod:`render_signal.ingest.message` and
:mod:`render_signal.ingest.links`.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Collection

import msgspec
from render_signal.common.events import DeliveryLink, MailRaw
from render_signal.ingest.detectors import ALL_DETECTORS, Detection, detect
from render_signal.ingest.links import extract_links
from render_signal.ingest.message import (
    ParsedEmail,
    ParseLimits,
    read_gmail_push,
    read_raw_email,
)

__all__ = ["Analysis", "analyse", "html_text", "read_event"]

_TAG = re.compile(r"<[^<>]{0,4096}>")
_HIDDEN = ("script", "style")
_HIDDEN_START = re.compile("<(?:script|style)", re.IGNORECASE)


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """One email, parsed and classified."""

    parsed: ParsedEmail
    links: tuple[DeliveryLink, ...]
    detection: Detection


def _drop_hidden(markup: str) -> str:
    """Remove ``<script>``/``<style>`` elements (linear: one pass with find)."""
    # Lowering the whole markup to look for them was 0.22 of _drop_hidden's
    # 0.27 ms per HTML email, and most HTML has neither (2.8 % of ingest's
    # samples, bench/results/profile-after.txt). Every character that lowers to
    # a letter of these tags also matches it under IGNORECASE, so when this
    # search (fast: it looks for "<" first) misses, ``lower`` has neither.
    if not _HIDDEN_START.search(markup):
        return markup
    return _cut_hidden(markup)


def _cut_hidden(markup: str) -> str:
    """:func:`_drop_hidden` without its shortcut (the property tests' oracle)."""
    lower = markup.lower()
    if "<script" not in lower and "<style" not in lower:
        return markup
    pieces: list[str] = []
    pos = 0
    while True:
        starts = [i for i in (lower.find("<" + t, pos) for t in _HIDDEN) if i >= 0]
        if not starts:
            pieces.append(markup[pos:])
            break
        start = min(starts)
        tag = "script" if lower.startswith("<script", start) else "style"
        pieces.append(markup[pos:start])
        end = lower.find("</" + tag, start)
        if end < 0:
            break
        close = lower.find(">", end)
        pos = len(markup) if close < 0 else close + 1
    return " ".join(pieces)


def html_text(markup: str) -> str:
    """Readable text of HTML: hidden elements and tags removed, entities decoded."""
    if not markup:
        return ""
    text = _TAG.sub(" ", _drop_hidden(markup))
    return " ".join(html.unescape(text).split())


def read_event(event: MailRaw, limits: ParseLimits) -> ParsedEmail:
    """Parse a ``mail.raw`` event from any source."""
    if event.source == "gmail_push":
        return read_gmail_push(event.gmail, limits)
    return read_raw_email(event.raw, limits)


def analyse(
    parsed: ParsedEmail,
    *,
    detectors: Collection[str] = ALL_DETECTORS,
    now: Callable[[], dt.datetime] | None = None,
    timezone: str = "Europe/Paris",
) -> Analysis:
    """Links (text then HTML, deduplicated) and the detector verdict."""
    links = tuple(extract_links(parsed.body_text, parsed.body_html))
    detection = Detection()
    if detectors:
        readable = parsed.body_text + "\n" + html_text(parsed.body_html)
        detection = detect(
            subject=parsed.subject,
            body=readable,
            raw_content=parsed.body_text + "\n" + parsed.body_html,
            links=links,
            enabled=detectors,
            now=now,
            timezone=timezone,
        )
    return Analysis(parsed=parsed, links=links, detection=detection)
