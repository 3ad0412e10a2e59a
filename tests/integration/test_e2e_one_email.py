"""One email, one webhook, whatever the path (issue 14, acceptance 2).

The running services (real processes, Redis, Dovecot): the same email arrives
over IMAP (APPEND to Dovecot) and as a Gmail push, in both orders, from the
original's Apps Script (no Message-ID; Gmail's timestamp 25 s after the Date
header) and from ours (with the Message-ID). Each case ends with exactly one
webhook at the receiver, and ingest counting the other copy as a duplicate.
"""

from __future__ import annotations

import re
import secrets
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from render_signal.devstack.polling import wait_until

from .harness.fakes import marker_of
from .harness.mail import gmail_push_of, make_email
from .harness.pipeline import Pipeline

pytestmark = pytest.mark.integration

DUPLICATES = re.compile(
    r'^render_signal_ingest_emails_total\{outcome="skipped",reason="duplicate"\} (\S+)$', re.M
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from render_signal.devstack.pytest_plugin import require_component

    from .harness.pipeline import missing_components

    reason = missing_components(imap=True, worker=False)
    require_component(reason is None, reason or "")
    with Pipeline(Path(tmp_path_factory.mktemp("one-email")), imap=True, worker=False) as p:
        yield p


def _duplicates(pipeline: Pipeline) -> float:
    url = f"http://127.0.0.1:{pipeline.ports['ingest']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        found = DUPLICATES.search(response.read().decode())
    return float(found.group(1)) if found else 0.0


def _deliveries(pipeline: Pipeline, marker: str) -> list[str]:
    """The ``source`` of every accepted delivery of ``marker``."""
    return [
        str(d.json["source"])
        for d in pipeline.receiver.requests
        if d.accepted and marker_of(d) == marker and isinstance(d.json, dict)
    ]


@pytest.mark.parametrize("script", ["original", "ours"])
@pytest.mark.parametrize("first", ["imap", "gmail"])
def test_the_same_email_over_imap_and_gmail_push_is_one_webhook(
    stack: Pipeline, first: str, script: str
) -> None:
    marker = f"E2E-{secrets.token_hex(4)}-1"
    message = make_email(marker)
    push = gmail_push_of(message, with_message_id=script == "ours")
    duplicates = _duplicates(stack)

    def send(path: str) -> None:
        if path == "imap":
            stack.appender.append(marker, message)
        else:
            assert stack.ingress.push_gmail(push)["success"] is True

    second = "gmail" if first == "imap" else "imap"
    send(first)
    stack.receiver.wait_for_markers({marker}, timeout_s=60)
    send(second)
    # The second copy is handled when ingest counts it as a duplicate.
    wait_until(
        lambda: _duplicates(stack) > duplicates,
        60,
        lambda: f"ingest never counted the {second} copy of {marker} as a duplicate",
    )
    expected = "imap" if first == "imap" else "gmail_push"
    assert _deliveries(stack, marker) == [expected]
