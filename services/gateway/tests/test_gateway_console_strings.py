"""The console's words: complete in both languages, for every code the APIs answer,
and rendered as text (issue 13, polish).

The browser tests check what the page shows; these check the tables it draws from,
so a state or event kind added to a contract without its French and English names
fails here, not in front of an operator.
"""

from __future__ import annotations

import re
from typing import get_args

import httpx
import msgspec
from gateway_testkit import Gateway
from render_signal.common.records import EmailState, TargetState, TimelineEvent
from render_signal.gateway.i18n import LANG_COOKIE, strings

PROBLEM_KINDS = (
    "service_down",
    "service_stalled",
    "imap",
    "delivery",
    "target_disabled",
    "dead_letters",
    "sending_paused",
    "worker",
    "backlog",
)
#: Failure and deferral reasons of notify's attempts, and ingest's skip reasons.
REASONS = (
    "bot_protection_denied",
    "unsupported_media_type",
    "rate_limited",
    "upstream_server_error",
    "upstream_client_error",
    "remote_application_error",
    "request_failed",
    "sending_disabled",
    "absence",
    "outside_window",
    "no_target",
    "no_links",
    "target_disabled",
    "gone",
    "retries_exhausted",
    "gmail_ingress_disabled",
    "duplicate",
    "sender_not_allowed",
    "reply_prefix",
    "excluded_keyword",
)


def _event_kinds() -> tuple[str, ...]:
    kind = next(f for f in msgspec.structs.fields(TimelineEvent) if f.name == "kind")
    return get_args(kind.type)


def test_french_and_english_have_the_same_keys_and_no_empty_text() -> None:
    french, english = strings("fr"), strings("en")
    assert set(french) == set(english)
    assert [key for key, text in {**french, **english}.items() if not text.strip()] == []


def test_no_key_is_shadowed_by_a_dict_method_in_templates() -> None:
    """Jinja reads ``t.copy`` as the dict's ``copy`` method: the copy button once showed
    ``<built-in method copy of dict ...>``. No key may be a dict attribute."""
    assert sorted(set(strings("fr")) & set(dir(dict))) == []


def test_every_code_the_apis_answer_has_a_name_in_both_languages() -> None:
    wanted = [f"state_{s}" for s in {*get_args(EmailState), *get_args(TargetState)}]
    wanted += [f"event_{kind}" for kind in _event_kinds()]
    wanted += [f"problem_{kind}" for kind in PROBLEM_KINDS]
    wanted += [f"problem_kind_{kind}" for kind in PROBLEM_KINDS]
    wanted += [f"reason_{reason}" for reason in REASONS]
    for lang in ("fr", "en"):
        table = strings(lang)
        assert [key for key in wanted if key not in table] == [], lang


def test_no_text_shows_a_raw_code() -> None:
    """A name is words: no string of either table spells a code like ``request_failed``
    (environment variables, in capitals, are fine: the operator sets them)."""
    raw = re.compile(r"\b[a-z]+_[a-z_]+\b")
    for lang in ("fr", "en"):
        assert {k: v for k, v in strings(lang).items() if raw.search(v)} == {}, lang


async def test_the_dashboard_renders_the_copy_button_as_text(authed: httpx.AsyncClient) -> None:
    page = await authed.get("/?lang=fr")
    assert page.status_code == 200
    assert "built-in method" not in page.text
    assert re.search(r'id="magic-copy">Copier<', page.text)
    english = await authed.get("/?lang=en")
    assert re.search(r'id="magic-copy">Copy<', english.text)


async def test_the_login_page_honours_lang_and_remembers_it(gateway: Gateway) -> None:
    async with gateway.client(headers={"Accept-Language": "fr-FR"}) as client:
        english = await client.get("/login?lang=en")
        assert '<html lang="en">' in english.text and ">Sign in</button>" in english.text
        assert english.cookies.get(LANG_COOKIE) == "en"
        again = await client.get("/login")  # the choice sticks, whatever the browser says
        assert '<html lang="en">' in again.text
        french = await client.get("/login?lang=fr")
        assert ">Se connecter</button>" in french.text
