"""``make compose-test``: the compose stack built, run and used for real, then torn down.

1. Engine: a Docker engine that answers, else podman with its Docker-API socket
   and a healthcheck runner (``engine``). None: skip locally, fail under CI=true.
2. Base images: upstream when present or pullable, else built locally and cached
   (``baseimages``).
3. The four service images as the compose file's ``build:`` sections say (tagged
   for this run only), then ``up -d``: Redis (AOF), ingest, offload, notify,
   gateway, Prometheus, in production mode with random secrets, on free ports,
   under a unique project name, with an ``--env-file`` of this run (a developer's
   ``./.env`` is never read, nor the caller's environment).
4. From the host: an email to the gateway's HTTP ingress; its webhook arrives on
   an HTTPS receiver on the host (``receiver``), with a valid Standard Webhooks
   signature; the compose Prometheus sees all four service targets up; notify's
   container is restarted and a second email is delivered too.
4b. Scale-out (``scaleout``): ``--scale offload=2 --scale notify=2``, emails in
   flight, the notify replica holding a lease SIGKILLed and removed (and an
   offload replica): every email arrives once per webhook-id, the dead replica's
   work taken over within 15 s, replacements come up under new names.
5. Teardown, also on failure or SIGTERM/SIGINT: ``down -v``, this run's images,
   the healthcheck runner, the podman socket service, the work directory; then
   a check that nothing labelled with the project is left.

The last line says what was measured.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import yaml
from render_signal.devstack.ports import free_port
from standardwebhooks.webhooks import Webhook

from deploy.compose.baseimages import ROOT, BaseImages, MissingTool, ensure_base_images
from deploy.compose.engine import (
    COMPOSE_PROJECT_LABEL,
    Engine,
    HealthcheckRunner,
    PodmanService,
    detect_engine,
    project_leftovers,
)
from deploy.compose.receiver import HOST_ALIAS, Receiver, ThrowawayCA
from deploy.compose.scaleout import ScaleOut, ScaleResult, healthy_counts

HERE = Path(__file__).resolve().parent
SERVICES = ("ingest", "offload", "notify", "gateway")
CONTAINERS = ("redis", *SERVICES, "prometheus")
RESTARTED = "notify"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
T = TypeVar("T")


def say(text: str) -> None:
    print(f"compose-test: {text}", flush=True)


class Skip(Exception):
    """Something the test needs is missing on this machine."""


def wait_for(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll ``check`` until it returns a value other than None; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


@dataclass
class Compose:
    """The compose CLI bound to this run's project, files and environment."""

    argv: list[str]
    project: str
    files: list[Path]
    env_file: Path
    env: dict[str, str]
    log: Path

    def run(self, *args: str, timeout: float, check: bool = True) -> str:
        command = [
            *self.argv,
            "--project-name",
            self.project,
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(self.env_file),
        ]
        for path in self.files:
            command += ["-f", str(path)]
        with self.log.open("a") as log:
            log.write(f"\n$ {' '.join(args)}\n")
            log.flush()
            result = subprocess.run(  # noqa: S603
                [*command, *args],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
            log.write(result.stdout)
        if check and result.returncode != 0:
            raise RuntimeError(f"compose {args[0]} failed:\n{result.stdout[-3000:]}")
        return result.stdout


@dataclass
class Measured:
    build_s: float = 0.0
    healthy_s: float = 0.0
    delivered_s: float = 0.0
    restart_s: float = 0.0
    redelivered_s: float = 0.0
    scale: ScaleResult | None = None
    prometheus_s: float = 0.0
    stopped_without_redis_s: float = 0.0
    down_s: float = 0.0
    started: float = field(default_factory=time.monotonic)


class ComposeTest:
    """One run; :meth:`run` returns the summary line, the teardown always happens."""

    def __init__(
        self,
        engine: Engine,
        compose_argv: list[str],
        project: str,
        workdir: Path,
        rebuild_base: bool,
    ) -> None:
        self.engine = engine
        self.compose_argv = compose_argv
        self.project = project
        self.workdir = workdir
        self.rebuild_base = rebuild_base
        self.measured = Measured()
        self.tag = f"ctest-{secrets.token_hex(4)}"
        self.token = secrets.token_urlsafe(24)
        self.signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.service: PodmanService | None = None
        self.images: list[str] = []  # the service images of this run (tagged IMAGE_TAG)

    # ------------------------------------------------------------------ run ----
    def run(self) -> str:
        with contextlib.ExitStack() as teardown:
            teardown.callback(shutil.rmtree, self.workdir, ignore_errors=True)
            compose_env = self._engine_env(teardown)
            base = ensure_base_images(self.engine, say=say, rebuild=self.rebuild_base)
            ports = {"gateway": free_port(), "prometheus": free_port(), "receiver": free_any_port()}
            ca = ThrowawayCA(self.workdir).create()
            compose = self._compose(compose_env, base, ports, ca)
            teardown.callback(self._remove_images)

            started = time.monotonic()
            say(f"building the service images ({', '.join(SERVICES)}) ...")
            self._build(compose)
            self.measured.build_s = time.monotonic() - started

            # Exit callbacks run last-in first-out: down, then the leftovers check.
            teardown.callback(self._check_nothing_left)
            teardown.push(lambda kind, exc, tb: self._down(compose, failed=is_failure(kind)))
            if self.service is not None:
                runner = HealthcheckRunner(self.service, self.project)
                runner.start()
                teardown.callback(runner.stop)
            up = time.monotonic()
            compose.run("up", "-d", "--no-build", timeout=600)
            self._wait_healthy(CONTAINERS, timeout=240)
            self.measured.healthy_s = time.monotonic() - up
            say(f"{len(CONTAINERS)} containers healthy {self.measured.healthy_s:.1f} s after up")

            receiver = Receiver(self._host_address(), ports["receiver"], ca).start()
            teardown.callback(receiver.stop)
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            self.measured.delivered_s = self._deliver(gateway, receiver)
            say(f"email delivered through the containers in {self.measured.delivered_s:.2f} s")

            self.measured.prometheus_s = self._prometheus_targets_up(
                f"http://127.0.0.1:{ports['prometheus']}", up
            )
            up_s = self.measured.prometheus_s
            say(f"Prometheus sees the 4 service targets up, {up_s:.1f} s after up")

            restarted = time.monotonic()
            compose.run("restart", RESTARTED, timeout=120)
            self._wait_healthy((RESTARTED,), timeout=120)
            self.measured.restart_s = time.monotonic() - restarted
            self.measured.redelivered_s = self._deliver(gateway, receiver)
            say(
                f"{RESTARTED} restarted ({self.measured.restart_s:.1f} s to healthy); "
                f"next email delivered in {self.measured.redelivered_s:.2f} s"
            )
            scale = ScaleOut(
                self.engine,
                compose,
                self.project,
                lambda marker: self._post(gateway, marker),
                receiver,
                lambda wanted: self._wait_counts(wanted, timeout=240),
                say,
            )
            self.measured.scale = scale.run()
            say(self.measured.scale.summary())
            self.measured.stopped_without_redis_s = self._stop_without_redis(compose)
            say(
                "with Redis stopped first, the services stopped"
                f" {self.measured.stopped_without_redis_s:.1f} s after SIGTERM"
            )
        m = self.measured
        assert m.scale is not None
        return (
            f"{len(CONTAINERS)} containers healthy in {m.healthy_s:.1f} s; email delivered"
            f" through the containers in {m.delivered_s:.2f} s, {m.redelivered_s:.2f} s after"
            f" restarting {RESTARTED}; Prometheus 4/4 targets up at {m.prometheus_s:.1f} s;"
            f" {m.scale.summary()};"
            f" services stopped {m.stopped_without_redis_s:.1f} s after SIGTERM with Redis"
            f" already gone, none SIGKILLed;"
            f" images built in {m.build_s:.1f} s; down in {m.down_s:.1f} s;"
            f" total {time.monotonic() - m.started:.0f} s ({self.engine.kind})"
        )

    # ---------------------------------------------------------------- setup ----
    def _engine_env(self, teardown: contextlib.ExitStack) -> dict[str, str]:
        """The compose CLI's environment: minimal, so the caller's variables don't leak in."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        if self.engine.kind == "docker":
            env.update({k: v for k, v in os.environ.items() if k.startswith("DOCKER_")})
            # docker-compose 1.29 builds with the classic builder unless told to use the
            # CLI; deploy/Dockerfile's RUN --mount needs BuildKit.
            env.update(COMPOSE_DOCKER_CLI_BUILD="1", DOCKER_BUILDKIT="1")
            return env
        self.service = PodmanService(
            self.engine, self.workdir / "podman.sock", self.workdir / "podman-service.log"
        )
        teardown.callback(self.service.stop)
        self.service.start()
        env["DOCKER_HOST"] = self.service.docker_host
        return env

    def _compose(
        self, env: dict[str, str], base: BaseImages, ports: dict[str, int], ca: ThrowawayCA
    ) -> Compose:
        variables = {
            **base.compose_env(),
            "IMAGE_TAG": self.tag,
            "RENDER_SIGNAL_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "DASHBOARD_PASSWORD": secrets.token_urlsafe(18),
            "PROCESS_API_TOKEN": self.token,
            "WEBHOOK_URL": f"https://{HOST_ALIAS}:{ports['receiver']}/hooks/{secrets.token_hex(8)}",
            "WEBHOOK_SIGNING_SECRET": self.signing_secret,
            "WEBHOOK_CA_BUNDLE": str(ca.ca_cert),
            # The receiver runs on the host, reached through the bridge's gateway
            # address: private, so it must be allowed explicitly (podman 10.89.x,
            # docker 172.17+; the subnet is only known once compose made it).
            "OUTBOUND_ALLOW_NETWORKS": "10.0.0.0/8,172.16.0.0/12",
            "GATEWAY_PORT": str(ports["gateway"]),
            "PROMETHEUS_PORT": str(ports["prometheus"]),
        }
        env_file = self.workdir / "compose.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
        files = [ROOT / "docker-compose.yml", HERE / "webhook-ca.override.yml"]
        if self.engine.kind == "docker":
            files.append(HERE / "docker-host-gateway.override.yml")
        return Compose(
            self.compose_argv, self.project, files, env_file, env, self.workdir / "compose.log"
        )

    def _build(self, compose: Compose) -> None:
        """The service images, as the compose file's ``build:`` sections say.

        podman: each image with ``podman build --format docker``, from the context,
        Dockerfile, args and image name of ``compose config`` (builds through podman
        4.3's Docker API leave a buildah working container of the ``uv`` stage behind,
        mounted, after every build; its own CLI does not).
        """
        config = yaml.safe_load(compose.run("config", timeout=60))
        self.images = [config["services"][name]["image"] for name in SERVICES]
        if self.engine.kind == "docker":
            compose.run("build", timeout=1800)
            return
        for name in SERVICES:
            service = config["services"][name]
            build = service["build"]
            context = Path(build["context"])
            args = [f"--build-arg={k}={v}" for k, v in (build.get("args") or {}).items()]
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            self.engine.build(
                "-f", str(dockerfile), *args, "-t", service["image"], str(context), timeout=1800
            )

    # ------------------------------------------------------------- checking ----
    def _health(self) -> dict[str, list[str]]:
        """Compose service -> health of each of its containers (state when not running)."""
        label = f"label={COMPOSE_PROJECT_LABEL}={self.project}"
        ids = self.engine.run("ps", "-a", "-q", "--filter", label, timeout=60).stdout.split()
        if not ids:
            return {}
        inspected = self.engine.run("inspect", *ids, timeout=60, check=False).stdout
        states: dict[str, list[str]] = {}
        for container in json.loads(inspected or "[]"):
            name = container["Config"]["Labels"].get("com.docker.compose.service", "?")
            state = container["State"]
            health = (state.get("Health") or {}).get("Status") or "none"
            running = state.get("Status") == "running"
            states.setdefault(name, []).append(health if running else str(state.get("Status")))
        return states

    def _wait_healthy(self, names: tuple[str, ...], timeout: float) -> None:
        self._wait_counts({name: 1 for name in names}, timeout, at_least=True)

    def _wait_counts(self, wanted: dict[str, int], timeout: float, at_least: bool = False) -> None:
        """Until each service has ``wanted`` containers (or more), all healthy."""
        last: dict[str, list[str]] = {}

        def all_healthy() -> bool | None:
            last.clear()
            last.update(self._health())
            counts = {n: max(c, len(last.get(n, []))) for n, c in wanted.items()}
            return True if healthy_counts(last, counts if at_least else wanted) else None

        try:
            wait_for(all_healthy, timeout, "containers healthy", every=0.5)
        except TimeoutError:
            raise TimeoutError(f"containers not healthy within {timeout:.0f} s: {last}") from None

    def _host_address(self) -> str:
        """Where the host answers the containers' ``host.containers.internal``."""
        if self.engine.kind == "podman":
            # podman maps the name to the gateway of the container's bridge network.
            network = f"{self.project}_default"
            fmt = "{{range .Subnets}}{{.Gateway}} {{end}}"
        else:  # docker: host-gateway is the default bridge's gateway
            network, fmt = "bridge", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"
        out = self.engine.run("network", "inspect", network, "--format", fmt, timeout=60)
        gateways = [g for g in out.stdout.split() if "." in g]
        if not gateways:
            raise RuntimeError(f"no IPv4 gateway on network {network}: {out.stdout!r}")
        return gateways[0]

    def _post(self, gateway: str, marker: str) -> float:
        """Post one email (``marker`` in its subject) to the ingress; returns when
        (``time.monotonic()``) the hand-over started."""
        request = urllib.request.Request(  # noqa: S310 - the gateway on loopback
            f"{gateway}/api/ingress/raw",
            data=sample_email(marker),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "message/rfc822"},
        )
        sent = time.monotonic()
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            if response.status != 202:
                raise RuntimeError(f"ingress answered {response.status}")
        return sent

    def _deliver(self, gateway: str, receiver: Receiver) -> float:
        """Post one email to the ingress; return seconds until its signed webhook arrived."""
        marker = f"CT-{secrets.token_hex(4)}"
        sent = self._post(gateway, marker)
        while True:
            remaining = 60 - (time.monotonic() - sent)
            got = receiver.wait(timeout=max(remaining, 0.1))
            Webhook(self.signing_secret).verify(got.body, got.headers)  # raises when wrong
            payload = json.loads(got.body)
            if marker in str(payload.get("subject", "")):
                if not got.path.startswith("/hooks/"):
                    raise RuntimeError(f"webhook posted to {got.path}")
                return got.at - sent

    def _prometheus_targets_up(self, base: str, since: float) -> float:
        query = urllib.parse.quote("up")

        def all_up() -> float | None:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/query?query={query}", timeout=5) as r:  # noqa: S310
                    result = json.load(r)["data"]["result"]
            except (OSError, ValueError):
                return None
            up = {s["metric"].get("job"): s["value"][1] for s in result}
            return time.monotonic() - since if all(up.get(n) == "1" for n in SERVICES) else None

        return wait_for(all_up, 120, "Prometheus: every service target up", every=1.0)

    def _stop_without_redis(self, compose: Compose) -> float:
        """Stop Redis, then the services: each exits cleanly on SIGTERM (a deploy
        during a Redis outage must not wait for the engine's SIGKILL)."""
        compose.run("stop", "-t", "30", "redis", timeout=120)
        started = time.monotonic()
        compose.run("stop", "-t", "30", *SERVICES, timeout=240)
        took = time.monotonic() - started
        label = f"label={COMPOSE_PROJECT_LABEL}={self.project}"
        ids = self.engine.run("ps", "-a", "-q", "--filter", label, timeout=60).stdout.split()
        states = self.engine.run(
            "inspect", "--format", "{{.Name}} {{.State.ExitCode}}", *ids, timeout=60
        ).stdout.split("\n")
        # uvicorn (the gateway) re-raises the SIGTERM it handled: 143 is its clean stop.
        unclean = [
            line
            for line in states
            if line.strip()
            and any(f"_{name}_" in line or f"-{name}-" in line for name in SERVICES)
            and line.split()[-1] not in ("0", "143" if "gateway" in line else "0")
        ]
        if unclean:
            raise AssertionError(f"services did not exit cleanly without Redis: {unclean}")
        # A clean exit code says no container needed the engine's SIGKILL after its
        # grace period. The wall time includes the engine's own work (sequential stop
        # groups, DNS timeouts of podman's resolver once Redis is gone): printed only;
        # the per-process bound is tests/integration/test_redis_gone.py.
        return took

    # ------------------------------------------------------------- teardown ----
    def _down(self, compose: Compose, failed: bool) -> None:
        if failed:
            with contextlib.suppress(Exception):
                print(compose.run("logs", "--no-color", "--tail", "40", timeout=60, check=False))
        started = time.monotonic()
        compose.run("down", "--volumes", "--remove-orphans", timeout=300)
        self.measured.down_s = time.monotonic() - started

    def _remove_images(self) -> None:
        """Drop this run's image tags.

        podman: untag only, so the images stay as build cache (removing them also
        removes the cached layers of their last build stage).
        """
        for ref in self.images:
            if self.engine.image_exists(ref):
                verb = ("untag", ref, ref) if self.engine.kind == "podman" else ("rmi", ref)
                self.engine.run(*verb, timeout=120, check=False)

    def _check_nothing_left(self) -> None:
        left = project_leftovers(self.engine, self.project)
        if left:
            raise RuntimeError(f"left behind after down: {', '.join(left)}")


