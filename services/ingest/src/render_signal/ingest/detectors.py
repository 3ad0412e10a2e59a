"""Detectors: the original's email classifications (original-system.md §3.4).

* ``recadrage`` — Média Solution "Missions Recadrage - Lot N" emails with a
  provider link and a delivery time (``HHhMM`` or ``le dd/mm/YYYY à HHhMM``;
  ``URGENCE`` in the subject means local now + 1 h).
* ``desabonnement_journee_tarifs`` — the "journée / tarifs habituels" offer
  with an unsubscribe mention or a Dropbox file request; ``is_urgent`` set
  when "urgent"/"urgence" appears.

RECADRAGE is tried first; DESABO only when RECADRAGE did not match. Which
detectors run comes from config document ``processing_prefs`` key
``detectors_enabled`` (default: both). Every regex has bounded repetitions.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from typing import AnyStr
from zoneinfo import ZoneInfo

import msgspec
from render_signal.common.events import DeliveryLink

__all__ = [
    "ALL_DETECTORS",
    "DESABO",
    "RECADRAGE",
    "Detection",
    "detect",
    "normalise",
]

RECADRAGE = "recadrage"
DESABO = "desabonnement_journee_tarifs"
ALL_DETECTORS = (RECADRAGE, DESABO)

#: Providers whose link makes a recadrage email actionable.
RECADRAGE_PROVIDERS = frozenset({"dropbox", "fromsmash", "swisstransfer", "wetransfer"})
_SUBJECT_LITERAL = "Média Solution - Missions Recadrage - Lot"
_SUBJECT_TOKENS = ("media solution", "missions recadrage", "lot")
_FORBIDDEN = ("annulation", "facturation", "facture", "moment", "reference client", "total ht")
_DROPBOX_REQUEST = "https://www.dropbox.com/request/"

_A = r"[àa]"
_SP = r"\s{1,10}"
_CLOCK = r"(\d{1,2})(?:[hH](\d{0,2})|:(\d{2}))"
_DATE_TIME = re.compile(
    rf"{_A}{_SP}faire{_SP}pour{_SP}le{_SP}(\d{{1,2}})/(\d{{1,2}})/(\d{{4}}){_SP}"
    rf"(?:{_A}\s{{0,10}}){{1,2}}{_CLOCK}",
    re.IGNORECASE,
)
_TIME_ONLY = re.compile(rf"{_A}{_SP}faire{_SP}pour{_SP}{_CLOCK}", re.IGNORECASE)
_ANY_TIME = re.compile(r"\b(\d{1,2})(?:[hH](\d{0,2})|:(\d{2}))\b")
#: Both phrases above contain "faire" 2 to 11 characters after their start.
_FAIRE = re.compile("faire", re.IGNORECASE)
#: The only non-ASCII characters IGNORECASE matches to a letter of "faire" (İ and
#: ı match "i"); İ is also the only character ``str.lower`` turns into two.
_FAIRE_NON_ASCII = ("\u0130", "\u0131")
_URGENCE_WORD = re.compile(r"\burgence\b")
#: Distinct combining marks removed one ``str.replace`` each (a pass over the text
#: apiece); text with more is filtered character by character instead.
_MAX_MARK_PASSES = 16


class Detection(msgspec.Struct, frozen=True, kw_only=True):
    """A detector's verdict (all defaults = nothing detected)."""

    detector: str | None = None
    delivery_time: str | None = None
    is_urgent: bool = False
    has_dropbox_request: bool = False


def _strip_marks(decomposed: str) -> str:
    """``decomposed`` without its combining characters (those of combining class > 0).

    A generator testing every character took 3 ms per email of the bench corpus
    when the second detector reads the body (40 ms on a 500 KB one). Decomposed
    text holds few distinct marks (one per accent kind), so each is removed with
    one ``str.replace``; the same characters go, the rest keep their order.
    """
    if decomposed.isascii():
        return decomposed
    marks = [c for c in set(decomposed) if not c.isascii() and unicodedata.combining(c)]
    if len(marks) > _MAX_MARK_PASSES:  # hostile or exotic text: one pass, as before
        return "".join(c for c in decomposed if not unicodedata.combining(c))
    for mark in marks:
        decomposed = decomposed.replace(mark, "")
    return decomposed


def normalise(text: str) -> str:
    """Accent-stripped, lowercased, whitespace-collapsed."""
    stripped = _strip_marks(unicodedata.normalize("NFKD", text))
    return " ".join(stripped.lower().split())


def _hhmm(hour: str, minutes: str | None) -> str:
    return f"{int(hour):02d}h{int(minutes or 0):02d}"


