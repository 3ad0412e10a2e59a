"""A real Dovecot IMAP server on loopback, for the ingest tests and the pipeline harness.

Follows docs/real-components.md section 2: a standalone config (no systemd), a
passwd-file user mapped to uid 65534, a temp dir chmod 0755 (Dovecot's auth
process must traverse it), ``dovecot -F`` as the master in its own process
group. Needs root (the Maildir is chowned to the mail uid).

:class:`DovecotServer` -- ``start()``, ``stop()`` (SIGTERM, waits for the master;
2.5-6 s), ``kill()`` (SIGKILL the whole group, instant), ``append()`` over IMAP,
``deliver()`` straight into the Maildir (works while Dovecot is down), ``port``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from imapclient import IMAPClient
from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port

__all__ = ["DovecotServer", "dovecot_binary"]

MAIL_UID = 65534  # nobody: Dovecot refuses uid 0 for mail users


def dovecot_binary() -> str | None:
    """Path of the dovecot master binary, or None."""
    found = shutil.which("dovecot") or "/usr/sbin/dovecot"
    return found if Path(found).is_file() and os.access(found, os.X_OK) else None


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
# Tests log in with wrong passwords on purpose; the per-address penalty
# (2 s, doubling to 15 s) would make every later login of the run slower.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class DovecotServer:
    """A Dovecot master process serving one user over plain IMAP on 127.0.0.1."""

    def __init__(
        self,
        port: int = 0,
        user: str = "alice",
        password: str = "secret",  # noqa: S107 - a throwaway test mailbox on loopback
    ) -> None:
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
        self.process = subprocess.Popen(  # noqa: S603 - the dovecot binary, our own config
            [self.binary, "-F", "-c", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        process = self.process

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
            except OSError:
                return False
            return True

        try:
            wait_until(listening, timeout_s, f"dovecot to open port {self.port}", interval_s=0.01)
        except AssertionError as exc:  # RuntimeError, like an exit: callers skip on it
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from None
        return self

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
