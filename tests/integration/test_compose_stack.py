"""``make compose-test`` for real: the driver runs the compose stack, then nothing is left.

The driver (``deploy/compose/compose_test.py``) builds the images, starts Redis,
the four services and Prometheus with compose on a Docker engine or podman, mails
through them to an HTTPS receiver on the host, restarts notify, scales offload and
notify to two replicas each and SIGKILLs one of each while mail is in flight
(``deploy/compose/scaleout.py``: takeover within 15 s, one webhook-id per email),
and tears down.
This test runs it under a project name and work directory of its own, then
checks independently, with the engine's CLI, that no container, volume or
network of that project remains and that no process of the run (podman's
socket service, conmon of a container) is still alive.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from render_signal.devstack.pytest_plugin import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ["-m", "deploy.compose.compose_test"]
SUMMARY = re.compile(
    r"^compose-test: 6 containers healthy in [\d.]+ s; email delivered through the"
    r" containers in [\d.]+ s, [\d.]+ s after restarting notify; Prometheus 4/4 targets"
    r" up at [\d.]+ s; scaled to 2 offload \+ 2 notify: 10 emails, a notify replica"
    r" SIGKILLed holding [1-9]\d* lease\(s\), taken over in [\d.]+ s, worst delay after the"
    r" kill [\d.]+ s, \d+ resent under the same webhook-id; replacements under new names;"
    r" services stopped [\d.]+ s after SIGTERM with Redis already gone, none SIGKILLed;"
    r" .* \((podman|docker)\)$"
)


def run_driver(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *DRIVER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_mentioning(*needles: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if any(needle in cmdline for needle in needles):
            found.append(f"{process.info['pid']}: {cmdline[:200]}")
    return found


def engine_cli() -> tuple[str, dict[str, str]]:
    """The CLI the driver picks (docker with a daemon, else podman) and its environment."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0:
        return docker, dict(os.environ)
    podman = shutil.which("podman")
    assert podman, "the driver ran containers without docker or podman?"
    conf = ROOT / "deploy" / "compose" / "containers.conf"
    return podman, {**os.environ, "CONTAINERS_CONF": str(conf)}


@pytest.mark.timeout(2400)  # a first run builds the base images too (minutes on 2 cores)
def test_compose_round_trip_leaves_nothing_behind(tmp_path: Path) -> None:
    project = f"rs-ctest-pytest-{secrets.token_hex(3)}"
    workdir = tmp_path / "run"
    result = run_driver(
        "--project", project, "--work-dir", str(workdir), env=dict(os.environ), timeout=2300
    )
    output = result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    if result.returncode == 0 and lines and "SKIPPED" in lines[-1]:
        assert not IN_CI, output
        pytest.skip(lines[-1].removeprefix("compose-test: "))
    assert result.returncode == 0, output[-6000:]
    print(lines[-1])  # the measurements (shown with -s, -rP, or on failure)
    assert SUMMARY.match(lines[-1]), lines[-1]

    cli, env = engine_cli()
    label = f"label=com.docker.compose.project={project}"
    for what in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
        listed = subprocess.run(
            [cli, *what, "-q", "--filter", label],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert listed.stdout.strip() == "", (what, listed.stdout)
    networks = subprocess.run(
        [cli, "network", "ls", "--format", "{{.Name}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"{project}_default" not in networks.stdout.split()
    assert not processes_mentioning(project, str(workdir)), "a process of the run is left"
    assert not workdir.exists(), "the run's work directory (socket, CA, env file) is left"


def test_compose_test_without_an_engine_skips_locally_and_fails_in_ci(tmp_path: Path) -> None:
    """No docker, no podman on PATH: the driver names why; CI=true turns it into a failure."""
    env = {"PATH": str(tmp_path), "HOME": os.environ.get("HOME", "/tmp")}
    local = run_driver(env={**env, "CI": ""}, timeout=60)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "SKIPPED" in local.stdout and "no container engine" in local.stdout
    ci = run_driver(env={**env, "CI": "true"}, timeout=60)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "FAILED" in ci.stdout and "no container engine" in ci.stdout
