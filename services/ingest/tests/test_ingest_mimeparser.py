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


MULTIPART_TYPE = st.sampled_from(
    [b"Content-Type: multipart/alternative; boundary=XX",
     b'Content-Type: multipart/mixed; boundary="XX"',
     b"Content-Type: multipart/related; boundary=XX; type=text/html",
     b"Content-Type: multipart/digest; boundary=XX",
     b"Content-Type: multipart/alternative",
     b"Content-Type: multipart/mixed; boundary*=utf-8''X%C3%A9"]
)  # fmt: skip
MULTIPART_CTE = st.sampled_from(
    [b"", b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: base64"]
)
BOUNDARY_LINE = st.sampled_from(
    [b"--XX", b"--XX", b"--XX", b"--XX--", b"--XX  ", b"--XX\t", b"--XX-- ", b"--XXY",
     b"--XX--junk", b" --XX", b"--YY", b"--YY--", b"--X\xc3\xa9"]
)  # fmt: skip
PART_HEAD = st.sampled_from(
    [b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html",
     b"Content-Transfer-Encoding: quoted-printable", b"Content-Type: message/rfc822",
     b"Content-Type: multipart/alternative; boundary=YY", b"Subject: inner",
     b"not a header line", b"Content-Disposition: attachment; filename=a.txt"]
)  # fmt: skip


@st.composite
def multipart_messages(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n", b"\r\n", b"\r"]))
    mixed = draw(st.booleans()) and draw(st.booleans())

    def end() -> bytes:
        return draw(EOL) if mixed else eol

    out = [b"From: A <a@example.com>" + end(), draw(MULTIPART_TYPE) + end()]
    cte = draw(MULTIPART_CTE)
    if cte:
        out.append(cte + end())
    out.append(end())
    for _ in range(draw(st.integers(0, 2))):  # preamble
        out.append(draw(BODY) + end())
    for _ in range(draw(st.integers(0, 4))):  # parts
        out.append(draw(BOUNDARY_LINE) + end())
        for header in draw(st.lists(PART_HEAD, max_size=3)):
            out.append(header + end())
        if draw(st.booleans()):
            out.append(end())
        for line in draw(st.lists(BODY, max_size=4)):
            out.append(line + end())
    if draw(st.booleans()):
        out.append(b"--XX--" + draw(st.sampled_from([b"", b"  ", b"\t"])))
        out.append(draw(st.sampled_from([b"", eol, eol + b"epilogue" + eol, eol + eol])))
    return b"".join(out)


@settings(max_examples=4000, deadline=None)
@given(multipart_messages())
def test_generated_multipart_messages_parse_the_same(raw: bytes) -> None:
    same_as_stdlib(raw)
