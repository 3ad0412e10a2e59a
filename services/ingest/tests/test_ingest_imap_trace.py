"""imaplib's protocol trace: off unless its logger asks for it (real Dovecot)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from render_signal.devstack.dovecot import DovecotServer
from render_signal.ingest.imap_client import ImapAdapter, ImapEndpoint

BIG = b"Subject: big\r\nFrom: a@example.com\r\n\r\n" + b"x" * 300_000 + b"\r\n"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def trace_logger() -> Iterator[tuple[logging.Logger, _Records]]:
    logger = logging.getLogger("imapclient.imaplib")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _fetch_big(dovecot: DovecotServer) -> tuple[ImapAdapter, bytes]:
    uid = dovecot.append(BIG)
    adapter = ImapAdapter(
        ImapEndpoint(
            host="127.0.0.1",
            port=dovecot.port,
            username=dovecot.user,
            password=dovecot.password,
            use_ssl=False,
            timeout_s=5.0,
        )
    )
    await adapter.connect()
    await adapter.select("INBOX")
    rows = await adapter.fetch([uid], ["BODY.PEEK[]"])
    return adapter, rows[uid][b"BODY[]"]


async def test_the_trace_is_off_when_its_logger_discards_it(
    dovecot: DovecotServer, trace_logger: tuple[logging.Logger, _Records]
) -> None:
    logger, records = trace_logger
    logger.setLevel(logging.WARNING)  # what common.logs configures
    adapter, body = await _fetch_big(dovecot)
    try:
        assert body == BIG
        # Off: the fetched literal is not %r-formatted only to be discarded.
        assert adapter.client._imap.debug == 0
        assert records.messages == []
    finally:
        adapter.close()


async def test_the_trace_is_kept_when_its_logger_wants_debug(
    dovecot: DovecotServer, trace_logger: tuple[logging.Logger, _Records]
) -> None:
    logger, records = trace_logger
    logger.setLevel(logging.DEBUG)
    adapter, body = await _fetch_big(dovecot)
    try:
        assert body == BIG
        assert adapter.client._imap.debug == 5
        assert any("FETCH" in message for message in records.messages)
    finally:
        adapter.close()
