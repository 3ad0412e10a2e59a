"""Deployment artifacts checked with the real tools that consume them.

docker-compose 1.29 (``config``), actionlint, zizmor, hadolint, promtool,
kubernetes-validate (Kubernetes JSON schemas bundled in the PyPI package, so it
works offline), systemd-analyze and nginx. Tools from the dev dependency group
are always present; Debian tools go through ``require_component`` (skip
locally, fail under CI=true). apt packages: docker-compose, prometheus
(promtool), systemd (systemd-analyze), nginx.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.redisserver import AOF_REWRITE_MIN_SIZE

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("ingest", "offload", "notify", "gateway")
PORTS = {"ingest": 9101, "offload": 9102, "notify": 9103, "gateway": 8000}
#: Where Prometheus scrapes each one: the gateway's metrics are on its internal port.
SCRAPE_PORTS = {**PORTS, "gateway": 9104}
REQUIRED_COMPOSE_VARS = {
    "SECRET_KEY": "s3cr3t-key-for-compose-config",
    "DASHBOARD_PASSWORD": "dashboard-pass-for-config",
    "PROCESS_API_TOKEN": "api-token-for-config",
    "WEBHOOK_URL": "https://hooks.receiver.test/render-signal",
}


def venv_tool(name: str) -> str:
    """A console script installed by the dev group, next to this interpreter."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} missing: run `uv sync --all-packages` (dev group)"
    return found


