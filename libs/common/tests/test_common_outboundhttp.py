"""The guarded transport (issue 12, finding 2): checked at connect time, pinned, TLS intact.

Real loopback servers (http and https with a throwaway CA) stand behind names
that a resolver hook maps to addresses, the way DNS would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from render_signal.common.errors import DestinationRefused
from render_signal.common.outbound import OutboundPolicy
from render_signal.common.outboundhttp import (
    GuardedTransport,
    guarded_client,
    refusal,
)
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.receiver import Receiver
from render_signal.devstack.tlscert import TestCertificates, make_certificates, openssl_available

NAME = "hooks.receiver.test"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    require_component(openssl_available(), "openssl binary not found")
    return make_certificates(tmp_path_factory.mktemp("tls"), [NAME])


@pytest.fixture
def https_rx(certificates: TestCertificates) -> Iterator[Receiver]:
    with Receiver(tls=certificates.server_context()) as rx:
        yield rx


@pytest.fixture
def http_rx() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx


class Rebinding:
    """A DNS server under attack control: the first answer is public, later ones are not."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return [self.answers[min(len(self.asked), len(self.answers)) - 1]]


async def _fixed(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def _client(policy: OutboundPolicy, certificates: TestCertificates) -> httpx.AsyncClient:
    # Trust the test CA: the certificate is still checked against the URL's name.
    transport = GuardedTransport(policy, verify=certificates.client_context())
    return httpx.AsyncClient(transport=transport, trust_env=False)


async def test_https_through_a_pinned_address_keeps_sni_and_name_checks(
    https_rx: Receiver, certificates: TestCertificates
) -> None:
    """Connects to the checked 127.0.0.1 while TLS verifies the certificate for NAME."""
    async with _client(OutboundPolicy(dev_mode=True, resolver=_fixed), certificates) as client:
        response = await client.post(f"https://{NAME}:{https_rx.port}/hook", content=b"{}")
    assert response.status_code == 200
    assert https_rx.requests[0].headers["host"] == f"{NAME}:{https_rx.port}"

    # A name the certificate does not carry fails verification: SNI/names were not replaced.
    async def other(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with _client(OutboundPolicy(dev_mode=True, resolver=other), certificates) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://other.receiver.test:{https_rx.port}/hook")


async def test_http_through_a_pinned_address(http_rx: Receiver) -> None:
    async with guarded_client(OutboundPolicy(dev_mode=True, resolver=_fixed), timeout=5) as client:
        response = await client.get(f"http://{NAME}:{http_rx.port}/x")
    assert response.status_code == 200
    assert http_rx.requests[0].headers["host"] == f"{NAME}:{http_rx.port}"


async def test_a_name_resolving_to_loopback_is_refused_in_production(http_rx: Receiver) -> None:
    async with guarded_client(OutboundPolicy(dev_mode=False, resolver=_fixed), timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post(f"http://{NAME}:{http_rx.port}/hook", content=b"{}")
    found = refusal(caught.value)
    assert isinstance(found, DestinationRefused)
    assert "127.0.0.1" in str(found)
    assert http_rx.count() == 0


async def test_dns_rebinding_is_checked_on_the_address_actually_used(http_rx: Receiver) -> None:
    """The save-time lookup sees a public address; the connect-time one sees 10.0.0.1."""
    dns = Rebinding("93.184.216.34", "10.0.0.1")
    policy = OutboundPolicy(dev_mode=True, resolver=dns)
    assert await policy.addresses(NAME, 443) == ["93.184.216.34"]  # what a save-time check saw
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://{NAME}:{http_rx.port}/hook")
    assert "10.0.0.1" in str(refusal(caught.value))
    assert dns.asked == [NAME, NAME]


async def test_rebinding_to_loopback_between_two_requests_on_one_client(http_rx: Receiver) -> None:
    """Every new connection is looked up and checked again."""
    dns = Rebinding("127.0.0.1", "169.254.169.254")
    policy = OutboundPolicy(dev_mode=True, resolver=dns)
    http_rx.respond(200, headers={"Connection": "close"})  # the next request needs a new socket
    async with guarded_client(policy, timeout=5) as client:
        assert (await client.get(f"http://{NAME}:{http_rx.port}/a")).status_code == 200
        with pytest.raises(httpx.ConnectError, match="metadata"):
            await client.get(f"http://{NAME}:{http_rx.port}/b")
    assert [r.path for r in http_rx.requests] == ["/a"]


async def test_unix_sockets_and_redirects_are_not_followed(tmp_path: Path) -> None:
    with Receiver() as rx:
        rx.respond(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        async with guarded_client(OutboundPolicy(dev_mode=True), timeout=5) as client:
            response = await client.get(rx.url)
        assert response.status_code == 302  # answered as is, never followed
    # No unix-socket transport: a URL can only name a host and port.
    async with guarded_client(OutboundPolicy(dev_mode=True), timeout=5) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get(f"unix://{tmp_path / 'sock'}")
