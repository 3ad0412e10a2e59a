"""The four services running for real, scraped by a real Prometheus.

One session-scoped stack: each service started as its own process (as the
container images run them) on free ports, against the session Redis; then
/usr/bin/prometheus with deploy/prometheus's job names and alert rules, pointed
at those ports. Checks: every job ``up == 1``, every alert rule loaded, the
container HEALTHCHECK script against each service, and the Grafana dashboard's
metric names against what the services really export.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_signal.devstack import polling
from render_signal.devstack.ports import free_port
from render_signal.devstack.pytest_plugin import require_component

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("ingest", "offload", "notify", "gateway")
PORT_VARS = {
    "ingest": "INGEST_METRICS_PORT",
    "offload": "OFFLOAD_METRICS_PORT",
    "notify": "NOTIFY_METRICS_PORT",
    "gateway": "PORT",
}
METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def http_get(url: str, timeout: float = 3) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_until(check, timeout: float, what: str, diagnostics=lambda: ""):
    """:func:`polling.wait_until` for a server still starting: a connection error is "not yet"."""
    errors: list[OSError] = []

    def attempt():
        try:
            return check()
        except OSError as exc:  # not listening yet
            errors.append(exc)
            return None

    def describe() -> str:
        return f"{what} ({errors[-1] if errors else None}):\n{diagnostics()}"

    return polling.wait_until(attempt, timeout, describe, interval_s=0.2)


@dataclass
class Running:
    """The services and Prometheus of this session."""

    ports: dict[str, int]
    envs: dict[str, dict[str, str]]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    prometheus_url: str = ""

    def log(self, name: str) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace")[-4000:] if path and path.exists() else ""


def service_env(name: str, port: int, redis_url: str, prefix: str, workdir: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        RENDER_SIGNAL_ENV="dev",
        RENDER_SIGNAL_ENV_FILE=str(workdir / "absent.env"),  # never a stray ./.env
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=prefix,
        METRICS_HOST="127.0.0.1",
        HOST="127.0.0.1",
        LOG_FORMAT="json",
        RENDER_SIGNAL_SERVICE=name,
        HEARTBEAT_INTERVAL_SECONDS="5",
    )
    env[PORT_VARS[name]] = str(port)
    if name == "gateway":
        env.update(
            SECRET_KEY=secrets.token_hex(32),
            DASHBOARD_PASSWORD=secrets.token_urlsafe(18),
            PROCESS_API_TOKEN=secrets.token_urlsafe(24),
        )
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def prometheus_config(ports: dict[str, int], rules: Path) -> dict:
    """deploy/prometheus/prometheus.yml with its compose hostnames replaced by loopback."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(rules)]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in ports:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


@pytest.fixture(scope="session")
def deploy_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    require_component(Path(prometheus).exists(), "prometheus (apt: prometheus) not installed")
    workdir = tmp_path_factory.mktemp("deploy-stack")
    prefix = f"rstest:deploy{secrets.token_hex(4)}:"
    ports = {name: free_port() for name in SERVICES}
    envs = {n: service_env(n, ports[n], redis_url, prefix, workdir) for n in SERVICES}
    running = Running(ports=ports, envs=envs)
    try:
        for name in SERVICES:
            log = workdir / f"{name}.log"
            running.logs[name] = log
            with log.open("wb") as out:
                running.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", f"render_signal.{name}.main"],
                    cwd=workdir,
                    env=envs[name],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        for name in SERVICES:
            url = f"http://127.0.0.1:{ports[name]}/health"
            wait_until(
                lambda url=url, name=name: (
                    (running.processes[name].poll() is None and http_get(url)[0] == 200)
                    or running.processes[name].poll() is not None
                ),
                60,
                f"{name} /health",
                lambda name=name: running.log(name),
            )
            assert running.processes[name].poll() is None, f"{name} exited:\n{running.log(name)}"

        rules = workdir / "alerts.yml"
        rules.write_text((DEPLOY / "prometheus" / "alerts.yml").read_text())
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(ports, rules)))
        prom_port = free_port()
        running.logs["prometheus"] = workdir / "prometheus.log"
        with running.logs["prometheus"].open("wb") as out:
            running.processes["prometheus"] = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                ],
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running.prometheus_url = f"http://127.0.0.1:{prom_port}"
        wait_until(
            lambda: http_get(f"{running.prometheus_url}/-/ready")[0] == 200,
            30,
            "prometheus ready",
            lambda: running.log("prometheus"),
        )
        yield running
    finally:
        for process in running.processes.values():
            stop(process)