def _offsets(haystack: AnyStr, needle: AnyStr) -> list[int]:
    found, pos = [], haystack.find(needle)
    while pos >= 0:
        found.append(pos)
        pos = haystack.find(needle, pos + 1)
    return found


def _faire_offsets(body: str) -> list[int]:
    """Start of every :data:`_FAIRE` match (overlaps impossible), by substring search.

    The case-insensitive regex tested every position of the body: 0.29 ms per
    bench email, 10 % of ingest's samples under load (``<listcomp>`` in
    bench/results/profile-after.txt). Without İ/ı a match is exactly an ASCII
    case variant of "faire", so a find on the lowered text (same offsets: no
    character changes length) finds the same starts; text that fits Latin-1 is
    lowered as bytes, which only folds ASCII, and faster.
    """
    if any(char in body for char in _FAIRE_NON_ASCII):
        return [m.start() for m in _FAIRE.finditer(body)]
    try:
        data = body.encode("latin-1")
    except UnicodeEncodeError:
        return _offsets(body.lower(), "faire")
    return _offsets(data.lower(), b"faire")


def _search_near(pattern: re.Pattern[str], body: str, faire: list[int]) -> re.Match[str] | None:
    """``pattern.search(body)`` for a phrase starting ``[àa]\\s{1,10}faire``: only the
    starts 2 to 11 characters before an occurrence of "faire" (``faire``: their
    offsets, found by :data:`_FAIRE`, same flags) can match, so only those are
    tried, leftmost first -- the same match. A miss no longer scans the body with
    the whole pattern: that was ~1.3 ms per email on the bench corpus (11 % of
    ingest, bench/results/flame-ingest-gil.svg), 10 ms on a 500 KB body.
    """
    starts = sorted({s for f in faire for s in range(max(0, f - 11), f - 1)})
    for start in starts:
        match = pattern.match(body, start)
        if match:
            return match
    return None


def _delivery_time(
    subject_norm: str, body: str, now: Callable[[], dt.datetime], tz: ZoneInfo
) -> str | None:
    if _URGENCE_WORD.search(subject_norm):
        local = now().astimezone(tz) + dt.timedelta(hours=1)
        return f"{local.hour:02d}h{local.minute:02d}"
    faire = _faire_offsets(body)
    match = _search_near(_DATE_TIME, body, faire)
    if match:
        day, month, year, hour, m_h, m_colon = match.groups()
        return f"le {int(day):02d}/{int(month):02d}/{year} à {_hhmm(hour, m_h or m_colon)}"
    match = _search_near(_TIME_ONLY, body, faire)
    if match:
        hour, m_h, m_colon = match.groups()
        return _hhmm(hour, m_h or m_colon)
    match = _ANY_TIME.search(body)
    if match:
        hour, m_h, m_colon = match.groups()
        return _hhmm(hour, m_h or m_colon)
    return None


def _is_recadrage_subject(subject: str, subject_norm: str) -> bool:
    if _SUBJECT_LITERAL in subject:
        return True
    return all(token in subject_norm for token in _SUBJECT_TOKENS)


def detect(
    *,
    subject: str,
    body: str,
    raw_content: str,
    links: Sequence[DeliveryLink],
    enabled: Collection[str] = ALL_DETECTORS,
    now: Callable[[], dt.datetime] | None = None,
    timezone: str = "Europe/Paris",
) -> Detection:
    """Classify one email.

    Args:
        subject: decoded subject.
        body: readable text (plain parts plus the HTML's text).
        raw_content: plain text plus raw HTML (for the Dropbox request URL).
        links: provider links already extracted.
        enabled: detector names to run.
        now: clock returning an aware datetime (injectable for tests).
        timezone: ``POLLING_TIMEZONE`` for the URGENCE delivery time.
    """
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    subject_norm = normalise(subject)
    if RECADRAGE in enabled:
        has_link = any(link.provider in RECADRAGE_PROVIDERS for link in links)
        if has_link and _is_recadrage_subject(subject, subject_norm):
            when = _delivery_time(subject_norm, body, clock, ZoneInfo(timezone))
            if when is not None:
                return Detection(detector=RECADRAGE, delivery_time=when)
    if DESABO in enabled:
        body_norm = normalise(body)
        has_request = _DROPBOX_REQUEST in raw_content
        if (
            "journee" in body_norm
            and "tarifs habituels" in body_norm
            and ("desabonn" in body_norm or "desabonn" in subject_norm or has_request)
            and not any(term in body_norm for term in _FORBIDDEN)
        ):
            urgent = any(w in subject_norm or w in body_norm for w in ("urgent", "urgence"))
            return Detection(detector=DESABO, is_urgent=urgent, has_dropbox_request=has_request)
    return Detection()
