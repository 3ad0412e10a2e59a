"""Redis in a container for the tests, through testcontainers, on Docker or podman.

Used by the session ``redis_url`` fixture when a container engine answers
(``DOCKER_HOST``, or Docker's default socket) and by the container test, which
starts podman's Docker-API socket itself. ``REDIS_IMAGE`` names the image, as in
``docker-compose.yml`` (default ``redis:7-alpine``; on a machine without a
registry, the local image ``make compose-test`` builds).

testcontainers' reaper (Ryuk) is off: on podman its container needs the engine
socket mounted privileged, which rootful podman without systemd refuses. The
context manager removes the container itself, also when the test fails; a
SIGKILLed pytest can leave one behind, labelled ``render-signal.test=redis``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_REDIS_IMAGE", "LABEL", "engine_answers", "redis_container"]

DEFAULT_REDIS_IMAGE = "redis:7-alpine"
LABEL = {"render-signal.test": "redis"}


def engine_answers(docker_host: str | None = None) -> bool:
    """True when a Docker-API engine answers a ping within two seconds."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return False
    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, timeout=2)
        else:
            client = docker.from_env(timeout=2)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()


@contextmanager
def redis_container(image: str | None = None, docker_host: str | None = None) -> Iterator[str]:
    """Start Redis in a container; yield its ``redis://`` URL; remove it on exit."""
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    testcontainers_config.ryuk_disabled = True
    if (docker_host or os.environ.get("DOCKER_HOST", "unix://")).startswith("unix://"):
        # A local engine publishes ports on this host. testcontainers would guess
        # otherwise from a /.dockerenv (present on some CI VMs) and then ask for a
        # gateway address that podman's container list does not carry.
        testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    client_kw = {"environment": {"DOCKER_HOST": docker_host}} if docker_host else {}
    container = RedisContainer(
        image or os.environ.get("REDIS_IMAGE") or DEFAULT_REDIS_IMAGE,
        docker_client_kw=client_kw,
    ).with_kwargs(labels=LABEL)
    try:
        container.start()
    except BaseException:
        # start() raises after creating the container when its readiness check
        # fails: remove it here, or it outlives the test.
        with contextlib.suppress(Exception):
            container.stop()
        raise
    try:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(6379)
        yield f"redis://{host}:{port}/0"
    finally:
        container.stop()
