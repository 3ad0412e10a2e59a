"""Hostile inputs end in a bounded result or UnreadableEmail with a reason, never a crash.

Time is bounded by construction (input cut at MAX_PARSE_BYTES, MIME structure
budgets, capped header values, bounded regexes), so no wall-clock assertions;
memory is measured with tracemalloc and asserted under an absolute cap.
"""

from __future__ import annotations

import base64
import random
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import pytest
from render_signal.ingest.analysis import Analysis, analyse
from render_signal.ingest.headers import MAX_HEADER_CHARS
from render_signal.ingest.links import MAX_LINKS, extract_links
from render_signal.ingest.message import ParseLimits, UnreadableEmail, read_raw_email

LIMITS = ParseLimits()
# CPython's parser peaks at ~8x the bytes it parses (reliability doc §2.5/§3.2);
# parsing stops at MAX_PARSE_BYTES (10 MiB), so 12x that bounds any input size.
MEMORY_CAP = 12 * LIMITS.max_parse_bytes
T = TypeVar("T")


def peak_of(fn: Callable[[], T]) -> tuple[T, int]:
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def full(raw: bytes) -> Analysis:
    return analyse(read_raw_email(raw, LIMITS))


HEAD = b"From: Agence <agence@client.fr>\r\nSubject: big\r\n"


def test_ingest_hostile_30mb_message_is_cut_and_bounded() -> None:
    raw = (
        HEAD + b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: text/plain\r\n\r\nhello https://fromsmash.com/keep\r\n--zz\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"\x01" * (22 * 2**20))
        + b"\r\n--zz--\r\n"
    )
    assert len(raw) > 30 * 10**6
    result, peak = peak_of(lambda: full(raw))
    assert [link.raw_url for link in result.links] == ["https://fromsmash.com/keep"]
    assert result.parsed.truncated
    assert peak < MEMORY_CAP, f"peak {peak / 2**20:.0f} MiB"


def test_ingest_hostile_30mb_html_is_capped_before_link_scan() -> None:
    line = b"<p>" + b"x" * 70 + b"</p>\r\n"
    raw = HEAD + b"Content-Type: text/html\r\n\r\n" + line * (30 * 2**20 // len(line))
    result, peak = peak_of(lambda: full(raw))
    assert len(result.parsed.body_html.encode()) <= LIMITS.max_html_bytes
    assert result.parsed.truncated
    assert peak < MEMORY_CAP


@pytest.mark.parametrize("name", ["Subject", "From", "Content-Type", "Message-ID", "X-Junk"])
@pytest.mark.parametrize("filler", [b"x ", b"(", b"a;", b'"', b"=?utf-8?q?a?= "])
def test_ingest_hostile_1mb_single_line_header(name: str, filler: bytes) -> None:
    value = filler * (2**20 // len(filler))
    raw = f"{name}: ".encode() + value + b"\r\nFrom: a@b.fr\r\nSubject: ok\r\n\r\n"
    raw += b"body https://we.tl/t-Ab12"
    result, peak = peak_of(lambda: full(raw))
    assert [link.raw_url for link in result.links] == ["https://we.tl/t-Ab12"]
    assert len(result.parsed.subject) <= MAX_HEADER_CHARS
    assert peak < 40 * len(raw)


def test_ingest_hostile_million_links_stop_at_cap() -> None:
    text = "".join(f"https://fromsmash.com/l{i} " for i in range(10**6))
    links, peak = peak_of(lambda: extract_links(text))
    assert len(links) == MAX_LINKS
    assert links[0].raw_url == "https://fromsmash.com/l0"
    assert peak < 5 * 2**20  # bounded by the cap, not by the input (~27 MB)
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + text.encode()
    result, mail_peak = peak_of(lambda: full(raw))
    assert len(result.links) == MAX_LINKS
    assert mail_peak < MEMORY_CAP


def test_ingest_hostile_repeated_link_prefixes_are_linear() -> None:
    # Many "https://www.dropbox.com" starts without a path, and a host of 1M labels.
    text = "https://www.dropbox.com" * 200_000 + "https://" + "a." * 500_000 + "dropbox.com/s/x"
    assert extract_links(text) == []


@pytest.mark.parametrize(
    "charset", ["x-bogus", "base64", "zlib_codec", "rot13", "utf-7", "", '"', "utf-8*fr"]
)
def test_ingest_hostile_invalid_charsets_decode(charset: str) -> None:
    raw = (
        HEAD
        + f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + "Réf: https://fromsmash.com/ok-1 \xff\xfe".encode("utf-8", "surrogateescape")
    )
    result = full(raw)
    assert [link.raw_url for link in result.links] == ["https://fromsmash.com/ok-1"]


def test_ingest_hostile_nul_bytes_are_stripped() -> None:
    raw = b"From: a\x00@b.fr\r\nSubject: x\x00y\r\nMessage-ID: <a\x00b@c>\r\n\r\n\x00a https://we.tl/t-A\x00b"
    result = full(raw)
    parsed = result.parsed
    assert "\x00" not in parsed.subject + parsed.sender_email + parsed.message_id
    assert "\x00" not in parsed.body_text
    assert parsed.subject == "xy"


def test_ingest_hostile_truncated_mime_reads_what_it_can() -> None:
    raw = (
        HEAD + b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b'<a href="https://fromsmash.com/cut">x</a>')[:-6]
    )
    result = full(raw)
    assert result.parsed.subject == "big"
    assert result.parsed.sender_email == "agence@client.fr"


def test_ingest_hostile_deep_nesting_and_many_parts_bounded() -> None:
    deep = b"From: a@b.fr\r\n" + b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(5000)
    )
    result, peak = peak_of(lambda: full(deep))
    assert result.parsed.truncated
    part = (
        b"--q\r\nContent-Type: text/plain; a=" + b"a;" * 120 + b"\r\n\r\nx https://we.tl/t-a1\r\n"
    )
    many = b"From: a@b.fr\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n" + part * 40_000
    result = full(many)
    assert result.parsed.truncated
    assert [link.raw_url for link in result.links] == ["https://we.tl/t-a1"]
    assert peak < MEMORY_CAP


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty raw message"),
        (b"\r\n\r\n   \r\n", "empty raw message"),
        (b"X-Junk: 1\r\n\r\n  \r\n", "no headers or body could be read"),
    ],
)
def test_ingest_hostile_unreadable_has_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(UnreadableEmail, match=reason):
        read_raw_email(raw, LIMITS)


def test_ingest_hostile_binary_garbage_never_raises_other_errors() -> None:
    rng = random.Random(7)
    for _ in range(50):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4000)))
        outcome: object
        try:
            outcome = full(blob)
        except UnreadableEmail as exc:
            outcome = str(exc)
        assert isinstance(outcome, Analysis) or outcome
