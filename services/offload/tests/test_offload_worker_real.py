"""Against the REAL Worker in workerd (serve.mjs) (acceptance 1, plus a redirect SSRF check).

A local file server stands in for the providers (the Worker's outbound maps
provider hosts to ``PROVIDER_ORIGIN``); the object is read back through the
admin port and compared byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from offload_harness import mail, make_settings, offload_env, running_service, send, wait_offloaded
from redis.asyncio import Redis
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.receiver import Receiver, Recorded, Reply, download
from render_signal.offload.normalise import normalise
from render_signal.offload.objectkey import object_key

REPO = Path(__file__).resolve().parents[3]
WORKER_DIR = REPO / "deploy" / "r2-worker"
SERVE = WORKER_DIR / "scripts" / "serve.mjs"
TOKEN = "real-worker-token-4242"
PUBLIC = "https://files.r2.test"


class FileServer(Receiver):
    """Provider stand-in: path -> (bytes, filename) or a redirect; records every request."""

    def __init__(self) -> None:
        super().__init__(self._file)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.redirects: dict[str, str] = {}

    def _file(self, request: Recorded) -> Reply:
        path = unquote(urlsplit(request.path).path)
        if path in self.redirects:
            return Reply(302, headers={"Location": self.redirects[path]})
        if path not in self.files:
            return Reply(404)
        return download(*self.files[path])

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]


@dataclass
class RealWorker:
    url: str
    admin: str
    files: FileServer
    secret: FileServer


@pytest.fixture(scope="module")
def real_worker() -> Iterator[RealWorker]:
    node = shutil.which("node")
    require_component(
        node is not None and SERVE.is_file() and (WORKER_DIR / "node_modules").is_dir(),
        "needs node, deploy/r2-worker/scripts/serve.mjs and its node_modules (npm ci)",
    )
    assert node is not None
    files, secret = FileServer().start(), FileServer().start()
    env = {
        **os.environ,
        "PORT": "0",
        "ADMIN_PORT": "0",
        "R2_FETCH_TOKEN": TOKEN,
        "R2_PUBLIC_BASE_URL": PUBLIC,
        "PROVIDER_ORIGIN": files.base_url,
    }
    proc = subprocess.Popen(
        [node, str(SERVE)],
        cwd=WORKER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while "READY" not in lines:
            assert time.monotonic() < deadline, "serve.mjs never printed READY"
            line = proc.stdout.readline()
            assert line, f"serve.mjs exited with {proc.wait()}"
            word, _, address = line.strip().partition(" ")
            lines[word] = address
        yield RealWorker(lines["READY"], lines["ADMIN"], files, secret)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        files.stop()
        secret.stop()


def admin_get(worker: RealWorker, key: str) -> tuple[bytes, dict[str, Any]]:
    with urllib.request.urlopen(f"{worker.admin}/object/{quote(key, safe='')}", timeout=10) as r:
        return r.read(), json.loads(r.headers["x-custom-metadata"])


async def test_real_worker_offloads_byte_identical_with_filename(
    real_worker: RealWorker, redis: Redis, redis_url: str, key_prefix: str
) -> None:
    blobs = {
        "/s/abc123/Rapport final été 2026.zip": os.urandom(300_000),
        "/Zx9Smash": os.urandom(50_000) + b"\x00\xff" * 10,
    }
    names = {"/s/abc123/Rapport final été 2026.zip": "Rapport final été 2026.zip"}
    names["/Zx9Smash"] = "Photos Île-de-France (1).zip"
    for path, data in blobs.items():
        real_worker.files.files[path] = (data, names[path])
    links = [
        (
            "dropbox",
            "https://www.dropbox.com/s/abc123/Rapport%20final%20%C3%A9t%C3%A9%202026.zip?dl=0",
        ),
        ("fromsmash", "https://fromsmash.com/Zx9Smash"),
    ]
    env = offload_env(redis_url, key_prefix, real_worker.url, R2_FETCH_TOKEN=TOKEN)
    async with running_service(redis, make_settings(env)):
        await send(redis, key_prefix, mail("real1", *links))
        [(_, out)] = await wait_offloaded(redis, key_prefix, 1, timeout_s=60)
    assert out.offload_enabled is True
    for link, (provider, raw), path in zip(out.links, links, blobs, strict=True):
        source = normalise(provider, raw)
        key = object_key(provider, source)
        assert link.direct_url == source
        assert link.r2_url is not None
        assert unquote(link.r2_url) == f"{PUBLIC}/{key}"
        assert link.original_filename == names[path]
        stored, meta = admin_get(real_worker, key)
        assert stored == blobs[path]  # byte-identical
        assert meta.get("sourceUrl") == source


async def test_real_worker_refuses_redirect_to_loopback(
    real_worker: RealWorker, redis: Redis, redis_url: str, key_prefix: str
) -> None:
    real_worker.secret.files["/secret"] = (b"top secret", "secret.txt")
    real_worker.files.redirects["/s/redir/evil.zip"] = (
        f"http://127.0.0.1:{real_worker.secret.port}/secret"
    )
    raw = "https://www.dropbox.com/s/redir/evil.zip?dl=0"
    env = offload_env(redis_url, key_prefix, real_worker.url, R2_FETCH_TOKEN=TOKEN)
    async with running_service(redis, make_settings(env)) as service:
        await send(redis, key_prefix, mail("redir", ("dropbox", raw)))
        [(_, out)] = await wait_offloaded(redis, key_prefix, 1, timeout_s=60)
        assert service.details().breaker == "closed"  # a refusal is not a Worker fault
    assert any(p.startswith("/s/redir/evil.zip") for p in real_worker.files.paths())
    assert out.links[0].r2_url is None
    assert out.links[0].direct_url == normalise("dropbox", raw)
    assert real_worker.secret.paths() == []