def is_failure(kind: type[BaseException] | None) -> bool:
    """An error worth the containers' logs (not success, not a signal)."""
    return kind is not None and not issubclass(kind, SystemExit)


def free_any_port() -> int:
    """A TCP port free on every address (the receiver binds it later on the bridge)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104 - only probing, closed at once
        return int(sock.getsockname()[1])


def sample_email(marker: str) -> bytes:
    """The bundled sample email with ``marker`` in its subject and a fresh Message-ID."""
    sample = resources.files("render_signal.devstack").joinpath("samples/sample.eml").read_bytes()
    head, sep, body = sample.replace(b"{MARKER}", marker.encode()).partition(b"\n\n")
    replaced = (b"message-id:", b"date:")
    lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(replaced)]
    lines.append(f"Message-ID: {email.utils.make_msgid(domain='compose-test.local')}".encode())
    lines.append(f"Date: {email.utils.formatdate()}".encode())
    return b"\n".join(lines) + sep + body


def compose_cli(engine: Engine) -> list[str]:
    """``docker compose`` (v2) on a Docker engine when present, else docker-compose 1.29."""
    if engine.kind == "docker":
        probe = engine.run("compose", "version", check=False, timeout=30)
        if probe.returncode == 0:
            return [engine.cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        raise Skip("docker-compose not installed (apt-get install docker-compose)")
    return [legacy]


@contextlib.contextmanager
def terminate_on_signals() -> Iterator[None]:
    """SIGTERM/SIGINT/SIGHUP unwind the stack (so teardown runs) once; later ones are ignored."""

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--project",
        default=f"rs-ctest-{secrets.token_hex(3)}",
        help="compose project name (default: rs-ctest-<random>)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="private directory of this run, removed at the end (default: temp)",
    )
    parser.add_argument(
        "--rebuild-base",
        action="store_true",
        help="build the local base images again, ignoring the caches",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", args.project):
        parser.error(
            "--project: lowercase letters, digits, '-' and '_' (compose normalises others)"
        )

    started = time.monotonic()
    with terminate_on_signals():
        try:
            engine, reason = detect_engine()
            if engine is None:
                raise Skip(reason)
            argv_compose = compose_cli(engine)
            if shutil.which("openssl") is None:
                raise Skip("openssl not installed (apt-get install openssl)")
            workdir = args.work_dir or Path(tempfile.mkdtemp(prefix=f"{args.project}-"))
            workdir.mkdir(parents=True, exist_ok=True)
            workdir.chmod(0o700)  # secrets, the CA key, the socket
            say(f"project {args.project} on {engine.kind}, work dir {workdir}")
            run = ComposeTest(engine, argv_compose, args.project, workdir, args.rebuild_base)
            summary = run.run()
        except (Skip, MissingTool) as exc:
            if IN_CI:
                say(f"FAILED (CI=true, a missing engine or tool is a failure): {exc}")
                return 1
            say(f"SKIPPED: {exc}")
            return 0
        except Exception as exc:
            say(f"FAILED after {time.monotonic() - started:.0f} s: {type(exc).__name__}: {exc}")
            return 1
        except SystemExit as exc:  # a signal (terminate_on_signals), after the teardown
            say(f"INTERRUPTED after {time.monotonic() - started:.0f} s; everything torn down")
            return int(exc.code or 1)
    say(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
