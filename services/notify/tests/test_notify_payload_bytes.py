"""The webhook body's bytes are exactly what ``json.dumps(ensure_ascii=False)`` made.

``encode_payload`` is built on msgspec for speed; receivers and signatures
depend on the exact bytes the original sent, so they are compared with the
standard library's on every code point and on payloads of every shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from notify_harness import make_event
from render_signal.common.events import DeliveryLink
from render_signal.notify.payload import build_payload, encode_payload
from render_signal.notify.window import Decision


def reference(payload: dict[str, Any]) -> bytes:
    """How the payload was serialised before (and by the original)."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def test_every_code_point_is_escaped_as_json_does() -> None:
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for start in range(0, len(chars), 4096):
        payload = {"email_content": chars[start : start + 4096], "subject": '"\\\n'}
        assert encode_payload(payload) == reference(payload), hex(ord(chars[start]))


def test_a_lone_surrogate_fails_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        reference({"email_content": "a\ud800b"})
    with pytest.raises(UnicodeEncodeError):
        encode_payload({"email_content": "a\ud800b"})


@pytest.mark.parametrize("source", ["imap", "gmail_push", "http_raw"])
@pytest.mark.parametrize("priority", [None, "normal", "high"])
def test_payloads_of_every_shape(source: str, priority: str | None) -> None:
    event = make_event(
        source=source,
        body_text='Bonjour,\t"à faire" — 11h30\r\n\\ \x00\x1f\x7f\u2028 😀',
        body_html='<p class="x">é</p>',
        links=(
            DeliveryLink(provider="dropbox", raw_url="https://www.dropbox.com/scl/fo/a"),
            DeliveryLink(
                provider="swisstransfer",
                raw_url="https://www.swisstransfer.com/d/b",
                direct_url="https://dl/b",
                r2_url="https://r2/b",
                original_filename="b, c: d.zip",
            ),
        ),
        detector="recadrage",
        delivery_time="11h30",
        legacy_email_id="legacy",
    )
    decision = Decision(action="send", reason="x", time_start_field="08h00", time_end_field="17h00")
    payload = build_payload(event, decision, priority)
    assert encode_payload(payload) == reference(payload)


@settings(max_examples=300, deadline=None)
@given(text=st.text(), html=st.text(), subject=st.text(), sender=st.text())
def test_any_text(text: str, html: str, subject: str, sender: str) -> None:
    event = make_event(
        body_text=text, body_html=html, subject=subject, sender_address=sender, source="imap"
    )
    payload = build_payload(event, Decision(action="send", reason="x"))
    try:
        expected = reference(payload)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            encode_payload(payload)
        return
    assert encode_payload(payload) == expected
