"""Processes and clients for the security attack tests (``test_security_attacks.py``).

The gateway runs as its console script in production mode
(``RENDER_SIGNAL_ENV=production``) on a loopback port, notify likewise where a
delivery is involved; both on the session's real Redis under the test's key
prefix. Clients talk plain HTTP to it, optionally from another loopback source
address (``127.0.0.2``) to play a second machine.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync
from render_signal.common.events import DeliveryLink, MailOffloaded, encode_entry
from render_signal.common.keys import Keys
from render_signal.devstack.ports import free_port

from .processes import ServiceProcess, service_command

__all__ = [
    "PASSWORD",
    "USER",
    "GatewayProcess",
    "NotifyProcess",
    "csrf_of_form",
    "loopback_name",
    "publish_email",
    "run_until_exit",
]

USER = "owner"
PASSWORD = "correct horse battery staple 7"
KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONTZPATH", "VIRTUAL_ENV")


def base_env(workdir: Path, redis_url: str, key_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEEP}
    env.update(
        RENDER_SIGNAL_ENV="production",
        RENDER_SIGNAL_ENV_FILE=str(workdir / "absent.env"),
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=key_prefix,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        HEARTBEAT_INTERVAL_SECONDS="1",
        METRICS_HOST="127.0.0.1",
    )
    return env


def csrf_of_form(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token in the form"
    return match.group(1)


class GatewayProcess:
    """``render-signal-gateway`` in production mode on 127.0.0.1 (strong secrets)."""

    def __init__(self, workdir: Path, redis_url: str, key_prefix: str, **extra: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.metrics_port = free_port()
        self.api_token = secrets.token_urlsafe(32)
        self.env = base_env(workdir, redis_url, key_prefix)
        self.env.update(
            HOST="127.0.0.1",
            PORT=str(self.port),
            GATEWAY_METRICS_PORT=str(self.metrics_port),
            SECRET_KEY=secrets.token_hex(32),
            DASHBOARD_USER=USER,
            DASHBOARD_PASSWORD=PASSWORD,
            PROCESS_API_TOKEN=self.api_token,
            WEBHOOK_LINKS_FILE=str(workdir / "webhook_links.json"),
            R2_PUBLIC_BASE_URL="https://media.r2-files.net",
        )
        self.env.update(extra)
        self.process = ServiceProcess("gateway", self.env, workdir, f"{self.url}/ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GatewayProcess:
        self.process.start()
        self.process.wait_ready(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def client(self, source: str | None = None, **kwargs: Any) -> httpx.Client:
        """A client (from loopback address ``source``, e.g. 127.0.0.2, when given)."""
        transport = httpx.HTTPTransport(local_address=source) if source else None
        return httpx.Client(base_url=self.url, transport=transport, timeout=30, **kwargs)

    def async_client(self, source: str | None = None) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
        return httpx.AsyncClient(base_url=self.url, transport=transport, timeout=30)

    def login(self, client: httpx.Client, password: str = PASSWORD) -> httpx.Response:
        page = client.get("/login")
        return client.post(
            "/login",
            data={"username": USER, "password": password, "csrf_token": csrf_of_form(page.text)},
        )

    def session(self, client: httpx.Client) -> httpx.Client:
        """``client`` with the session's CSRF header, as the dashboard sends it."""
        info = client.get("/api/auth/session")
        assert info.status_code == 200, info.text
        client.headers["X-CSRF-Token"] = info.json()["csrf_token"]
        return client

    def admin(self) -> httpx.Client:
        client = self.client()
        assert self.login(client).status_code == 303
        return self.session(client)

    def open_magic_link(self, link: str) -> httpx.Client:
        """A fresh client that follows ``link`` like a browser (landing page, button)."""
        client = self.client()
        path = "/" + link.split("/", 3)[3]
        landing = client.get(path)
        assert landing.status_code == 200
        answer = client.post(path, data={"csrf_token": csrf_of_form(landing.text)})
        assert answer.status_code == 303, answer.text
        return self.session(client)

    def metrics(self) -> str:
        """The gateway's exposition from its internal metrics port."""
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text


class NotifyProcess:
    """``render-signal-notify`` (production mode unless told) on the same Redis."""

    def __init__(self, workdir: Path, redis_url: str, key_prefix: str, **extra: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = base_env(workdir, redis_url, key_prefix)
        self.env.update(
            NOTIFY_METRICS_PORT=str(self.port),
            NOTIFY_SCHEDULER_INTERVAL_SECONDS="0.2",
            WEBHOOK_TIMEOUT_SECONDS="5",
        )
        self.env.update(extra)
        ready = f"http://127.0.0.1:{self.port}/ready"
        self.process = ServiceProcess("notify", self.env, workdir, ready)

    def __enter__(self) -> NotifyProcess:
        self.process.start()
        self.process.wait_ready(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.process.tail(400)


def run_until_exit(service: str, env: dict[str, str], timeout_s: float = 60) -> str:
    """Start ``service`` expecting it to refuse to start (exit 2); its stderr."""
    done = subprocess.run(
        service_command(service), env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    return done.stderr


def loopback_name() -> str | None:
    """A host name that resolves to loopback only on this machine, other than
    ``localhost`` (which is refused by name): the machine's own name, or one of the
    aliases Debian-like systems put in /etc/hosts. None when there is none."""
    candidates = (socket.gethostname(), socket.getfqdn(), "localhost.localdomain",
                  "ip6-localhost", "ip6-loopback", "localhost6")  # fmt: skip
    for name in candidates:
        if not name or name == "localhost" or name.endswith(".localhost"):
            continue
        try:
            infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = {str(info[4][0]) for info in infos}
        if addresses and all(a.startswith("127.") or a == "::1" for a in addresses):
            return name
    return None


def publish_email(redis_url: str, key_prefix: str, email_id: str) -> None:
    """One offloaded email on ``mail.offloaded``, as offload would publish it."""
    link = DeliveryLink(provider="dropbox", raw_url="https://www.dropbox.com/s/abc/plan.pdf?dl=0")
    event = MailOffloaded(
        event_id=f"evt-{email_id}",
        email_id=email_id,
        source="imap",
        subject="Média Solution - Lot 7",
        sender_address="Studio <studio@render.test>",
        sender_email="studio@render.test",
        received_date="2026-01-05T10:00:00Z",
        body_text="Vos fichiers: https://www.dropbox.com/s/abc/plan.pdf?dl=0",
        body_html="",
        links=(link,),
        received_at=time.time(),
    )
    client = redis_sync.Redis.from_url(redis_url)
    try:
        client.xadd(Keys(key_prefix).mail_offloaded, encode_entry(event))  # type: ignore[arg-type]
    finally:
        client.close()
