"""The container engine: a Docker engine that answers, else podman on its Docker-API socket.

podman 4.3 as Debian 12 ships it needs three things a Docker engine does not:

* ``CONTAINERS_CONF`` pointing at ``deploy/compose/containers.conf`` (lower ulimits,
  runc), given only to the podman processes started here, so the machine's own
  configuration and other users of podman are left alone;
* its Docker-API socket (``podman system service``) for docker-compose 1.29, on a
  private path, stopped by PID;
* a healthcheck runner: podman schedules HEALTHCHECKs with systemd timers, so when
  systemd is not PID 1 no container ever turns healthy and compose's
  ``depends_on: condition: service_healthy`` waits forever. :class:`HealthcheckRunner`
  runs them through the socket instead (the libpod ``/healthcheck`` endpoint).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from render_signal.devstack.childprocess import die_with_parent

__all__ = [
    "COMPOSE_PROJECT_LABEL",
    "CONTAINERS_CONF",
    "Engine",
    "HealthcheckRunner",
    "PodmanService",
    "detect_engine",
    "project_leftovers",
    "run_to_completion",
]

logger = logging.getLogger(__name__)

CONTAINERS_CONF = Path(__file__).resolve().with_name("containers.conf")
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
LIBPOD_API = "/v4.0.0/libpod"


@dataclass(frozen=True)
class Engine:
    """A container engine CLI (``docker`` or ``podman``) and the environment it runs with."""

    kind: Literal["docker", "podman"]
    cli: str
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI with a deadline; raise with its stderr when ``check`` and it fails."""
        result = subprocess.run(  # noqa: S603 - argument list, no shell
            [self.cli, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{self.kind} {' '.join(args[:3])} failed ({result.returncode}):"
                f" {result.stderr.strip()[-2000:]}"
            )
        return result

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False, timeout=60).returncode == 0

    def pull(self, ref: str, timeout: float = 180) -> bool:
        """Try to pull ``ref``; False (fast, when no registry answers) instead of raising."""
        try:
            pulled = self.run("pull", "-q", qualified(ref), check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return pulled.returncode == 0

    def build(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``build`` keeping HEALTHCHECK and SHELL (podman drops them from OCI images).

        Never interrupted halfway (see :func:`run_to_completion`): a podman 4.3 build
        stopped by a signal leaves its buildah containers behind, sometimes a broken image.
        """
        fmt = ("--format", "docker") if self.kind == "podman" else ()
        result = run_to_completion([self.cli, "build", *fmt, *args], self.env, timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{self.kind} build failed: {result.stderr.strip()[-3000:]}")
        return result


def run_to_completion(
    argv: list[str], env: dict[str, str] | None, timeout: float, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command that must not be stopped halfway (an image build, mmdebstrap).

    It runs in its own session, so a Ctrl-C in the terminal doesn't reach it, and
    when this process is interrupted (SystemExit from a signal handler) it is left
    to finish within its deadline before the interruption goes on.
    """
    pipe = subprocess.PIPE if capture else None
    with subprocess.Popen(  # noqa: S603 - argument list, no shell
        argv, env=env, stdout=pipe, stderr=pipe, text=True, start_new_session=True
    ) as process:
        deadline = time.monotonic() + timeout
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        except BaseException:
            logger.warning("interrupted: letting %s finish first", " ".join(argv[:2]))
            try:
                process.communicate(timeout=max(deadline - time.monotonic(), 1.0))
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def qualified(ref: str) -> str:
    """``redis:7`` -> ``docker.io/library/redis:7``, as Docker resolves short names.

    podman's CLI refuses short names when no unqualified-search registry is configured.
    """
    first = ref.split("/", 1)[0]
    if "/" in ref and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if "/" in ref else f"docker.io/library/{ref}"


def podman_env() -> dict[str, str]:
    """The caller's environment plus this directory's ``containers.conf``."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def detect_engine() -> tuple[Engine | None, str]:
    """A Docker engine that answers, else a working podman; or None and why not."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(  # noqa: S603
            [docker, "info"], capture_output=True, text=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return Engine("docker", docker, dict(os.environ)), ""
    podman = shutil.which("podman")
    if podman is None:
        return None, "no container engine: no Docker daemon answers and podman is not installed"
    env = podman_env()
    probe = subprocess.run(  # noqa: S603
        [podman, "info"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        return None, f"podman info failed: {probe.stderr.strip()[-500:]}"
    return Engine("podman", podman, env), ""


def project_leftovers(engine: Engine, project: str) -> list[str]:
    """Containers, volumes and networks still labelled with the compose project."""
    label = f"label={COMPOSE_PROJECT_LABEL}={project}"
    found: list[str] = []
    for kind, args in (
        ("container", ("ps", "-a", "--filter", label, "--format", "{{.Names}}")),
        ("volume", ("volume", "ls", "--filter", label, "--format", "{{.Name}}")),
        ("network", ("network", "ls", "--filter", label, "--format", "{{.Name}}")),
    ):
        listed = engine.run(*args, timeout=60).stdout.split()
        found += [f"{kind} {name}" for name in listed]
    return found


# ----------------------------------------------------------------- socket ----
class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class PodmanService:
    """``podman system service`` on a private unix socket, for docker-compose.

    Args:
        engine: the podman engine (its environment carries ``CONTAINERS_CONF``).
        socket_path: where the socket goes (a private directory of this run).
        log_path: the service's own output.
    """

    def __init__(self, engine: Engine, socket_path: Path, log_path: Path) -> None:
        self.engine = engine
        self.socket_path = socket_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 30) -> None:
        # Builds started through the API (docker-compose build) are OCI by default,
        # which drops HEALTHCHECK and SHELL: BUILDAH_FORMAT=docker keeps them.
        env = {**self.engine.env, "BUILDAH_FORMAT": "docker"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [self.engine.cli, "system", "service", "--time=0", self.docker_host],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # one prctl() call, no lock taken
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"podman system service exited: {self.log_tail()}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/_ping", timeout=2)[0] == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"podman socket not answering after {timeout:.0f} s: {self.log_tail()}")

    def request(self, method: str, path: str, timeout: float = 30) -> tuple[int, Any]:
        """One API call; returns the status and the decoded JSON body (or None)."""
        connection = _UnixHTTPConnection(str(self.socket_path), timeout)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(body) if body else None
        except ValueError:
            return response.status, body.decode(errors="replace")

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; removes the socket file."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.socket_path.unlink(missing_ok=True)


class HealthcheckRunner(threading.Thread):
    """Runs the HEALTHCHECK of every running container of a compose project.

    What a Docker engine does by itself: a container still starting (or
    unhealthy) is checked every ``fast_s`` so compose's ``service_healthy``
    conditions are met quickly; a healthy one at its own configured interval.

    Args:
        service: the podman API socket.
        project: the compose project name (containers carry it as a label).
        fast_s: period for containers not (yet) healthy.
    """

    def __init__(self, service: PodmanService, project: str, fast_s: float = 2.0) -> None:
        super().__init__(name=f"healthchecks-{project}", daemon=True)
        self.service = service
        self.project = project
        self.fast_s = fast_s
        self._stop_event = threading.Event()
        self._due: dict[str, float] = {}
        self._interval: dict[str, float] = {}

    def stop(self, timeout: float = 10) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._round()
            except (OSError, http.client.HTTPException) as exc:  # socket going away at stop
                logger.debug("healthcheck round failed: %s", exc)
            self._stop_event.wait(0.5)

    def _round(self) -> None:
        filters = json.dumps({"label": [f"{COMPOSE_PROJECT_LABEL}={self.project}"]})
        status, listed = self.service.request(
            "GET", f"{LIBPOD_API}/containers/json?filters={urllib.parse.quote(filters)}"
        )
        if status != 200 or not isinstance(listed, list):
            return
        now = time.monotonic()
        for container in listed:
            cid = str(container["Id"])
            # A restarted container starts over (its health is "starting" again).
            life = f"{cid}@{container.get('StartedAt')}"
            if self._stop_event.is_set() or now < self._due.get(life, 0.0):
                continue
            if cid not in self._interval:
                self._interval[cid] = self._configured_interval(cid)
            if self._interval[cid] <= 0:  # no healthcheck
                self._due[life] = float("inf")
                continue
            _, result = self.service.request(
                "GET", f"{LIBPOD_API}/containers/{cid}/healthcheck", timeout=60
            )
            healthy = isinstance(result, dict) and result.get("Status") == "healthy"
            self._due[life] = time.monotonic() + (self._interval[cid] if healthy else self.fast_s)

    def _configured_interval(self, cid: str) -> float:
        status, inspected = self.service.request("GET", f"/containers/{cid}/json")
        if status != 200 or not isinstance(inspected, dict):
            return self.fast_s
        check = (inspected.get("Config") or {}).get("Healthcheck") or {}
        if not check.get("Test") or check["Test"][0] == "NONE":
            return 0.0
        return float(check.get("Interval") or 30e9) / 1e9