def prom_query(base: str, query: str) -> list[dict]:
    status, body = http_get(f"{base}/api/v1/query?query={urllib.parse.quote(query)}")
    assert status == 200, body
    return list(json.loads(body)["data"]["result"])


def test_prometheus_scrapes_every_service(deploy_stack: Running) -> None:
    def all_up() -> dict[str, str] | None:
        result = prom_query(deploy_stack.prometheus_url, "up")
        values = {r["metric"]["job"]: r["value"][1] for r in result}
        return values if all(values.get(n) == "1" for n in SERVICES) else None

    values = wait_until(all_up, 60, "up == 1 for every job", lambda: deploy_stack.log("prometheus"))
    assert set(values) == set(SERVICES)


def test_prometheus_loaded_every_alert_rule(deploy_stack: Running) -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    expected = {r["alert"] for g in groups for r in g["rules"]}
    status, body = http_get(f"{deploy_stack.prometheus_url}/api/v1/rules")
    assert status == 200, body
    loaded = {
        r["name"]: r
        for g in json.loads(body)["data"]["groups"]
        for r in g["rules"]
        if r["type"] == "alerting"
    }
    assert set(loaded) == expected
    assert all(r["health"] != "err" for r in loaded.values()), loaded


def test_container_healthcheck_script_against_each_service(deploy_stack: Running) -> None:
    """deploy/healthcheck.py (the image's HEALTHCHECK) finds each service's port."""
    script = DEPLOY / "healthcheck.py"
    for name in SERVICES:
        ok = subprocess.run(
            [sys.executable, str(script)], env=deploy_stack.envs[name], timeout=15, check=False
        )
        assert ok.returncode == 0, name
    # Pointing it at a port where nothing listens reports unhealthy.
    wrong = {**deploy_stack.envs["notify"], "NOTIFY_METRICS_PORT": str(free_port())}
    bad = subprocess.run(
        [sys.executable, str(script)], env=wrong, capture_output=True, timeout=15, check=False
    )
    assert bad.returncode == 1


def test_ready_endpoint_answers_on_every_service(deploy_stack: Running) -> None:
    """The k8s readinessProbe path exists on every service (200 ready / 503 not)."""
    for name in SERVICES:
        status, body = http_get(f"http://127.0.0.1:{deploy_stack.ports[name]}/ready")
        assert status in (200, 503), (name, status, body)
        assert isinstance(json.loads(body), dict), name


# ------------------------------------------------- dashboard metric names ----
def live_metric_names(text: str) -> set[str]:
    """Metric family names in an exposition, from HELP/TYPE lines and samples."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def declared_metric_names() -> set[str]:
    """Names passed to prometheus_client constructors in services/*/src and libs/common/src."""
    import ast

    names: set[str] = set()
    sources = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/common/src/**/*.py")]
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                callee in METRIC_CLASSES
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                names.add(first.value)
    return names


