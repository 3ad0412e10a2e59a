"""Ports for the servers the dev stack and the tests start."""

from __future__ import annotations

import socket
from pathlib import Path

from render_signal.devstack.ports import free_port, port_free


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    """Below the kernel's ephemeral range, a loopback client's source port can never
    take the port before its server binds it (the gateway's EADDRINUSE once)."""
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50, "a port handed out twice"
    range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if range_file.exists():
        low = int(range_file.read_text().split()[0])
        assert all(1024 <= p < low for p in ports), (low, ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[0]))
        server.listen()
        assert not port_free(ports[0]), "a listening port is not free"
