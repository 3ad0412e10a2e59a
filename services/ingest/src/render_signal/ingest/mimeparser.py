"""The MIME parser ingest reads with: the standard library's, minus one wasted pass.

``email.parser.BytesParser`` splits everything after the headers into lines
(``BufferedSubFile.push`` and ``readline``) and, for a single-part message,
joins those lines straight back into the payload. Under the bench load that
was 11.5 % of ingest's CPU, mostly on the large plain-text emails.

:func:`parse_message` parses only the bytes up to and including the first
empty line (the header block, plus any body lines that came before it when the
separator is missing). When the message is neither ``multipart/*`` nor
``message/*`` and its body starts after that empty line, the rest of the bytes
becomes the payload as the parser would have made it: a single-part payload is
the concatenation of the lines after the headers, and the cut falls on a line
end, so no line straddles it. Multipart and ``message/*`` messages (whose
bodies the parser does read) and messages whose body starts before the empty
line go through the whole parser.

A ``multipart/*`` message (60 % of the bench corpus, and the shape of most
transfer notifications) is cut into its parts at its boundary lines, found by
one regular-expression scan of the bytes, and each part is parsed by this same
function; what the parser would add around them is added the same way: the
preamble and epilogue, the last line end of each part going to the boundary
(RFC 2046), ``None`` for a part's empty epilogue. Anything the parser would
treat specially takes the whole parser: no boundary, a non-ASCII boundary,
``multipart/digest`` (its parts default to ``message/rfc822``), a transfer
encoding other than 7bit/8bit/binary on the multipart (a defect), bare CR line
ends in the body, no start or no close boundary, two boundary lines in a row,
a part that says multipart but has no parts (parsed alone, it would get a
defect the parser gives only to a whole message).

The equivalence is property-tested against ``BytesParser`` on the corpus and
on generated messages (``tests/test_ingest_mimeparser.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy

from render_signal.common.identity import header_block_end

__all__ = ["parse_message"]


_BOUNDARY_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\n|\Z)")


def _without_final_eol(text: str) -> str:
    """``text`` less one final CRLF, CR or LF (the parser's ``NLCRE_eol``)."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\r", "\n")) else text


def parse_message(raw: bytes, policy: Policy) -> Message:
    """``BytesParser(policy=policy).parsebytes(raw)``, same message, less work."""
    end = header_block_end(raw)
    if end is None or end == len(raw):
        return BytesParser(policy=policy).parsebytes(raw)
    head = BytesParser(policy=policy).parsebytes(raw[:end], headersonly=True)
    # A non-empty payload here means body lines came before the empty line (no
    # separator): rare, and get_payload() would hand it back decoded, not as parsed.
    maintype = head.get_content_maintype()
    if maintype == "message" or head.get_payload() != "":
        return BytesParser(policy=policy).parsebytes(raw)
    if maintype == "multipart":
        multipart = _multipart(head, raw[end:], policy)
        return multipart if multipart is not None else BytesParser(policy=policy).parsebytes(raw)
    # BytesParser decodes the bytes this way before its line pass.
    head.set_payload(raw[end:].decode("ascii", "surrogateescape"))
    return head


def _multipart(head: Message, body: bytes, policy: Policy) -> Message | None:
    """``head`` with the parts of ``body`` attached, as the parser makes them, or
    None where the parser does something this does not (module docstring)."""
    boundary = head.get_boundary()
    if not boundary or not boundary.isascii() or head.get_content_subtype() == "digest":
        return None
    if str(head.get("content-transfer-encoding", "8bit")).lower() not in (
        "7bit",
        "8bit",
        "binary",
    ):
        return None
    if body.count(b"\r") != body.count(b"\r\n"):
        return None  # bare CR: the parser's lines are not the ones scanned here
    boundaries = list(_boundary_lines(body, b"--" + boundary.encode()))
    if not boundaries or boundaries[0][2]:
        return None  # no start boundary
    first = boundaries[0]
    parts: list[Message | str] = []
    start = first[1]
    for line_start, line_end, close in boundaries[1:]:
        if line_start == start:
            return None  # boundary lines in a row: the parser skips them its own way
        part = parse_message(body[start:line_start], policy)
        if part.get_content_maintype() == "multipart" and not part.is_multipart():
            return None  # a defect only a message parsed on its own gets
        _give_eol_to_boundary(part)
        parts.append(part)
        start = line_end
        if close:
            preamble = body[: first[0]]
            if preamble:
                head.preamble = _without_final_eol(preamble.decode("ascii", "surrogateescape"))
            head.set_payload(parts)
            head.epilogue = body[start:].decode("ascii", "surrogateescape")
            return head
    return None  # no close boundary


def _boundary_lines(body: bytes, separator: bytes) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is the close boundary) of each line of ``body`` the parser takes
    for a boundary: ``separator``, maybe ``--``, spaces or tabs, the line end.
    Found by substring search (a ``^`` pattern would be tried at every offset)."""
    at = body.find(separator)
    while at != -1:
        if at == 0 or body[at - 1] == 0x0A:
            rest = _BOUNDARY_TAIL.match(body, at + len(separator))
            if rest is not None:
                yield at, rest.end(), bool(rest.group(1))
        at = body.find(separator, at + 1)


def _give_eol_to_boundary(part: Message) -> None:
    """RFC 2046: the line end before a boundary belongs to the boundary. The parser
    takes it off the last message it created for the part (the innermost last one
    of a ``message/*`` part): a multipart's epilogue (an empty one becomes None),
    any other's text payload."""
    last = part
    while last.get_content_maintype() == "message":
        payload = vars(last)["_payload"]
        if not isinstance(payload, list) or not payload:
            break
        last = payload[-1]
    if last.get_content_maintype() == "multipart":
        if last.epilogue == "":
            last.epilogue = None
        elif last.epilogue is not None:
            last.epilogue = _without_final_eol(last.epilogue)
    elif isinstance(vars(last)["_payload"], str):
        last.set_payload(_without_final_eol(vars(last)["_payload"]))
