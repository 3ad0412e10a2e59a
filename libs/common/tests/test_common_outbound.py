"""The outbound address policy (issue 12, finding 2): every spelling of a forbidden address."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from render_signal.common.errors import DestinationRefused, DestinationUnresolved
from render_signal.common.outbound import (
    OutboundPolicy,
    address_problem,
    host_problem,
    is_loopback_host,
    parse_ip,
)
from render_signal.common.urls import policy_problem, url_problem

# (host as typed in a URL, the address resolvers read in it)
NUMERIC_FORMS = [
    ("2130706433", "127.0.0.1"),  # decimal
    ("0x7f000001", "127.0.0.1"),  # hex
    ("0X7F000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),  # octal
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),  # inet_aton shorthands
    ("127.0.1", "127.0.0.1"),
    ("10.1", "10.0.0.1"),
    ("192.168.257", "192.168.1.1"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ("127.0.0.1.", "127.0.0.1"),  # trailing dot
    ("127.0.0.1..", "127.0.0.1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),  # IPv4-mapped
    ("::ffff:7f00:1", "::ffff:127.0.0.1"),
    ("[::127.0.0.1]", "::7f00:1"),  # IPv4-compatible
    ("[fe80::1%eth0]", "fe80::1"),  # zone id
    ("0", "0.0.0.0"),
]


@pytest.mark.parametrize(("host", "address"), NUMERIC_FORMS)
def test_every_numeric_form_is_parsed_as_the_resolver_reads_it(host: str, address: str) -> None:
    assert parse_ip(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["vm", "hooks.make.com", "1.2.3.4.5", "0x", "1_0", "08.1", "١٢٧.0.0.1", "127.0.0.1x"]
)
def test_names_are_not_addresses(host: str) -> None:
    assert parse_ip(host) is None


def test_parser_agrees_with_the_c_library() -> None:
    """inet_aton is what getaddrinfo uses for numeric hosts: same answers."""
    for host, _ in NUMERIC_FORMS:
        if ":" in host or host.endswith("."):
            continue
        assert parse_ip(host) == ipaddress.IPv4Address(socket.inet_aton(host))


REFUSED_EVERYWHERE = [
    "169.254.169.254",
    "0xa9fea9fe",
    "[fd00:ec2::254]",
    "10.0.0.7",
    "10.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "[fd00::1]",
    "[fe80::1]",
    "0.0.0.0",
    "[::]",
    "[::ffff:10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[2002:c0a8:101::]",  # 6to4 around 192.168.1.1
    "[64:ff9b::a00:1]",  # NAT64 around 10.0.0.1
    "224.0.0.1",
    "[ff02::1]",
    "255.255.255.255",
    "metadata.google.internal",
    "metadata.google.internal.",
]
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.9.9.9",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::127.0.0.1]",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "app.localhost",
]


@pytest.mark.parametrize("host", REFUSED_EVERYWHERE)
def test_non_public_hosts_are_refused_in_both_modes(host: str) -> None:
    for dev_mode in (False, True):
        assert host_problem(host, dev_mode=dev_mode), (host, dev_mode)


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_is_refused_outside_dev_mode_only(host: str) -> None:
    assert is_loopback_host(host)
    assert host_problem(host, dev_mode=False)
    assert host_problem(host, dev_mode=True) is None


@pytest.mark.parametrize("host", ["93.184.216.34", "[2606:4700::6810:85e5]", "hook.eu1.make.com"])
def test_public_hosts_pass(host: str) -> None:
    assert host_problem(host, dev_mode=False) is None


def test_urls_from_the_finding_are_refused_outside_dev_mode() -> None:
    for url in (
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/hook",
        "https://192.168.0.10/hook",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://localhost./hook",
    ):
        assert policy_problem(url, dev_mode=False), url
    # Dev mode: loopback (over http too), nothing else.
    assert policy_problem("http://127.0.0.1:9/hook", dev_mode=True) is None
    assert policy_problem("http://0x7f000001:9/hook", dev_mode=True) is None
    assert policy_problem("http://10.0.0.5/hook", dev_mode=True)
    assert policy_problem("http://hooks.receiver.net/hook", dev_mode=True) == "must use https"


def _resolver(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


async def test_every_resolved_address_must_pass() -> None:
    policy = OutboundPolicy(
        dev_mode=False,
        resolver=_resolver(
            {
                "public.test": ["93.184.216.34", "2606:4700::6810:85e5"],
                "mixed.test": ["93.184.216.34", "10.0.0.1"],
                "mapped.test": ["::ffff:127.0.0.1"],
            }
        ),
    )
    assert await policy.addresses("public.test", 443) == ["93.184.216.34", "2606:4700::6810:85e5"]
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.1"):
        await policy.addresses("mixed.test", 443)
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1"):
        await policy.addresses("mapped.test", 443)
    with pytest.raises(DestinationUnresolved):
        await policy.addresses("nowhere.test", 443)
    # Literals are never resolved: the parsed address itself is what gets connected to.
    with pytest.raises(DestinationRefused):
        await policy.addresses("0x7f000001", 443)


async def test_url_problem_resolves_names_and_accepts_unresolvable_ones() -> None:
    policy = OutboundPolicy(dev_mode=False, resolver=_resolver({"inside.test": ["192.168.1.20"]}))
    assert "192.168.1.20" in (await url_problem("https://inside.test/hook", policy) or "")
    assert await url_problem("https://not-yet-in-dns.test/hook", policy) is None
    assert await url_problem("http://inside.test/hook", policy) == "must use https"


async def test_the_system_resolver_is_checked_too() -> None:
    """This machine's own name usually resolves to loopback (/etc/hosts)."""
    name = socket.gethostname()
    policy = OutboundPolicy(dev_mode=False)
    try:
        found = await OutboundPolicy(dev_mode=True).addresses(name, 80)
    except (DestinationRefused, DestinationUnresolved):
        pytest.skip(f"{name} does not resolve to loopback here")
    assert all(ipaddress.ip_address(a).is_loopback for a in found)
    with pytest.raises(DestinationRefused, match="loopback"):
        await policy.addresses(name, 80)


