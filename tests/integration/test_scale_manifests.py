"""Replicas in the deployment files (issue 17, item 2): what makes scaling safe there.

compose: ``--scale`` works for every worker (no fixed container name or host
port), replicas are named after their containers' host names, and a stopped
container gets time to drain and hand back. Kubernetes: the HPA scales offload
and notify, every worker pod is named after itself, the liveness TTL keeps the
15 s takeover bound, and the grace period covers the drain. The round trip with
``--scale offload=2 --scale notify=2`` is ``make compose-test``
(``deploy/compose/scaleout.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("ingest", "offload", "notify")
DRAIN_S = 20  # DRAIN_TIMEOUT_SECONDS default
TAKEOVER_BOUND_S = 15


def seconds(text: str) -> int:
    found = re.fullmatch(r"(\d+)s", text)
    assert found, text
    return int(found.group(1))


def test_compose_workers_can_be_scaled_and_drain() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    shared = compose["x-service-env"]
    assert "LIVENESS_TTL_SECONDS" in shared
    # Instance names come from the container host name: never one fixed name.
    assert "RENDER_SIGNAL_INSTANCE" not in shared
    for name in WORKERS:
        service = compose["services"][name]
        assert "container_name" not in service, f"{name}: a fixed name forbids --scale"
        assert "ports" not in service, f"{name}: a host port forbids --scale"
        assert "RENDER_SIGNAL_INSTANCE" not in service["environment"]
        assert seconds(service["stop_grace_period"]) >= DRAIN_S + 10


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_kubernetes_scales_offload_and_notify_with_pod_names() -> None:
    docs = k8s_docs()
    hpas = {
        d["spec"]["scaleTargetRef"]["name"]: d
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert set(hpas) == {"render-signal-offload", "render-signal-notify"}
    for hpa in hpas.values():
        assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > 2
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for name in WORKERS:
        pod = deployments[f"render-signal-{name}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        source = env["RENDER_SIGNAL_INSTANCE"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert source == "metadata.name", f"{name}: the instance is the pod's own name"
        assert pod["terminationGracePeriodSeconds"] >= DRAIN_S + 10
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    ttl = float(config["data"]["LIVENESS_TTL_SECONDS"])
    # Takeover = TTL + one sweep (1 s; standbys retry the IMAP lock every 2 s).
    assert ttl + 2 < TAKEOVER_BOUND_S