def family(name: str) -> str:
    """Strip the series suffixes a family's samples carry."""
    for suffix in ("_bucket", "_count", "_sum", "_created"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def dashboard_metric_names() -> set[str]:
    names: set[str] = set()
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                names |= set(re.findall(r"\brender_signal_[a-z0-9_]+", target["expr"]))
    return names


def test_dashboard_uses_only_metrics_the_services_export(deploy_stack: Running) -> None:
    live: set[str] = set()
    for name in SERVICES:
        status, body = http_get(f"http://127.0.0.1:{deploy_stack.ports[name]}/metrics")
        assert status == 200, name
        live |= {family(n) for n in live_metric_names(body)}
    # Source 1: live /metrics of the running services. prometheus_client may list a
    # labelled family only after a first label set is used, and a module a service
    # hasn't imported yet exports nothing; so source 2 is the names the code declares
    # (prometheus_client constructors in services/*/src and libs/common/src).
    declared = declared_metric_names()
    used = {family(n) for n in dashboard_metric_names()}
    assert used, "the dashboard queries no render_signal_* metric"
    assert "render_signal_stream_published_total" in declared  # the scanner itself works
    unknown = sorted(used - live - declared)
    assert not unknown, f"dashboard queries metrics nobody exports: {unknown}"
    # Every name the dashboard uses is a real family: declared in code, and the live
    # exposition serves at least the stream families of the common runtime.
    assert used <= declared | live
    assert any(n.startswith("render_signal_") for n in live), sorted(live)


def test_alert_rules_use_declared_or_planned_metrics() -> None:
    """Catch typos in alert expressions. Planned names (issue list) may not exist yet."""
    planned = {
        "render_signal_imap_connected",
        "render_signal_imap_reconnects_total",
        "render_signal_notify_dead_letters",
    }
    text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    groups = yaml.safe_load(text)["groups"]
    exprs = " ".join(r["expr"] for g in groups for r in g["rules"])
    used = set(re.findall(r"\brender_signal_[a-z0-9_]+", exprs))
    assert used
    assert not sorted(used - declared_metric_names() - planned)


# ------------------------------------------------------------ image build ----
def import_compose_machinery() -> tuple[Any, Any]:
    """``deploy/compose`` (what ``make compose-test`` runs), imported from this checkout.

    Imported while the module is collected, not inside the test: on CPython 3.11 an
    import racing a garbage-collector finalizer that imports too can raise
    ``KeyError(<thread id>)`` from importlib's module lock (cpython#87712).
    """
    sys.path.insert(0, str(ROOT))
    try:
        engine = importlib.import_module("deploy.compose.engine")
        baseimages = importlib.import_module("deploy.compose.baseimages")
    finally:
        sys.path.remove(str(ROOT))
    return engine, baseimages


compose_engine, compose_baseimages = import_compose_machinery()


@pytest.mark.timeout(1800)  # a first run builds the base images (minutes on 2 cores)
def test_image_builds_and_runs(redis_url: str) -> None:
    """deploy/Dockerfile builds (notify) and the image runs as uid 10001 with its HEALTHCHECK.

    Same machinery as ``make compose-test``: a Docker engine, else podman with
    deploy/compose/containers.conf; upstream base images when pullable, else the
    local ones (built and cached by deploy/compose/baseimages.py).
    """
    engine, reason = compose_engine.detect_engine()
    require_component(engine is not None, reason)
    try:
        base = compose_baseimages.ensure_base_images(engine, ("python", "uv"), say=print)
    except compose_baseimages.MissingTool as exc:
        require_component(False, str(exc))
    tag = f"render-signal-notify:test-{secrets.token_hex(4)}"
    dockerfile = str(DEPLOY / "Dockerfile")
    engine.build("-f", dockerfile, "--build-arg", "SERVICE=notify", *base.build_args(),
                 "-t", tag, str(ROOT), timeout=1800)  # fmt: skip
    port = free_port()
    name = f"rs-notify-{secrets.token_hex(4)}"
    try:
        started = engine.run(
            "run", "-d", "--name", name, "--network", "host",
            "-e", f"REDIS_URL={redis_url}", "-e", "RENDER_SIGNAL_ENV=dev",
            "-e", "METRICS_HOST=127.0.0.1", "-e", f"NOTIFY_METRICS_PORT={port}", tag,
            check=False,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        wait_until(
            lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200,
            60,
            "the notify container's /health",
            lambda: engine.run("logs", name, check=False).stderr[-3000:],
        )
        user = engine.run("exec", name, "id", "-u")
        assert user.stdout.strip() == "10001"
        # The HEALTHCHECK survived the build (podman drops it from OCI-format images).
        inspected = json.loads(engine.run("inspect", name).stdout)[0]
        assert "/app/healthcheck.py" in " ".join(inspected["Config"]["Healthcheck"]["Test"])
        if engine.kind == "podman":  # podman runs it on demand; Docker on its own timer
            check = engine.run("healthcheck", "run", name, check=False)
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        engine.run("rm", "-f", name, check=False)
        # podman: untag only this name, the image stays as build cache for the next run.
        untag = ("untag", tag, tag) if engine.kind == "podman" else ("rmi", tag)
        engine.run(*untag, check=False)
