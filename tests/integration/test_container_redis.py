"""testcontainers on this machine's engine: Redis in a container, the services on it.

Where a Docker engine answers, the session's Redis already comes from a
container (``render_signal.devstack.containers``, used by the ``redis_url``
fixture). On a machine with podman only, nothing answers until its Docker-API
socket runs: this test starts it (``deploy/compose/engine.py``, as ``make
compose-test`` does), takes the Redis image (the registry's, else the local one
built from Debian's packages and cached), starts Redis through testcontainers,
runs the four services against it and sends an email through to a webhook. The
container is gone afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from render_signal.devstack.containers import LABEL, redis_container
from render_signal.devstack.pytest_plugin import require_component

from deploy.compose.baseimages import ensure_base_images
from deploy.compose.engine import Engine, PodmanService, detect_engine

from .harness.mail import make_email
from .harness.pipeline import ExternalRedis, Pipeline, missing_components

ROOT = Path(__file__).resolve().parents[2]
MARKER = "E2E-c0a7a1e4-1"
FILTER = "label=" + ",".join(f"{k}={v}" for k, v in LABEL.items())


def labelled_containers(engine: Engine) -> list[dict[str, object]]:
    listed = engine.run("ps", "-a", "--filter", FILTER, "--format", "json", timeout=60).stdout
    return list(json.loads(listed or "[]"))


@pytest.mark.timeout(2400)  # a first run on this machine builds the Redis base image
def test_services_run_on_a_redis_that_testcontainers_started(tmp_path: Path) -> None:
    engine, why = detect_engine()
    require_component(engine is not None, why)
    assert engine is not None
    missing = missing_components(imap=False, worker=False)
    require_component(missing is None, missing or "")
    before = {c["Id"] for c in labelled_containers(engine)}
    with contextlib.ExitStack() as stack:
        docker_host = None
        if engine.kind == "podman":
            socket = PodmanService(engine, tmp_path / "podman.sock", tmp_path / "podman.log")
            stack.callback(socket.stop)
            socket.start()
            docker_host = socket.docker_host
        image = ensure_base_images(engine, ("redis",), say=print).images["redis"]
        url = stack.enter_context(redis_container(image, docker_host))
        running = [c for c in labelled_containers(engine) if c["Id"] not in before]
        assert len(running) == 1, running
        port = url.rsplit(":", 1)[1].split("/")[0]
        published = json.dumps(running[0].get("Ports"))
        assert port in published, (url, published)  # the URL is the container's port

        pipeline = stack.enter_context(
            Pipeline(tmp_path / "pipeline", imap=False, worker=False, redis=ExternalRedis(url))
        )
        pipeline.ingress.post(MARKER, make_email(MARKER))
        delivery = pipeline.receiver.wait_for_markers({MARKER}, timeout_s=60)[MARKER]
        assert delivery.accepted
        print(f"testcontainers: Redis {image} via {engine.kind} at {url}; webhook received")
    after = {c["Id"] for c in labelled_containers(engine)} - before
    assert not after, f"containers left behind: {after}"


@pytest.mark.timeout(600)
def test_the_session_redis_fixture_uses_a_container_when_an_engine_answers(
    tmp_path: Path,
) -> None:
    """The shared fixture, not only this file: a test run pointed at the engine
    (``DOCKER_HOST``, ``REDIS_IMAGE``) gets its session Redis from testcontainers."""
    engine, why = detect_engine()
    require_component(engine is not None, why)
    assert engine is not None
    before = {c["Id"] for c in labelled_containers(engine)}
    with contextlib.ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DOCKER_HOST")}
        if engine.kind == "podman":
            socket = PodmanService(engine, tmp_path / "podman.sock", tmp_path / "podman.log")
            stack.callback(socket.stop)
            socket.start()
            env["DOCKER_HOST"] = socket.docker_host
        env["REDIS_IMAGE"] = ensure_base_images(engine, ("redis",), say=print).images["redis"]
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
             "libs/common/tests/test_common_streams.py"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=500, check=False,
        )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "session Redis in a container at redis://" in output, output[-4000:]
    assert re.search(r"\d+ passed", output), output[-2000:]
    after = {c["Id"] for c in labelled_containers(engine)} - before
    assert not after, f"containers left behind: {after}"