async def test_dev_overrides_are_checked_like_any_answer() -> None:
    policy = OutboundPolicy(dev_mode=True, overrides={"hook.eu1.make.com": "127.0.0.1"})
    assert await policy.addresses("hook.eu1.make.com.", 443) == ["127.0.0.1"]
    pinned = OutboundPolicy(dev_mode=True, overrides={"hook.eu1.make.com": "169.254.169.254"})
    with pytest.raises(DestinationRefused, match="metadata"):
        await pinned.addresses("hook.eu1.make.com", 443)


def test_address_problem_names_the_kind() -> None:
    def problem(text: str) -> str:
        return address_problem(ipaddress.ip_address(text), dev_mode=False) or ""

    assert "metadata" in problem("169.254.169.254")
    assert "unspecified" in problem("0.0.0.0")
    assert "loopback" in problem("::1")
    assert "multicast" in problem("224.0.0.1")
    assert "non-public" in problem("10.0.0.1")


async def test_allowed_internal_networks_pass_but_metadata_never_does() -> None:
    from render_signal.common.envreader import EnvReader

    env = EnvReader(
        {
            "OUTBOUND_ALLOW_NETWORKS": "10.20.0.0/16,169.254.0.0/16",
            "RENDER_SIGNAL_ENV": "production",
        }
    )
    allowed = env.allowed_networks()
    assert not env.problems
    assert host_problem("10.20.3.4", dev_mode=False, allowed=allowed) is None
    assert host_problem("10.21.3.4", dev_mode=False, allowed=allowed) is not None
    assert "metadata" in (host_problem("169.254.169.254", dev_mode=False, allowed=allowed) or "")

    async def internal(host: str, port: int) -> list[str]:
        return ["10.20.0.9"]

    policy = OutboundPolicy(dev_mode=False, allowed=allowed, resolver=internal)
    assert await policy.addresses("receiver.internal", 443) == ["10.20.0.9"]
    refused = OutboundPolicy(dev_mode=False, resolver=internal)
    with pytest.raises(DestinationRefused):
        await refused.addresses("receiver.internal", 443)
    # The start-time check of env URLs follows the same list.
    env_url = EnvReader(
        {
            "OUTBOUND_ALLOW_NETWORKS": "10.20.0.0/16",
            "WEBHOOK_URL": "https://10.20.0.9/hook",
            "OTHER_URL": "https://10.30.0.9/hook",
        }
    )
    assert env_url.url("WEBHOOK_URL") and not env_url.problems
    env_url.url("OTHER_URL")
    assert env_url.problems and "OTHER_URL" in env_url.problems[0]
    bad = EnvReader({"OUTBOUND_ALLOW_NETWORKS": "not-a-network"})
    assert bad.allowed_networks() == () and "OUTBOUND_ALLOW_NETWORKS" in bad.problems[0]
