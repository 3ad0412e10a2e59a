"""The adapter's two guards against servers that accept but never (fully) answer."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from render_signal.ingest.imap_client import ImapAdapter, ImapEndpoint, ImapUnavailable


class _TcpServer:
    """Accepts connections; ``trickle`` sends one byte every 0.2 s, never a full line."""

    def __init__(self, trickle: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.trickle = trickle
        self.stop = threading.Event()
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
                self.clients.append(client)
            except OSError:
                pass
            for client in self.clients if self.trickle else []:
                try:
                    client.send(b"*")
                except OSError:
                    continue
            self.stop.wait(0.2)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        for sock in [self.sock, *self.clients]:
            sock.close()


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
async def test_connect_to_a_hung_server_fails_within_its_deadline(trickle: bool) -> None:
    server = _TcpServer(trickle)
    try:
        adapter = ImapAdapter(
            ImapEndpoint(
                host="127.0.0.1",
                port=server.port,
                username="u",
                password="p",
                use_ssl=False,
                timeout_s=1.0,
            )
        )
        started = time.monotonic()
        with pytest.raises(ImapUnavailable) as caught:
            await adapter.connect()
        elapsed = time.monotonic() - started
        assert adapter.closed
        if trickle:
            # Each byte resets the socket timeout: only the loop-side watchdog ends it.
            assert "no answer within" in str(caught.value)
            assert 2.0 <= elapsed < 8.0
        else:
            # The socket read timeout (never None) ends it first.
            assert "TimeoutError" in str(caught.value)
            assert elapsed < 3.0
    finally:
        server.close()
