"""The webhook receiver of the compose test: HTTPS on the host, with a throwaway CA.

notify runs in production mode in the compose stack, where ``WEBHOOK_URL`` must be
https and not a loopback host (``render_signal.common.settings.EnvReader.url``).
So the receiver serves HTTPS on the host address the containers reach it by
(``host.containers.internal``), with a certificate for that name signed by a CA
made for this run only; notify trusts that CA through ``SSL_CERT_FILE``, which
httpx honours (``deploy/compose/webhook-ca.override.yml``). TLS is verified, as
in production; nothing is relaxed.
"""

from __future__ import annotations

import queue
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["HOST_ALIAS", "Received", "Receiver", "ThrowawayCA"]

#: The name containers use for the host (podman adds it to /etc/hosts; on a Docker
#: engine the docker-host-gateway override maps it with ``host-gateway``).
HOST_ALIAS = "host.containers.internal"


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


class ThrowawayCA:
    """A CA and one server certificate for ``HOST_ALIAS``, made with openssl in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_cert = directory / "ca.pem"
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"

    def create(self) -> ThrowawayCA:
        d = self.directory
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        self._openssl(
            "req", "-x509", *ec, "-days", "2", "-subj", "/CN=render-signal compose-test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(d / "ca.key"), "-out", str(self.ca_cert),
        )  # fmt: skip
        self._openssl(
            "req", *ec, "-subj", f"/CN={HOST_ALIAS}",
            "-keyout", str(self.server_key), "-out", str(d / "server.csr"),
        )  # fmt: skip
        (d / "server.ext").write_text(
            f"subjectAltName=DNS:{HOST_ALIAS}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n"
        )
        self._openssl(
            "x509", "-req", "-in", str(d / "server.csr"), "-days", "2",
            "-CA", str(self.ca_cert), "-CAkey", str(d / "ca.key"), "-CAcreateserial",
            "-extfile", str(d / "server.ext"), "-out", str(self.server_cert),
        )  # fmt: skip
        self.ca_cert.chmod(0o644)  # read by notify's uid 10001 through a bind mount
        return self

    @staticmethod
    def _openssl(*args: str) -> None:
        subprocess.run(  # noqa: S603
            ["openssl", *args],  # noqa: S607 - from PATH, like every tool here
            check=True,
            capture_output=True,
            timeout=60,
        )


class Receiver:
    """A recording HTTPS server on ``(host, port)``; answers 200 ``{"success": true}``,
    after :attr:`delay_s` (a slow receiver keeps notify's sends in flight)."""

    def __init__(self, host: str, port: int, ca: ThrowawayCA) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        self.delay_s = 0.0
        received = self.received
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.put(Received(self.path, headers, body, time.monotonic()))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)  # the stand-in's answer time, by design
                reply = b'{"success": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the driver reports what matters

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(ca.server_cert, ca.server_key)
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def wait(self, timeout: float) -> Received:
        """The next request; raises TimeoutError after ``timeout`` seconds."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no webhook within {timeout:.0f} s") from None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
