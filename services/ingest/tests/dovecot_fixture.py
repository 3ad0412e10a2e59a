"""A real Dovecot IMAP server on loopback for tests, and a proxy that can go silent.

Reusable outside this directory (``tests/integration``): import it by path, or put
this directory on ``sys.path``. Follows docs/real-components.md section 2: a
standalone config (no systemd), a passwd-file user mapped to uid 65534, a temp
dir chmod 0755 (Dovecot's auth process must traverse it), ``dovecot -F`` as the
master in its own process group.

* :class:`DovecotServer` — ``start()``, ``stop()`` (SIGTERM, waits for the master;
  2.5-6 s), ``kill()`` (SIGKILL the whole group, instant), ``append()`` over IMAP,
  ``deliver()`` straight into the Maildir (works while Dovecot is down), ``port``.
* :class:`SilentProxy` — forwards TCP to Dovecot until ``freeze()``: then it keeps
  accepting connections but never answers, and stops forwarding on open ones (a
  server that accepts and hangs). ``thaw()`` resumes.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from render_signal.common.events import MailRaw, decode_entry

__all__ = [
    "DovecotServer",
    "SilentProxy",
    "dovecot_binary",
    "free_port",
    "make_email",
    "message_id_of",
    "metric",
    "mid",
    "raw_events",
]

MAIL_UID = 65534  # nobody: Dovecot refuses uid 0 for mail users


def dovecot_binary() -> str | None:
    """Path of the dovecot master binary, or None."""
    found = shutil.which("dovecot") or "/usr/sbin/dovecot"
    return found if Path(found).is_file() and os.access(found, os.X_OK) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_email(subject: str, body: str = "hello", *, message_id: str | None = None) -> bytes:
    """A small RFC 822 message with a unique Message-ID (returned inside the bytes)."""
    mid = message_id or f"<{uuid.uuid4().hex}@test.render-signal>"
    return (
        f"From: Sender <sender@fromsmash.com>\r\n"
        f"To: alice@localhost\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {mid}\r\n"
        f"Date: Mon, 03 Feb 2026 10:00:00 +0100\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"{body}\r\n"
    ).encode()


_CONF = """\
instance_name = rs-test-{tag}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
imap_idle_notify_interval = 2 secs
"""


class DovecotServer:
    """A Dovecot master process serving one user over plain IMAP on 127.0.0.1."""

    def __init__(self, port: int = 0, user: str = "alice", password: str = "secret") -> None:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot binary not found")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.user = user
        self.password = password
        self.root = Path(tempfile.mkdtemp(prefix="rs-dovecot-"))
        self.root.chmod(0o755)
        self.home = self.root / "mail" / user
        self.conf = self.root / "dovecot.conf"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            (self.home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
        for path in [self.root / "mail", self.home, *self.home.rglob("*")]:
            os.chown(path, MAIL_UID, MAIL_UID)
        (self.root / "users").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{MAIL_UID}:{MAIL_UID}::{self.home}::\n"
        )
        self.conf.write_text(_CONF.format(root=self.root, port=self.port, tag=self.root.name))

    # -- lifecycle --------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> DovecotServer:
        log = (self.root / "master.out").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return self
            time.sleep(0.01)
        raise RuntimeError(f"dovecot did not open port {self.port}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Graceful: SIGTERM the master and its sessions, wait for the port to close."""
        if self.process is None or self.process.poll() is not None:
            return
        # The whole group: a bare master SIGTERM can leave live IMAP sessions behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self._wait_port_closed(timeout_s)

    def kill(self) -> None:
        """Crash: SIGKILL the master and all its children at once."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def _wait_port_closed(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
            except OSError:
                return
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("dovecot.log", "master.out"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- mail -------------------------------------------------------------------------
    def client(self) -> IMAPClient:
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(self, message: bytes, mailbox: str = "INBOX", flags: tuple[bytes, ...] = ()) -> int:
        """APPEND over IMAP; returns the new UID (from APPENDUID)."""
        imap = self.client()
        try:
            response = imap.append(mailbox, message, flags=flags)
        finally:
            with contextlib.suppress(Exception):
                imap.logout()
        # b'[APPENDUID <uidvalidity> <uid>] Append completed.'
        text = response.decode() if isinstance(response, bytes) else str(response)
        return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))

    def deliver(self, message: bytes) -> Path:
        """Drop a message into Maildir/new as an MDA would (Dovecot may be down)."""
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.rs-test"
        tmp = self.home / "Maildir" / "tmp" / name
        tmp.write_bytes(message)
        os.chown(tmp, MAIL_UID, MAIL_UID)
        final = self.home / "Maildir" / "new" / name
        tmp.rename(final)
        return final

    def flags(self, uid: int, mailbox: str = "INBOX") -> tuple[bytes, ...]:
        imap = self.client()
        try:
            imap.select_folder(mailbox, readonly=True)
            row = imap.fetch([uid], ["FLAGS"]).get(uid, {})
            return tuple(row.get(b"FLAGS", ()))
        finally:
            with contextlib.suppress(Exception):
                imap.logout()


class SilentProxy:
    """TCP forwarder to ``upstream_port`` that can turn into a black hole."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()
        for sock in self._held:
            with contextlib.suppress(OSError):
                sock.close()
        self._held.clear()

    def close(self) -> None:
        self.closed.set()
        self.thaw()
        with contextlib.suppress(OSError):
            self.listener.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _accept_loop(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.frozen.is_set():
                self._held.append(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while not self.closed.is_set():
                if self.frozen.is_set():
                    self.closed.wait(0.05)  # hold everything: no bytes in either direction
                    continue
                for key, _ in selector.select(timeout=0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()


# -- test harness helpers ------------------------------------------------------------
def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def raw_events(redis: Redis, key_prefix: str) -> list[MailRaw]:
    """Every MailRaw on this test's ``mail.raw`` stream, oldest first."""
    entries: Any = await redis.xrange(f"{key_prefix}mail.raw")
    return [decode_entry(fields, MailRaw) for _, fields in entries]


def message_id_of(event: MailRaw) -> str:
    for line in event.raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def mid(message: bytes) -> str:
    for line in message.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise ValueError("no Message-ID")
