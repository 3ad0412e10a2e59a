"""A throwaway CA and a server certificate for https stand-ins (``openssl`` CLI).

Tests that must show TLS working end to end (SNI and certificate names checked
against the URL's host while the socket goes to a pinned address) serve
https from :class:`~render_signal.devstack.receiver.Receiver` with
:meth:`TestCertificates.server_context` and trust :attr:`TestCertificates.ca`.
The ``openssl`` binary is a real component: callers skip (or fail in CI)
through ``require_component`` when :func:`openssl_available` is false.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestCertificates", "make_certificates", "openssl_available"]

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


@dataclass(frozen=True)
class TestCertificates:
    """Paths of the CA certificate and of the server's certificate and key."""

    __test__ = False  # not a pytest test class, despite the name

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def _run(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl") or "openssl"
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=60)  # noqa: S603 - our args


def make_certificates(directory: Path, names: list[str]) -> TestCertificates:
    """A CA, and a server certificate for DNS ``names`` signed by it, valid two days."""
    directory.mkdir(parents=True, exist_ok=True)
    _run("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=render-signal test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)  # fmt: skip
    _run("req", *_EC, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={names[0]}",
         cwd=directory)  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
        f"subjectAltName={','.join(f'DNS:{name}' for name in names)}\n"
    )
    _run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
         cwd=directory)  # fmt: skip
    return TestCertificates(
        ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server.key"
    )
