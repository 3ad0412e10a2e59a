"""Property: ``mimeparser.parse_message`` gives the message ``BytesParser`` gives.

Compared: every header (name and parsed value, in order), the defects, the
unix-from line, and the payload, recursively (with preambles and epilogues),
on the ingest corpus, the bench corpus shapes and generated messages built from
the pieces the shortcut depends on: line ends (LF, CRLF, bare CR, mixed), the
empty line present or missing, header-looking and non-header lines before it,
the content types that do and do not send the parse down the slow path, 8-bit
bytes and NUL-free binary.
"""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from render_signal.ingest.headers import BoundedPolicy
from render_signal.ingest.mimeparser import parse_message

CORPUS = Path(__file__).parent / "corpus"


def shape(msg: Message) -> Any:
    # The payload as parsed (get_payload() would decode 8-bit text by charset).
    payload = vars(msg)["_payload"]
    return (
        msg.get_unixfrom(),
        [(name, str(value)) for name, value in msg.items()],
        [type(d).__name__ for d in msg.defects],
        msg.preamble,
        msg.epilogue,
        [shape(p) for p in payload] if isinstance(payload, list) else payload,
    )


def same_as_stdlib(raw: bytes) -> None:
    expected = BytesParser(policy=BoundedPolicy()).parsebytes(raw)
    assert shape(parse_message(raw, BoundedPolicy())) == shape(expected)


def test_the_corpus_parses_the_same() -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    assert files
    for path in files:
        same_as_stdlib(path.read_bytes())


def test_bench_shaped_emails_parse_the_same() -> None:
    from tests.integration.harness.mail import make_email

    for size in (5_000, 50_000, 500_000):
        for html in (False, True):
            raw = make_email(f"s{size}", size_pad=size, html=html)
            same_as_stdlib(raw)
            same_as_stdlib(raw.replace(b"\r\n", b"\n"))


EOL = st.sampled_from([b"\n", b"\r\n", b"\r"])
HEADER = st.sampled_from(
    [b"Subject: hello", b"From: A <a@example.com>", b"X-Long: a", b" continued",
     b"\tfolded", b"Content-Transfer-Encoding: quoted-printable", b"not a header line",
     b"From nobody Mon Jan 1", b": empty name", b"Subject: caf\xc3\xa9 \xff",
     b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html",
     b"Content-Type: multipart/mixed; boundary=XX", b"Content-Type: multipart/alternative",
     b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status",
     b"Content-Type: garbage", b"MIME-Version: 1.0"]
)  # fmt: skip
BODY = st.sampled_from(
    [b"line", b"", b"--XX", b"--XX--", b"Content-Type: text/plain", b"=C3=A9t=C3=A9",
     b"\xe9t\xe9", b"From the start", b"Subject: in body", b"\x01\x02\x7f"]
)  # fmt: skip


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    head = draw(st.lists(st.tuples(HEADER, EOL), max_size=8))
    separator = draw(st.sampled_from([b"", b"\n", b"\r\n", b"\r"]))
    body = draw(st.lists(st.tuples(BODY, EOL), max_size=12))
    tail = draw(st.sampled_from([b"", b"no final line end", b"\r"]))
    return b"".join(h + e for h, e in head) + separator + b"".join(b + e for b, e in body) + tail


@settings(max_examples=4000, deadline=None)
@given(messages())
def test_generated_messages_parse_the_same(raw: bytes) -> None:
    same_as_stdlib(raw)
