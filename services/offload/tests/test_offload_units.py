"""Pure logic: Dropbox normalisation, SSRF allowlist, object keys, breaker states."""

from __future__ import annotations

import hashlib

import pytest
from render_signal.offload.allowlist import refusal_reason
from render_signal.offload.breaker import CircuitBreaker
from render_signal.offload.normalise import normalise, normalise_dropbox
from render_signal.offload.objectkey import object_key
from render_signal.offload.worker_client import timeout_for


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "https://www.dropbox.com/s/abc/file.zip?dl=0",
            "https://www.dropbox.com/s/abc/file.zip?dl=1",
        ),
        # HTML entities, amp%3B leftovers, uppercase host, http, default port, double slash.
        (
            "http://WWW.Dropbox.com:443//scl/fo/xyz/key/?rlkey=K1&amp;dl=0&amp;st=ab",
            "https://www.dropbox.com/scl/fo/xyz/key?dl=1&rlkey=K1&st=ab",
        ),
        (
            "https://www.dropbox.com/scl/fo/xyz?rlkey=K1&amp%3Bdl=0",
            "https://www.dropbox.com/scl/fo/xyz?dl=1&rlkey=K1",
        ),
        # Double-encoded URL, empty values dropped except rlkey, duplicates removed, sorted.
        (
            "https://www.dropbox.com/s/a/b.zip%253FZ%253D2%2526a%253D1",
            "https://www.dropbox.com/s/a/b.zip?a=1&dl=1&Z=2",
        ),
        (
            "https://www.dropbox.com/s/a/b.zip?x=&rlkey=&x=&b=2&b=2&B=1#frag",
            "https://www.dropbox.com/s/a/b.zip?B=1&b=2&dl=1&rlkey=",
        ),
        (
            "https://www.dropbox.com/s/a/My%20File%C3%A9.zip?DL=0",
            "https://www.dropbox.com/s/a/My%20File%C3%A9.zip?dl=1",
        ),
    ],
)
def test_dropbox_normalisation(raw: str, expected: str) -> None:
    assert normalise_dropbox(raw) == expected
    assert normalise_dropbox(expected) == expected  # idempotent


def test_other_providers_only_html_unescaped() -> None:
    url = "https://fromsmash.com/AbC?x=1&amp;y=2&dl=0#f"
    assert normalise("fromsmash", url) == "https://fromsmash.com/AbC?x=1&y=2&dl=0#f"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://www.dropbox.com/s/a/b.zip?dl=1", None),
        ("https://dropbox.com/s/a", None),
        ("https://fromsmash.com/x", None),
        ("https://www.swisstransfer.com/d/uuid", None),
        ("https://wetransfer.com/downloads/x", None),
        ("https://we.tl/t-abc", None),
        ("https://dl.dropboxusercontent.com/x", "host not allowlisted"),
        ("https://evildropbox.com/x", "host not allowlisted"),
        ("https://dropbox.com.evil.test/x", "host not allowlisted"),
        ("https://127.0.0.1/x", "host not allowlisted"),
        ("http://www.dropbox.com/s/a", "not https"),
        ("ftp://dropbox.com/x", "not https"),
        ("https://dropbox.com:8443/x", "non-default port"),
        ("https://dropbox.com@evil.test/x", "userinfo in url"),
        ("https://user:pw@www.dropbox.com/x", "userinfo in url"),
    ],
)
def test_allowlist(url: str, reason: str | None) -> None:
    assert refusal_reason(url) == reason


def test_object_key_shape() -> None:
    url = "https://www.dropbox.com/s/a/My%20File%C3%A9.zip?dl=1"
    digest = hashlib.sha256(url.encode()).hexdigest()
    assert object_key("dropbox", url) == f"dropbox/{digest[:8]}/{digest[8:16]}/My Fileé.zip"
    folder = "https://www.dropbox.com/scl/fo/xyz/key?dl=1&rlkey=K"
    assert object_key("dropbox", folder).endswith("/file")
    assert object_key("fromsmash", "https://fromsmash.com/a%2F..%2Fb.zip").endswith("/a_.._b.zip")


def test_folder_links_get_the_long_timeout() -> None:
    assert timeout_for("https://www.dropbox.com/scl/fo/x/y?dl=1", 15, 120) == 120
    assert timeout_for("https://www.dropbox.com/s/x/y.zip?dl=1", 15, 120) == 15


def test_breaker_opens_cools_down_and_probes_once() -> None:
    now = [0.0]
    changes: list[str] = []
    breaker = CircuitBreaker(3, 30.0, clock=lambda: now[0], on_change=changes.append)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    now[0] = 29.9
    assert not breaker.allow()
    now[0] = 30.0
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.record_failure()  # probe failed -> open again for a fresh cool-down
    assert breaker.state == "open"
    now[0] = 59.0
    assert not breaker.allow()
    now[0] = 60.5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert changes == ["open", "half_open", "open", "half_open", "closed"]
