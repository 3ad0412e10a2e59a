"""Where outbound HTTP may connect: one address policy for save time and connect time.

Webhook targets, Make and Render URLs and the R2 Worker endpoint are typed by
people (or by anyone who gets a dashboard session), so each one is a possible
SSRF: a request from inside our network to ``169.254.169.254`` or to a
service on ``10.x`` whose answer would come back in the webhook log. The rule:

* an address must be **global** (``ipaddress.is_global``) and not multicast;
  loopback is allowed in dev mode only (where people and tests run local
  receivers); cloud metadata addresses, unspecified, private, link-local,
  unique-local, shared (CGNAT) and reserved addresses never are;
* IPv6 forms that carry an IPv4 address (mapped ``::ffff:a.b.c.d``,
  compatible ``::a.b.c.d``, 6to4, NAT64, Teredo) are judged by that address too;
* a host written as a number is parsed the way resolvers parse it
  (``inet_aton``: ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``),
  trailing dots and IPv6 zone ids removed, so no spelling slips past;
* a name is resolved and **every** address it resolves to must pass.

:func:`host_problem` is the literal check (no DNS: the environment is checked
at start, when the network may not be up). :meth:`OutboundPolicy.addresses`
resolves and checks; :mod:`.outboundhttp` calls it from inside the HTTP
client's connect, and connects to the address it checked, so a name that
changes its answer between the check and the connect (DNS rebinding) can't
pass. ``RENDER_SIGNAL_RESOLVE`` (dev mode only) pins names to addresses for
tests; the pinned address is checked like any other.

``OUTBOUND_ALLOW_NETWORKS`` (CIDRs, e.g. ``10.20.0.0/16``) is the operator's
explicit exception for a receiver or Worker on an internal network (a VPC, the
compose bridge): addresses inside those networks pass, except the metadata
addresses, which never do.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from string import hexdigits, octdigits

from render_signal.common.errors import DestinationRefused, DestinationUnresolved

__all__ = [
    "METADATA_ADDRESSES",
    "IPAddress",
    "IPNetwork",
    "OutboundPolicy",
    "Resolver",
    "address_problem",
    "host_problem",
    "is_loopback_host",
    "normalise_host",
    "parse_ip",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: Instance-metadata endpoints (AWS/GCP/Azure/OpenStack, ECS, Alibaba, Azure wireserver):
#: named so the refusal says what it is; most are not global anyway.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_DIGITS = frozenset("0123456789")


def normalise_host(host: str) -> str:
    """Lowercase, without brackets, trailing dots or an IPv6 zone id."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.split("%", 1)[0].rstrip(".")


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """IPv4 in every form ``inet_aton`` accepts: 1 to 4 parts, decimal, 0x hex or 0 octal;
    the last part fills the remaining bytes (``127.1`` is 127.0.0.1)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if part.startswith("0x"):
            digits, base, allowed = part[2:], 16, frozenset(hexdigits)
        elif part.startswith("0") and len(part) > 1:
            digits, base, allowed = part[1:], 8, frozenset(octdigits)
        else:
            digits, base, allowed = part, 10, _DIGITS
        if not digits or not set(digits) <= allowed:
            return None  # int() alone would accept "1_0" and non-ASCII digits
        values.append(int(digits, base))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for index, value in enumerate(head):
        number += value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def parse_ip(host: str) -> IPAddress | None:
    """The address ``host`` denotes when written as a number, else None (a name)."""
    text = normalise_host(host)
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _inet_aton(text)


def _judged(address: IPAddress) -> list[IPAddress]:
    """The addresses a connection to ``address`` really reaches (IPv4 inside IPv6)."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    value = int(address)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed)
        return [ipaddress.IPv4Address(value)]
    found: list[IPAddress] = [address]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return found


def address_problem(
    address: IPAddress, *, dev_mode: bool, allowed: tuple[IPNetwork, ...] = ()
) -> str | None:
    """Why a connection to ``address`` is refused, or None (``allowed``: the
    operator's internal networks, ``OUTBOUND_ALLOW_NETWORKS``)."""
    for judged in _judged(address):
        if judged in METADATA_ADDRESSES:
            return f"cloud metadata address {judged} refused"
        if any(judged in network for network in allowed):
            continue
        if judged.is_unspecified:
            return f"unspecified address {judged} refused"
        if judged.is_loopback:
            if dev_mode:
                continue
            return f"loopback address {judged} refused outside dev mode"
        if judged.is_multicast:
            return f"multicast address {judged} refused"
        if not judged.is_global:
            return f"non-public address {judged} refused (private, link-local or reserved)"
    return None


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``) or a loopback address, in any spelling."""
    text = normalise_host(host)
    if text == "localhost" or text.endswith(".localhost"):
        return True
    address = parse_ip(text)
    return address is not None and all(a.is_loopback for a in _judged(address))


def host_problem(host: str, *, dev_mode: bool, allowed: tuple[IPNetwork, ...] = ()) -> str | None:
    """The literal check (no DNS): why ``host`` is refused, or None."""
    text = normalise_host(host)
    address = parse_ip(text)
    if address is not None:
        return address_problem(address, dev_mode=dev_mode, allowed=allowed)
    if text in METADATA_NAMES:
        return f"cloud metadata host {text} refused"
    if is_loopback_host(text) and not dev_mode:
        return "loopback host refused outside dev mode"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (stream sockets)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class OutboundPolicy:
    """Resolves a host and returns only addresses this mode may connect to.

    Args:
        dev_mode: loopback allowed (nothing else non-public).
        overrides: ``name -> address`` pins (``RENDER_SIGNAL_RESOLVE``, dev mode only).
        allowed: internal networks the operator allows (``OUTBOUND_ALLOW_NETWORKS``).
        resolver: how names are resolved (tests pass one to simulate rebinding).
        timeout_s: bound on one resolution.
    """

    def __init__(
        self,
        *,
        dev_mode: bool,
        overrides: Mapping[str, str] | None = None,
        allowed: tuple[IPNetwork, ...] = (),
        resolver: Resolver | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.dev_mode = dev_mode
        self.allowed = allowed
        self.overrides = {normalise_host(k): v for k, v in (overrides or {}).items()}
        self.resolver = resolver or system_resolver
        self.timeout_s = timeout_s

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses of ``host``, to connect to in this order.

        Raises:
            DestinationRefused: the host, or any address it resolves to, is refused.
            DestinationUnresolved: it does not resolve (now).
        """
        name = normalise_host(host)
        problem = host_problem(name, dev_mode=self.dev_mode, allowed=self.allowed)
        if problem:
            raise DestinationRefused(f"{name}: {problem}")
        literal = parse_ip(name)
        if literal is not None:
            return [str(literal)]
        if name in self.overrides:
            found = [self.overrides[name]]
        else:
            try:
                found = await asyncio.wait_for(self.resolver(name, port), self.timeout_s)
            except (OSError, TimeoutError) as exc:
                raise DestinationUnresolved(f"{name} does not resolve ({exc})") from exc
        checked: list[str] = []
        for text in found:
            address = parse_ip(text)
            if address is None:
                raise DestinationUnresolved(f"{name} resolved to a non-address {text!r}")
            problem = address_problem(address, dev_mode=self.dev_mode, allowed=self.allowed)
            if problem:
                # One bad answer refuses the name: a rebinding server mixes good and bad.
                raise DestinationRefused(f"{name} resolves to {address}: {problem}")
            if str(address) not in checked:
                checked.append(str(address))
        if not checked:
            raise DestinationUnresolved(f"{name} resolved to no address")
        return checked
