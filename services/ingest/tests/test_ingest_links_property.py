"""Property: the link extractor never raises and finds every planted link,
in plain text, in HTML attributes (entity-escaped) and through quoted-printable."""

from __future__ import annotations

import html
import quopri

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_signal.ingest.analysis import analyse
from render_signal.ingest.links import extract_links
from render_signal.ingest.message import ParseLimits, read_raw_email

ident = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=4, max_size=24
)


def _uuid(draw: st.DrawFn) -> str:
    parts = [draw(st.text("0123456789abcdef", min_size=n, max_size=n)) for n in (8, 4, 4, 4, 12)]
    return "-".join(parts)


@st.composite
def provider_url(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["s", "fo", "fi", "req", "smash", "swiss", "wetl", "wetr"]))
    a, b, c = draw(ident), draw(ident), draw(ident)
    www = draw(st.sampled_from(["", "www."]))
    return {
        "s": f"https://{www}dropbox.com/s/{a}/{b}.zip?dl=0",
        "fo": f"https://www.dropbox.com/scl/fo/{a}/{b}?rlkey={c}&st={a}&dl=0",
        "fi": f"https://www.dropbox.com/scl/fi/{a}/{b}.mov?rlkey={c}&dl=0",
        "req": f"https://www.dropbox.com/request/{a}",
        "smash": f"https://fromsmash.com/{a}-{b}",
        "swiss": f"https://{www}swisstransfer.com/d/{_uuid(draw)}",
        "wetl": f"https://we.tl/t-{a}",
        "wetr": f"https://wetransfer.com/downloads/{a}/{b}",
    }[kind]


filler = st.text(max_size=200)
planted = st.lists(st.tuples(filler, provider_url()), min_size=1, max_size=15)


def found(urls: list[str], text_parts: tuple[str, ...]) -> set[str]:
    return {link.raw_url for link in extract_links(*text_parts)} & set(urls)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000))
def test_ingest_links_never_raise_on_any_text(text: str) -> None:
    links = extract_links(text, text + "https://www.dropbox.com/" + text)
    assert all(link.raw_url.lower().startswith("http") for link in links)


@settings(max_examples=150, deadline=None)
@given(planted)
def test_ingest_links_plain_text_finds_all_planted(items: list[tuple[str, str]]) -> None:
    text = "".join(f"{noise} {url}\n" for noise, url in items)
    urls = [url for _noise, url in items]
    assert found(urls, (text,)) == set(urls)


@settings(max_examples=150, deadline=None)
@given(planted)
def test_ingest_links_html_finds_all_planted(items: list[tuple[str, str]]) -> None:
    markup = "".join(
        f'<p>{html.escape(noise)}</p><a href="{html.escape(url)}">{html.escape(noise)}</a>'
        for noise, url in items
    )
    urls = [url for _noise, url in items]
    assert found(urls, ("", markup)) == set(urls)


@settings(max_examples=100, deadline=None)
@given(planted, st.sampled_from(["text/plain", "text/html"]))
def test_ingest_links_quoted_printable_finds_all_planted(
    items: list[tuple[str, str]], ctype: str
) -> None:
    if ctype == "text/html":
        body = "".join(
            f'{html.escape(noise)}<a href="{html.escape(url)}">x</a>' for noise, url in items
        )
    else:
        body = "".join(f"{noise} {url} " for noise, url in items)
    encoded = quopri.encodestring(body.encode("utf-8", "surrogatepass"))
    raw = (
        b"From: a@b.fr\r\nSubject: qp\r\n"
        + f"Content-Type: {ctype}; charset=utf-8\r\n".encode()
        + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + encoded
    )
    result = analyse(read_raw_email(raw, ParseLimits()))
    urls = {url for _noise, url in items}
    assert {link.raw_url for link in result.links} >= urls
