"""The MIME parser ingest reads with: the standard library's, minus one wasted pass.

``email.parser.BytesParser`` splits everything after the headers into lines
(``BufferedSubFile.push`` and ``readline``) and, for a single-part message,
joins those lines straight back into the payload. Under the bench load that
was 11.5 % of ingest's CPU, mostly on the large plain-text emails.

:func:`parse_message` parses only the bytes up to and including the first
empty line (the header block, plus any body lines that came before it when
the separator is missing) and, when the message is neither ``multipart/*``
nor ``message/*`` and its body starts after that empty line, makes the rest
of the bytes the payload as the parser would have: the payload of a
single-part message is the concatenation of the lines after the headers, and
the prefix ends on a line end, so no line straddles the cut. Multipart and ``message/*``
messages, whose bodies the parser does read, and messages whose body starts
before the empty line go through the whole parser.
The equivalence is property-tested against ``BytesParser`` on the bench
corpus and on generated messages (``tests/test_ingest_mimeparser.py``).
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy

__all__ = ["parse_message"]

#: An empty line: a line end directly after a line end (LF, CRLF; with bare-CR
#: line ends this finds a later one or none, and the full parse runs).
_EMPTY_LINE = re.compile(rb"\n\r?\n")


def parse_message(raw: bytes, policy: Policy) -> Message:
    """``BytesParser(policy=policy).parsebytes(raw)``, same message, less work."""
    found = _EMPTY_LINE.search(raw)
    if found is None or found.end() == len(raw):
        return BytesParser(policy=policy).parsebytes(raw)
    head = BytesParser(policy=policy).parsebytes(raw[: found.end()])
    # A non-empty payload here means body lines came before the empty line (no
    # separator): rare, and get_payload() would hand it back decoded, not as parsed.
    if head.get_content_maintype() in ("multipart", "message") or head.get_payload() != "":
        return BytesParser(policy=policy).parsebytes(raw)
    # BytesParser decodes the bytes this way before its line pass.
    head.set_payload(raw[found.end() :].decode("ascii", "surrogateescape"))
    return head
