"""The whole pipeline on loopback, every part a real process that can be killed.

``Pipeline(workdir).start()`` brings up, in order: redis-server with AOF, Dovecot
(one mailbox), the provider file server, the real Worker in workerd, the
recording receiver, then ``render-signal-{ingest,offload,notify,gateway}`` as
separate processes configured through their environment, as production does.
``close()`` stops everything it started, by handle.

With ``replicas=N`` each worker (ingest, offload, notify) runs N times, as
``services["offload"]``, ``services["offload-1"]``, ... (instances
``e2e-offload-0``, ``e2e-offload-1``, ...); :meth:`Pipeline.rename` gives a
replica a new instance name for its next start, as a rescheduled pod gets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync
from render_signal.common.configdocs import BY_NAME
from render_signal.common.configstore import ConfigStore
from render_signal.common.keys import Keys
from render_signal.common.redisclient import create_redis
from render_signal.devstack.dovecot import DovecotServer, dovecot_binary
from render_signal.devstack.ports import free_port
from render_signal.devstack.redisserver import RedisServer, find_redis_server

from .dashboard import login
from .fakes import ProviderFiles, WebhookReceiver
from .mail import HttpIngress, ImapAppender
from .processes import ServiceProcess, WorkerProcess, http_ok

__all__ = ["SERVICES", "WORKERS", "ExternalRedis", "Pipeline", "missing_components"]

SERVICES = ("ingest", "offload", "notify", "gateway")
#: The services that can run as several replicas (the gateway is one process here).
WORKERS = ("ingest", "offload", "notify")
PORT_VAR = {
    "ingest": "INGEST_METRICS_PORT",
    "offload": "OFFLOAD_METRICS_PORT",
    "notify": "NOTIFY_METRICS_PORT",
    "gateway": "PORT",
}


def missing_components(*, imap: bool = True, worker: bool = True) -> str | None:
    """Why the pipeline cannot start here, or None."""
    if find_redis_server() is None:
        return "no redis-server binary"
    if imap:
        if dovecot_binary() is None:
            return "no dovecot binary"
        if os.geteuid() != 0:
            return "Dovecot fixture needs root (chown to the mail uid)"
    if worker and not WorkerProcess.available():
        return "needs node and deploy/r2-worker/node_modules (npm ci)"
    return None


class ExternalRedis:
    """A Redis the pipeline uses but does not own (one in a container): the faults
    that kill or restart Redis need a :class:`RedisServer`."""

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self) -> ExternalRedis:
        return self

    def stop(self) -> None:
        """Its owner stops it."""

    def kill(self) -> None:
        raise TypeError("this pipeline's Redis is not a child process; it cannot be killed")


class Pipeline:
    """Everything wired together. Attributes are live handles for tests to poke."""

    def __init__(
        self,
        workdir: Path,
        *,
        imap: bool = True,
        worker: bool = True,
        redis_fsync: str = "everysec",
        extra_env: dict[str, str] | None = None,
        timezone: str = "Europe/Paris",
        files_bytes: int = 2048,
        receiver_retry_after_s: int = 1,
        replicas: int = 1,
        redis: RedisServer | ExternalRedis | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.logdir = workdir / "logs"
        self.logdir.mkdir(exist_ok=True)
        self.use_imap = imap
        self.use_worker = worker
        self.redis_fsync = redis_fsync
        self.key_prefix = f"e2e:{secrets.token_hex(4)}:"
        self.api_token = secrets.token_urlsafe(32)
        self.signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.dashboard_password = secrets.token_urlsafe(12)
        self.r2_token = secrets.token_urlsafe(24)
        self.timezone = timezone
        self.redis = redis or RedisServer(workdir / "redis", aof=True)
        self.redis_restarts = {"kill": 0, "term": 0}
        self.dovecot: DovecotServer | None = None
        self.files = ProviderFiles(files_bytes)
        self.worker: WorkerProcess | None = None
        self.receiver = WebhookReceiver(receiver_retry_after_s)
        self.replicas = replicas
        #: Process key -> (service, replica index): "offload-1" -> ("offload", 1).
        self.layout = {
            (name if index == 0 else f"{name}-{index}"): (name, index)
            for name in SERVICES
            for index in range(replicas if name in WORKERS else 1)
        }
        self.ports = {key: free_port() for key in self.layout}
        self.renames = 0
        self.extra_env = dict(extra_env or {})
        self.services: dict[str, ServiceProcess] = {}
        self._appender: ImapAppender | None = None
        self._ingress: HttpIngress | None = None
        self._started: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> Pipeline:
        try:
            self.redis.start()
            self._started.append("redis")
            self._apply_fsync()
            if self.use_imap:
                self.dovecot = DovecotServer()
                self.dovecot.start()
                self._started.append("dovecot")
            self.files.start()
            self._started.append("files")
            if self.use_worker:
                self.worker = WorkerProcess(
                    self.r2_token, self.files.origin, free_port(), free_port()
                )
                self.worker.start()
                self._started.append("worker")
            self.receiver.start()
            self._started.append("receiver")
            env = self.service_env()
            for key, (name, index) in self.layout.items():
                port = self.ports[key]
                path = "/health" if name == "gateway" else "/ready"
                self.services[key] = ServiceProcess(
                    key,
                    {
                        **env,
                        PORT_VAR[name]: str(port),
                        "RENDER_SIGNAL_INSTANCE": f"e2e-{name}-{index}",
                    },
                    self.logdir,
                    f"http://127.0.0.1:{port}{path}",
                    service=name,
                )
            for service in self.services.values():
                service.start()
            for service in self.services.values():
                service.wait_ready(60)
        except BaseException:
            self.close()
            raise
        return self

    def service_env(self) -> dict[str, str]:
        # GLIBC_TUNABLES reaches the services as an operator's would: with it set,
        # common.allocator leaves glibc's defaults (the bench's before/after of issue 16).
        keep = (
            "PATH",
            "HOME",
            "LANG",
            "LC_ALL",
            "TMPDIR",
            "PYTHONTZPATH",
            "VIRTUAL_ENV",
            "GLIBC_TUNABLES",
        )
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "RENDER_SIGNAL_ENV": "dev",
                "RENDER_SIGNAL_ENV_FILE": str(self.workdir / "absent.env"),
                "REDIS_URL": self.redis.url,
                "REDIS_KEY_PREFIX": self.key_prefix,
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "INFO",
                "HEARTBEAT_INTERVAL_SECONDS": "1",
                "DRAIN_TIMEOUT_SECONDS": "5",
                "POLLING_TIMEZONE": self.timezone,
                # gateway
                "SECRET_KEY": secrets.token_urlsafe(48),
                "DASHBOARD_USER": "admin",
                "DASHBOARD_PASSWORD": self.dashboard_password,
                "PROCESS_API_TOKEN": self.api_token,
                "WEBHOOK_LINKS_FILE": str(self.workdir / "webhook_links.json"),
                # notify
                "WEBHOOK_URL": self.receiver.url,
                "WEBHOOK_SIGNING_SECRET": self.signing_secret,
                "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
                "WEBHOOK_RETRY_MAX_DELAY_SECONDS": "2",
                "WEBHOOK_TIMEOUT_SECONDS": "5",
                "NOTIFY_SCHEDULER_INTERVAL_SECONDS": "0.2",
                # offload
                "R2_FETCH_ENABLED": "true" if self.worker else "false",
                "R2_FETCH_ENDPOINT": self.worker.url if self.worker else "",
                "R2_FETCH_TOKEN": self.r2_token,
                "R2_BUCKET_NAME": "render-signal-e2e",
                "R2_PUBLIC_BASE_URL": "https://files.r2.test",
                "R2_FETCH_TIMEOUT_SECONDS": "5",
                "R2_FETCH_TIMEOUT_DROPBOX_SCL_FO": "10",
                "R2_FETCH_RETRIES": "1",
                "R2_BREAKER_COOLDOWN_SECONDS": "2",
            }
        )
        if self.dovecot is not None:
            env.update(
                {
                    "IMAP_SERVER": "127.0.0.1",
                    "IMAP_PORT": str(self.dovecot.port),
                    "IMAP_USE_SSL": "false",
                    "EMAIL_ADDRESS": self.dovecot.user,
                    "EMAIL_PASSWORD": self.dovecot.password,
                    "IMAP_TIMEOUT_SECONDS": "5",
                    "IMAP_RECONNECT_BASE_SECONDS": "0.2",
                    "IMAP_RECONNECT_MAX_SECONDS": "1",
                    # A SIGKILLed watcher cannot release the singleton lock; its
                    # successor waits for the lease to expire (default 300 s).
                    "POLLER_LOCK_TTL_SECONDS": "3",
                }
            )
        env.update(self.extra_env)
        return {k: v for k, v in env.items() if v != ""}

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
        for service in self.services.values():
            with contextlib.suppress(Exception):
                service.stop(timeout_s=10)
        if "receiver" in self._started:
            self.receiver.stop()
        if self.worker is not None:
            with contextlib.suppress(Exception):
                self.worker.stop()
        if "files" in self._started:
            self.files.stop()
        if self.dovecot is not None:
            with contextlib.suppress(Exception):
                self.dovecot.close()
        with contextlib.suppress(Exception):
            self.redis.stop()
        self._started.clear()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inputs -------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def appender(self) -> ImapAppender:
        assert self.dovecot is not None, "pipeline started without IMAP"
        if self._appender is None:
            self._appender = ImapAppender(
                "127.0.0.1", self.dovecot.port, self.dovecot.user, self.dovecot.password
            )
        return self._appender

    @property
    def ingress(self) -> HttpIngress:
        if self._ingress is None:
            self._ingress = HttpIngress(self.gateway_url, self.api_token)
        return self._ingress

    # -- replicas -----------------------------------------------------------------------
    def replicas_of(self, service: str) -> list[ServiceProcess]:
        """Every process of ``service`` (alive or not), replica 0 first."""
        return [p for key, p in self.services.items() if self.layout[key][0] == service]

    def instance(self, key: str) -> str:
        """The instance name the process ``key`` runs (or will run) under."""
        return self.services[key].env["RENDER_SIGNAL_INSTANCE"]

    def rename(self, key: str) -> str:
        """A new instance name for the next start of ``key`` (as a new pod); returns it."""
        service, index = self.layout[key]
        self.renames += 1
        name = f"e2e-{service}-{index}-r{self.renames}"
        self.services[key].env["RENDER_SIGNAL_INSTANCE"] = name
        return name

    # -- faults -------------------------------------------------------------------------
    def restart_service(self, name: str, *, kill: bool) -> None:
        service = self.services[name]
        if kill:
            service.kill()
        else:
            service.stop()
        service.start()

    def restart_redis(self, *, kill: bool, down_s: float = 0.0) -> None:
        if kill:
            self.redis.kill()
        else:
            self.redis.stop()
        self.redis_restarts["kill" if kill else "term"] += 1
        if down_s:
            time.sleep(down_s)  # deliberate outage length
        self.redis.start()
        self._apply_fsync()

    def _apply_fsync(self) -> None:
        if self.redis_fsync == "everysec":
            return
        client = redis_sync.Redis.from_url(self.redis.url)
        try:
            client.config_set("appendfsync", self.redis_fsync)
        finally:
            client.close()

    def wait_all_ready(self, timeout_s: float = 60.0) -> None:
        for service in self.services.values():
            service.wait_ready(timeout_s)

    # -- state --------------------------------------------------------------------------
    @contextlib.contextmanager
    def dashboard(self) -> Iterator[httpx.Client]:
        """An httpx client logged in to the gateway, closed on leaving the block."""
        with httpx.Client(base_url=self.gateway_url, timeout=15) as client:
            yield login(client, "admin", self.dashboard_password)

    def sync_redis(self) -> redis_sync.Redis:
        return redis_sync.Redis.from_url(self.redis.url, socket_timeout=5)

    def put_config(self, name: str, data: dict[str, Any]) -> None:
        """Write a config-store document (what the gateway's config API does)."""

        async def put() -> None:
            client = create_redis(self.redis.url)
            try:
                await ConfigStore(client, Keys(self.key_prefix)).apply(BY_NAME[name], data)
            finally:
                await client.aclose()

        asyncio.run(put())

    def pending_and_dlq(self) -> dict[str, int]:
        """PEL size per consumer group and entries in every ``*.dlq`` stream."""
        client = self.sync_redis()
        try:
            counts: dict[str, int] = {}
            for stream in ("mail.raw", "mail.received", "mail.offloaded"):
                key = f"{self.key_prefix}{stream}"
                if client.exists(key):
                    for group in client.xinfo_groups(key):
                        counts[f"pending:{stream}"] = counts.get(f"pending:{stream}", 0) + int(
                            group["pending"]
                        )
                counts[f"dlq:{stream}"] = int(client.xlen(f"{key}.dlq"))
            return counts
        finally:
            client.close()

    def metric(self, key: str, sample: str) -> float:
        """Sum of the samples named ``sample`` on process ``key``'s /metrics."""
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://127.0.0.1:{self.ports[key]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == sample
        )

    def worker_objects(self) -> list[str]:
        import json
        import urllib.request

        assert self.worker is not None
        with urllib.request.urlopen(f"{self.worker.admin}/list", timeout=10) as response:
            return list(json.loads(response.read())["keys"])

    def gateway_ok(self) -> bool:
        return http_ok(f"{self.gateway_url}/health")
