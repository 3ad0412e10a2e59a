"""One HTTP/1.1 client connection on asyncio streams: write a request, read its response.

Why not httpcore: under load, httpcore's pool, h11 state machine and anyio
stream layers cost about 0.37 ms of CPU per request, ten times the framing
itself (measured on loopback, 500 B and 60 KB bodies: httpx + httpcore
0.57 ms, the same framing written directly 0.05 ms); offload makes two
Worker calls and notify one webhook per email. What is needed is small: a
request whose body is already in memory, and a response read whole.

The response is read defensively, since a receiver is typed by people and
may be hostile: the head is bounded (:data:`MAX_HEAD_BYTES`), the body is
read up to :data:`MAX_BODY_BYTES` and then the connection is dropped (the
callers keep a 200-character snippet or a small JSON answer), framing follows
RFC 9112 section 6.3 (no body for HEAD, 1xx, 204, 304; chunked wins over
Content-Length; conflicting Content-Length values are an error; otherwise
read to EOF), interim 1xx responses are skipped. Anything malformed is a
:class:`WireError`; the transport maps it to ``httpx.RemoteProtocolError``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Final

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "Connection",
    "Disconnected",
    "WireError",
    "WireResponse",
    "request_head",
]

#: Bound on a response's status line and headers (the reader's line limit too).
MAX_HEAD_BYTES: Final = 64 * 1024
#: Bound on a response body kept in memory; the rest is not read.
MAX_BODY_BYTES: Final = 1024 * 1024
_CHUNK_LINE_LIMIT: Final = 1024
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class WireError(Exception):
    """The peer broke HTTP/1.1 framing."""


class Disconnected(WireError):
    """The peer closed the connection before sending any byte of a response."""


@dataclasses.dataclass(slots=True)
class WireResponse:
    """A response read whole (or up to :data:`MAX_BODY_BYTES`)."""

    status: int
    reason: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


def request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body_length: int
) -> bytes:
    """The request line and headers, with a Content-Length that matches the body."""
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            continue  # the body is in memory: its length is known and framed below
        if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
            raise WireError("a request header contains a line break")
        lines += [name, b": ", value, b"\r\n"]
    if body_length or method not in (b"GET", b"HEAD"):
        lines += [b"Content-Length: ", str(body_length).encode(), b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


def _parse_head(head: bytes) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise WireError(f"malformed status line {lines[0][:80]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
            raise WireError(f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip(b" \t")))
    return int(code), reason, version, headers


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    out: list[bytes] = []
    for key, value in headers:
        if key.lower() == name:
            out += [token.strip().lower() for token in value.split(b",") if token.strip()]
    return out


class Connection:
    """One client connection; not shared between two requests at once."""

    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def reusable(self, expiry_s: float) -> bool:
        """Idle for less than ``expiry_s``, still open, and nothing unread from the peer."""
        if time.monotonic() - self.idle_since > expiry_s:
            return False
        if self.writer.is_closing() or self.reader.at_eof():
            return False
        # Bytes the peer sent unasked (or a close the loop already saw) rule it out.
        # (StreamReader has no public peek; its buffer is the only place to look.)
        return not getattr(self.reader, "_buffer", b"")

    def close(self) -> None:
        self.writer.close()

    async def send(self, head: bytes, body: bytes) -> None:
        if len(body) <= 16 * 1024:
            self.writer.write(head + body)  # one segment for the common small request
        else:
            self.writer.writelines((head, body))
        await self.writer.drain()

    async def read_head(self) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        """The final response's status and headers (interim 1xx responses skipped)."""
        first = True
        while True:
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if first and not exc.partial:
                    raise Disconnected("server disconnected without sending a response") from exc
                raise WireError("connection closed inside the response head") from exc
            except ConnectionResetError as exc:
                if first:
                    raise Disconnected(f"server reset the connection: {exc}") from exc
                raise
            except asyncio.LimitOverrunError as exc:
                raise WireError(f"response head over {MAX_HEAD_BYTES} bytes") from exc
            first = False
            status, reason, version, headers = _parse_head(head[:-4])
            if 100 <= status < 200 and status != 101:
                continue
            return status, reason, version, headers

    async def read_response(self, method: bytes) -> WireResponse:
        """The response, body as framed by the headers; ``keep_alive`` when the
        connection may carry another request."""
        status, reason, version, headers = await self.read_head()
        connection = _tokens(headers, b"connection")
        keep_alive = (
            b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
        )
        if method == b"HEAD" or status < 200 or status in _NO_BODY_STATUSES:
            return WireResponse(status, reason, version, headers, b"", keep_alive)
        encodings = _tokens(headers, b"transfer-encoding")
        if encodings:
            if encodings[-1] != b"chunked":
                body = await self._read_to_eof()
                return WireResponse(status, reason, version, headers, body, False)
            body, complete = await self._read_chunked()
            # A message with both headers may be a smuggling attempt: never reuse it.
            framed = complete and not _tokens(headers, b"content-length")
            return WireResponse(status, reason, version, headers, body, keep_alive and framed)
        lengths = {value.strip() for key, value in headers if key.lower() == b"content-length"}
        if len(lengths) > 1:
            raise WireError("conflicting Content-Length headers")
        if lengths:
            text = lengths.pop()
            if not text.isdigit():
                raise WireError(f"malformed Content-Length {text[:40]!r}")
            length = int(text)
            keep = min(length, MAX_BODY_BYTES)
            try:
                body = await self.reader.readexactly(keep)
            except asyncio.IncompleteReadError as exc:
                raise WireError("connection closed inside the response body") from exc
            return WireResponse(
                status, reason, version, headers, body, keep_alive and keep == length
            )
        body = await self._read_to_eof()
        return WireResponse(status, reason, version, headers, body, False)

    async def _read_to_eof(self) -> bytes:
        """Up to :data:`MAX_BODY_BYTES` until the peer closes (never reused after)."""
        parts: list[bytes] = []
        size = 0
        while size < MAX_BODY_BYTES:
            part = await self.reader.read(min(65536, MAX_BODY_BYTES - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
        return b"".join(parts)

    async def _read_chunked(self) -> tuple[bytes, bool]:
        """Chunks up to :data:`MAX_BODY_BYTES`; ``complete`` when the last chunk was read."""
        parts: list[bytes] = []
        size = 0
        try:
            while True:
                line = await self.reader.readuntil(b"\r\n")
                if len(line) > _CHUNK_LINE_LIMIT:
                    raise WireError("chunk size line too long")
                text = line[:-2].split(b";", 1)[0].strip()
                if not text or any(c not in b"0123456789abcdefABCDEF" for c in text):
                    raise WireError(f"malformed chunk size {text[:40]!r}")
                chunk = int(text, 16)
                if chunk == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers: not used
                    return b"".join(parts), True
                if size + chunk > MAX_BODY_BYTES:
                    parts.append(await self.reader.readexactly(MAX_BODY_BYTES - size))
                    return b"".join(parts), False
                data = await self.reader.readexactly(chunk + 2)
                if data[-2:] != b"\r\n":
                    raise WireError("chunk not followed by CRLF")
                parts.append(data[:-2])
                size += chunk
        except asyncio.IncompleteReadError as exc:
            raise WireError("connection closed inside a chunked body") from exc
        except asyncio.LimitOverrunError as exc:
            raise WireError("chunk size line too long") from exc
