"""Loopback TCP ports for the servers the dev stack and the tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port", "port_free"]

#: Where the kernel says its ephemeral (outgoing source) ports start.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Ports already handed out by this process: not handed out twice (a caller may
#: ask for several before binding any).
_given: set[int] = set()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (free when asked: bind it soon).

    Taken below the kernel's ephemeral range. Why: a port from ``bind(0)`` comes
    from the range the kernel also hands out as the source ports of outgoing
    connections, so a loopback client (a service's Redis connection) could take
    it before the server meant for it binds. Seen once: the gateway of `make run`
    failed with EADDRINUSE on such a port while its siblings talked to Redis.
    """
    low = _ephemeral_start()
    if low > 2048:
        rng = random.SystemRandom()
        for _ in range(100):
            port = rng.randrange(max(1024, low - 12_000), low)
            if port not in _given and port_free(port):
                _given.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # not Linux: what bind(0) gives


def port_free(port: int) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers that will bind it: a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