def run(*cmd: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment, so variables of the caller never leak into a check."""
    import os

    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return {**base, **extra}


# --------------------------------------------------------------- compose -----
def docker_compose_binary() -> str:
    path = shutil.which("docker-compose")
    require_component(path is not None, "docker-compose 1.29 (apt: docker-compose) not installed")
    assert path is not None
    return path


def docker_compose() -> list[str]:
    """docker-compose with an empty ``--env-file``: left alone it reads ./.env, which
    ``make run`` writes with dev secrets, and the checks would see those."""
    empty = Path(tempfile.gettempdir()) / "render-signal-tests-empty.env"
    if not empty.exists():
        empty.write_text("")
    return [docker_compose_binary(), "--env-file", str(empty)]


def test_compose_config_is_valid_with_required_vars() -> None:
    result = run(
        *docker_compose(),
        "-f",
        "docker-compose.yml",
        "config",
        "-q",
        env=clean_env(**REQUIRED_COMPOSE_VARS),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_COMPOSE_VARS))
def test_compose_refuses_to_start_without_a_required_secret(missing: str) -> None:
    env = {k: v for k, v in REQUIRED_COMPOSE_VARS.items() if k != missing}
    result = run(
        *docker_compose(), "-f", "docker-compose.yml", "config", "-q", env=clean_env(**env)
    )
    assert result.returncode != 0
    assert missing in result.stderr


def test_compose_normalised_stack_shape() -> None:
    result = run(
        *docker_compose(),
        "-f",
        "docker-compose.yml",
        "config",
        env=clean_env(**REQUIRED_COMPOSE_VARS),
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"redis", "prometheus", *SERVICES} <= set(services)
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd
    # The same compaction threshold as the Redis the tests, the bench and `make run` start.
    assert f"--auto-aof-rewrite-min-size {AOF_REWRITE_MIN_SIZE}" in redis_cmd
    assert any("/data" in str(v) for v in services["redis"]["volumes"])
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    for name in SERVICES:
        svc = services[name]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert svc["build"]["args"]["SERVICE"] == name
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "/app/healthcheck.py" in svc["healthcheck"]["test"]
        assert svc["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert services["notify"]["environment"]["WEBHOOK_URL"] == REQUIRED_COMPOSE_VARS["WEBHOOK_URL"]
    gateway_env = services["gateway"]["environment"]
    for var in ("SECRET_KEY", "DASHBOARD_PASSWORD", "PROCESS_API_TOKEN"):
        assert gateway_env[var] == REQUIRED_COMPOSE_VARS[var]
    # Secrets only where they are used.
    assert "SECRET_KEY" not in services["notify"]["environment"]
    assert "WEBHOOK_URL" not in gateway_env
    mounts = " ".join(str(v) for v in services["prometheus"]["volumes"])
    assert "deploy/prometheus/prometheus.yml" in mounts and "deploy/prometheus/alerts.yml" in mounts
    # Optional parts sit behind profiles, so `up` without flags doesn't start them.
    assert services["grafana"]["profiles"] == ["grafana"]
    assert services["r2-worker"]["profiles"] == ["dev"]
    assert "scripts/serve.mjs" in " ".join(services["r2-worker"]["command"])


def test_compose_base_images_default_to_upstream_and_follow_variables() -> None:
    """Image names and the Dockerfile's base-image args are variables with upstream defaults."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    arg_defaults = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", dockerfile, re.M))
    assert set(arg_defaults) == {"PYTHON_IMAGE", "UV_IMAGE"}

    def normalised(**extra: str) -> dict:
        result = run(
            *docker_compose(), "-f", "docker-compose.yml", "config",
            env=clean_env(**REQUIRED_COMPOSE_VARS, **extra),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return dict(yaml.safe_load(result.stdout)["services"])

    services = normalised()
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["prometheus"]["image"].startswith("prom/prometheus:v")
    for name in SERVICES:
        args = services[name]["build"]["args"]
        assert {k: args[k] for k in arg_defaults} == arg_defaults, name  # no drift
        assert args["SERVICE"] == name
    local = {
        "REDIS_IMAGE": "localhost/base/redis:1",
        "PROMETHEUS_IMAGE": "localhost/base/prometheus:1",
        "PYTHON_IMAGE": "localhost/base/python:1",
        "UV_IMAGE": "localhost/base/uv:1",
    }
    services = normalised(**local)
    assert services["redis"]["image"] == local["REDIS_IMAGE"]
    assert services["prometheus"]["image"] == local["PROMETHEUS_IMAGE"]
    for name in SERVICES:
        args = services[name]["build"]["args"]
        assert args["PYTHON_IMAGE"] == local["PYTHON_IMAGE"]
        assert args["UV_IMAGE"] == local["UV_IMAGE"]


def test_compose_test_overrides_are_valid() -> None:
    """The overrides make compose-test uses (webhook CA, host-gateway on Docker) merge cleanly."""
    result = run(
        *docker_compose(), "-f", "docker-compose.yml",
        "-f", "deploy/compose/webhook-ca.override.yml",
        "-f", "deploy/compose/docker-host-gateway.override.yml", "config",
        env=clean_env(**REQUIRED_COMPOSE_VARS, WEBHOOK_CA_BUNDLE="/etc/ssl/certs/ca.pem"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notify = yaml.safe_load(result.stdout)["services"]["notify"]
    assert notify["environment"]["SSL_CERT_FILE"] == "/etc/render-signal/webhook-ca.pem"
    assert any("/etc/render-signal/webhook-ca.pem" in str(v) for v in notify["volumes"])
    assert notify["extra_hosts"] == {"host.containers.internal": "host-gateway"}
    missing = run(
        *docker_compose(), "-f", "docker-compose.yml",
        "-f", "deploy/compose/webhook-ca.override.yml", "config", "-q",
        env=clean_env(**REQUIRED_COMPOSE_VARS),
    )  # fmt: skip
    assert missing.returncode != 0 and "WEBHOOK_CA_BUNDLE" in missing.stderr


# ------------------------------------------------------------- Dockerfile ----
def test_hadolint_accepts_the_dockerfile() -> None:
    result = run(venv_tool("hadolint"), "--failure-threshold", "info", "deploy/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_contract() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG SERVICE$", text, re.M)
    assert re.search(r"^FROM \$\{UV_IMAGE\} AS uv", text, re.M)
    assert re.search(r"ARG UV_IMAGE=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", text)
    assert "uv sync --frozen --no-dev" in text and '--package "render-signal-${SERVICE}"' in text
    assert "--mount=type=cache,target=/root/.cache/uv" in text
    assert "python:3.11-slim" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"python\", \"/app/healthcheck.py\"\]", text, re.M)
    assert 'CMD ["render-signal-service"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "**/node_modules"):
        assert entry in ignored


def test_dockerfile_copies_every_workspace_member_manifest() -> None:
    """uv checks the whole workspace against uv.lock: a new member must be copied too."""
    import tomllib

    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    text = (DEPLOY / "Dockerfile").read_text()
    for member in members["members"]:
        assert f"COPY {member}/pyproject.toml {member}/" in text


def test_console_scripts_match_the_image_entrypoint() -> None:
    """The image links render-signal-$SERVICE; each service must declare that script."""
    import tomllib

    for name in SERVICES:
        project = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())
        assert f"render-signal-{name}" in project["project"]["scripts"]


# --------------------------------------------------------- GitHub Actions ----
def workflows() -> dict[str, dict]:
    out = {}
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        out[path.name] = yaml.safe_load(path.read_text())
    return out


def test_actionlint_accepts_the_workflows() -> None:
    files = [str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml")]
    assert files
    result = run(venv_tool("actionlint"), "-no-color", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = run(venv_tool("zizmor"), "--offline", "--no-progress", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_every_action_is_pinned_by_full_sha_with_a_version_comment() -> None:
    uses_lines = []
    for path in (ROOT / ".github" / "workflows").glob("*.yml"):
        uses_lines += [ln.strip() for ln in path.read_text().splitlines() if "uses:" in ln]
    assert uses_lines
    for line in uses_lines:
        assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_ci_workflow_runs_the_same_entry_point() -> None:
    ci = workflows()["ci.yml"]
    assert ci["permissions"] == {"contents": "read"}
    assert "group" in ci["concurrency"]
    job = ci["jobs"]["test"]
    assert job["env"]["CI"] == "true"
    runs = [step.get("run", "") for step in job["steps"]]
    assert any(r.strip() in ("bash .ci/run", "make test") for r in runs)


def test_images_workflow_matrix_push_and_render_deploy_order() -> None:
    wf = workflows()["images.yml"]
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads a bare `on` as True
    assert on["push"]["branches"] == ["main"]
    assert set(on["push"]["tags"]) == {"v*", "release-*"}
    assert "workflow_dispatch" in on
    assert wf["permissions"] == {}
    build = wf["jobs"]["build"]
    assert build["permissions"] == {"contents": "read", "packages": "write"}
    assert build["strategy"]["matrix"]["service"] == list(SERVICES)
    push = next(s for s in build["steps"] if "build-push-action" in s.get("uses", ""))
    assert push["with"]["file"] == "deploy/Dockerfile"
    assert push["with"]["build-args"] == "SERVICE=${{ matrix.service }}"
    assert ":latest" in push["with"]["tags"] and ":${{ github.sha }}" in push["with"]["tags"]
    login = next(s for s in build["steps"] if "login-action" in s.get("uses", ""))
    assert login["with"]["registry"] == "ghcr.io"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["permissions"] == {}
    names = [s["name"] for s in deploy["steps"]]
    hook = names.index("Render deploy hook")
    api = next(i for i, n in enumerate(names) if n.startswith("Render API deploy"))
    assert hook < api, "deploy hook first, Render API as the fallback"
    scripts = "\n".join(s.get("run", "") for s in deploy["steps"])
    assert "https://api.render.com/deploy/*" in scripts
    assert "curl --fail" in scripts and "--max-time 20" in scripts
    assert "/v1/services/${RENDER_SERVICE_ID}/deploys" in scripts
    assert "imageUrl" in scripts and "clearCache" in scripts
    # Secrets reach scripts through env only (no template expansion inside run:).
    for step in deploy["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]


# ------------------------------------------------------------- Prometheus ----
def promtool() -> str:
    path = shutil.which("promtool")
    require_component(path is not None, "promtool (apt: prometheus) not installed")
    assert path is not None
    return path


def test_promtool_checks_config_and_rules() -> None:
    config = run(promtool(), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = run(promtool(), "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_prometheus_scrapes_every_service_on_its_compose_port() -> None:
    """Every replica of each service (DNS discovery of the compose service name)."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for name in SERVICES:
        (sd,) = jobs[name]["dns_sd_configs"]
        assert (sd["names"], sd["type"], sd["port"]) == ([name], "A", SCRAPE_PORTS[name])
    assert config["rule_files"] == ["alerts.yml"]


def test_alert_rules_cover_the_operational_risks() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert "up{" in rules["RenderSignalServiceDown"]["expr"]
    assert "== 0" in rules["RenderSignalServiceDown"]["expr"]
    assert "render_signal_stream_published_total" in rules["RenderSignalStreamLagHigh"]["expr"]
    assert "dead_letter" in rules["RenderSignalDeadLettersRising"]["expr"]
    imap = rules["RenderSignalImapDisconnected"]
    assert imap["expr"].strip().endswith("(render_signal_imap_connected) == 0")
    assert imap["for"] == "5m"
    ratio = rules["RenderSignalWorkerFailureRatioHigh"]["expr"]
    assert "render_signal_offload_fallbacks_total[15m]" in ratio
    assert "render_signal_offload_attempts_total[15m]" in ratio and "> 0.5" in ratio
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


# ------------------------------------------------------------- Kubernetes ----
def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    files = sorted(
        str(p) for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    result = run(venv_tool("kubernetes-validate"), "--strict", "--quiet", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validation_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """The schema check really bites (unknown field, wrong type)."""
    broken = (DEPLOY / "k8s" / "notify.yaml").read_text()
    broken = broken.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true")
    broken = broken.replace("replicas: 2", "replicas: two")
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    result = run(venv_tool("kubernetes-validate"), "--strict", "--quiet", str(path))
    assert result.returncode != 0


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    resources = set(kustomization["resources"])
    on_disk = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert resources == on_disk - {"secret.example.yaml"}
    assert {i["name"] for i in kustomization["images"]} == {f"render-signal-{s}" for s in SERVICES}


def test_deployments_are_hardened_and_probed() -> None:
    docs = k8s_documents()
    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {f"render-signal-{s}" for s in SERVICES}
    for name in SERVICES:
        pod = deployments[f"render-signal-{name}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        port = container["ports"][0]
        assert port["containerPort"] == PORTS[name]
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port["name"]}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/app/data"} <= mounts  # writable paths on a read-only root
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in docs}
    for name in SERVICES:
        assert ("PodDisruptionBudget", f"render-signal-{name}") in kinds
    assert ("Service", "render-signal-gateway") in kinds
    hpas = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == {"render-signal-offload", "render-signal-notify"}
    assert all(h["apiVersion"] == "autoscaling/v2" for h in hpas.values())
    assert "render_signal:poller_lock" in (DEPLOY / "k8s" / "ingest.yaml").read_text()


def test_example_secret_is_clearly_placeholder() -> None:
    text = (DEPLOY / "k8s" / "secret.example.yaml").read_text()
    secret = yaml.safe_load(text)
    assert "EXAMPLE ONLY" in text
    for key in (
        "REDIS_URL",
        "SECRET_KEY",
        "DASHBOARD_PASSWORD",
        "PROCESS_API_TOKEN",
        "WEBHOOK_URL",
    ):
        assert key in secret["stringData"]
    assert secret["stringData"]["SECRET_KEY"] == "changeme"  # refused by the services in prod


# ----------------------------------------------------------------- Render ----
def test_render_blueprint() -> None:
    blueprint = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    services = {s["name"]: s for s in blueprint["services"]}
    kv = [s for s in blueprint["services"] if s["type"] in ("keyvalue", "redis")]
    assert len(kv) == 1 and kv[0]["maxmemoryPolicy"] == "noeviction"
    assert "ipAllowList" in kv[0]
    gateway = services["render-signal-gateway"]
    assert gateway["type"] == "web" and gateway["healthCheckPath"] == "/health"
    for name in ("ingest", "offload", "notify"):
        assert services[f"render-signal-{name}"]["type"] == "worker"
    required = {
        "ingest": {"REDIS_URL"},
        "offload": {"REDIS_URL"},
        "notify": {"REDIS_URL", "WEBHOOK_URL"},
        "gateway": {"REDIS_URL", "SECRET_KEY", "DASHBOARD_PASSWORD", "PROCESS_API_TOKEN"},
    }
    for name in SERVICES:
        svc = services[f"render-signal-{name}"]
        # The images the images workflow pushes (test_render_blueprint_and_workflow_agree).
        assert svc["runtime"] == "image"
        assert svc["image"]["url"] == f"ghcr.io/OWNER/REPO-{name}:latest"
        env = {e["key"]: e for e in svc["envVars"]}
        assert required[name] <= set(env), name
        assert env["REDIS_URL"]["fromService"] == {
            "type": kv[0]["type"],
            "name": kv[0]["name"],
            "property": "connectionString",
        }
        for key, spec in env.items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET", "API_KEY", "HOOK")):
                assert spec.get("sync") is False or spec.get("generateValue") is True, key
                assert "value" not in spec, f"{key}: secrets are never committed"


def test_render_blueprint_and_workflow_agree_and_redeploy_the_four_services() -> None:
    """Issue 14, item 7: one image name per service, one tag scheme, four redeploys."""
    blueprint = yaml.safe_load((DEPLOY / "render.yaml").read_text())
    services = {s["name"]: s for s in blueprint["services"]}
    wf = workflows()["images.yml"]
    push = next(s for s in wf["jobs"]["build"]["steps"] if "build-push-action" in s.get("uses", ""))
    name_step = next(s for s in wf["jobs"]["build"]["steps"] if s.get("id") == "image")
    # The workflow pushes ghcr.io/<owner>/<repo>-<service>:{latest,<sha>} ...
    assert "ghcr.io/${GITHUB_REPOSITORY,,}-${SERVICE}" in name_step["run"]
    assert {t.strip() for t in push["with"]["tags"].strip().splitlines()} == {
        "${{ steps.image.outputs.name }}:latest",
        "${{ steps.image.outputs.name }}:${{ github.sha }}",
    }
    # ... the blueprint runs ghcr.io/OWNER/REPO-<service>:latest (OWNER/REPO = the repository) ...
    for name in SERVICES:
        url = services[f"render-signal-{name}"]["image"]["url"]
        assert re.fullmatch(rf"ghcr\.io/OWNER/REPO-{name}:latest", url), url
    # ... and the deploy job pins every service to the commit's tag, hook or API.
    deploy = wf["jobs"]["deploy"]
    scripts = "\n".join(s.get("run", "") for s in deploy["steps"])
    assert deploy["env"]["SERVICES"].split() == ["ingest", "offload", "notify", "gateway"]
    assert scripts.count('image="ghcr.io/${GITHUB_REPOSITORY,,}-${service}:${TAG}"') == 2
    assert '--data-urlencode "imgURL=${image}"' in scripts
    env = {**deploy["env"], **next(s for s in deploy["steps"] if "API" in s["name"])["env"]}
    for name in SERVICES:
        assert f"RENDER_DEPLOY_HOOK_URL_{name.upper()}" in env[f"HOOK_{name.upper()}"]
        assert f"RENDER_SERVICE_ID_{name.upper()}" in env[f"ID_{name.upper()}"]
    # The gateway's deploy button knows the four services and the same images.
    gateway_env = {e["key"]: e for e in services["render-signal-gateway"]["envVars"]}
    for name in SERVICES:
        assert f"RENDER_DEPLOY_HOOK_URL_{name.upper()}" in gateway_env
        assert f"RENDER_SERVICE_ID_{name.upper()}" in gateway_env
    assert gateway_env["RENDER_IMAGE_URL"]["value"] == "ghcr.io/OWNER/REPO-{service}:latest"
    # Rollback: a manual run with an earlier tag deploys it without building.
    on = wf[True] if True in wf else wf["on"]
    assert "image_tag" in on["workflow_dispatch"]["inputs"]
    assert wf["jobs"]["build"]["if"] == "${{ inputs.image_tag == '' }}"


# ---------------------------------------------------------------- systemd ----
def unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_systemd_units_settings() -> None:
    target = unit(DEPLOY / "systemd" / "render-signal.target")
    wants = target["Unit"]["Wants"].split()
    assert wants == [f"render-signal-{s}.service" for s in SERVICES]
    for name in SERVICES:
        svc = unit(DEPLOY / "systemd" / f"render-signal-{name}.service")["Service"]
        assert svc["User"] == "render-signal"
        assert svc["EnvironmentFile"] == "/etc/render-signal/env"
        assert svc["Restart"] == "always"
        assert svc["ExecStart"].endswith(f"/bin/render-signal-{name}")
        for key, value in {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "CapabilityBoundingSet": "",
        }.items():
            assert svc[key] == value, (name, key)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    require_component(tool is not None, "systemd-analyze (apt: systemd) not installed")
    assert tool is not None
    # ExecStart points at the install path (/opt/render-signal/.venv); verify insists the
    # binary exists, so point copies at this venv's real console scripts.
    bindir = Path(sys.executable).parent
    for src in (DEPLOY / "systemd").iterdir():
        text = src.read_text().replace("/opt/render-signal/.venv/bin", str(bindir))
        (tmp_path / src.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    result = run(tool, "verify", "--man=no", *units, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # Unknown keys and bad values are only warnings: any output is a finding.
    assert (result.stdout + result.stderr).strip() == ""


# ------------------------------------------------------------------ nginx ----
def test_nginx_config_semantics() -> None:
    text = (DEPLOY / "nginx" / "render-signal.conf").read_text()
    for header in (
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ):
        assert header in text
    assert "server 127.0.0.1:8000;" in text
    assert "listen 443 ssl" in text and "ssl_certificate " in text
    assert "~^/login/magic/ 0;" in text and "if=$render_signal_loggable" in text


def test_nginx_t_accepts_the_site(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    require_component(nginx is not None, "nginx (apt: nginx) not installed")
    assert nginx is not None
    openssl = shutil.which("openssl")
    require_component(openssl is not None, "openssl not installed")
    assert openssl is not None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = run(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=render-signal.test", "-keyout", str(key), "-out", str(cert),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    site = (DEPLOY / "nginx" / "render-signal.conf").read_text()
    site = re.sub(r"ssl_certificate (\S+);", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key (\S+);", f"ssl_certificate_key {key};", site)
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n  access_log {tmp_path}/access.log;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = run(nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# ---------------------------------------------------------------- Grafana ----
def test_grafana_provisioning_points_at_the_dashboards() -> None:
    ds = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "render-signal.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = list((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dash = json.loads(path.read_text())
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] == ds["uid"]
            assert all(t["expr"] for t in panel["targets"])


def test_compose_services_run_in_production_even_with_a_dev_env_file(tmp_path: Path) -> None:
    """Issue 12, finding 9: `make run` writes RENDER_SIGNAL_ENV=dev to ./.env, which
    compose reads; the containers must still run in production mode."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "RENDER_SIGNAL_ENV=dev\n" + "".join(f"{k}={v}\n" for k, v in REQUIRED_COMPOSE_VARS.items())
    )
    result = run(
        docker_compose_binary(),  # its own --env-file below
        "--env-file",
        str(env_file),
        "-f",
        "docker-compose.yml",
        "config",
        env=clean_env(RENDER_SIGNAL_ENV="dev"),
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in SERVICES:
        assert services[name]["environment"]["RENDER_SIGNAL_ENV"] == "production", name
