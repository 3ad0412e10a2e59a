"""``make run`` on a fresh checkout (issue 2, acceptance 1 and 7).

Runs the real umbrella CLI in an empty directory: no .env, no REDIS_URL, no
accounts. It must write a dev .env, start Redis and the four services, report
them alive through ``render-signal status`` within 20 s, and leave no process
behind after Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from render_signal.devstack.polling import wait_until
from render_signal.devstack.pytest_plugin import require_component
from render_signal.devstack.redisserver import find_redis_server

from .stack import Stack, pid_alive


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    require_component(find_redis_server() is not None, "no redis-server binary available")
    running = Stack(tmp_path)
    try:
        yield running
    finally:
        running.kill()


def test_fresh_checkout_make_run(stack: Stack) -> None:
    assert not (stack.workdir / ".env").exists()
    started = time.monotonic()
    stack.up()
    status = stack.cli("status", "--wait", "20", timeout=40)
    elapsed = time.monotonic() - started
    assert status.returncode == 0, status.stdout + stack.output()
    print(f"all four services alive {elapsed:.1f}s after `render-signal up`")
    for service in ("ingest", "offload", "notify", "gateway"):
        assert f"{service}" in status.stdout and "DOWN" not in status.stdout

    env_text = (stack.workdir / ".env").read_text()
    assert "RENDER_SIGNAL_ENV=dev" in env_text
    secrets = dict(
        line.split("=", 1)
        for line in env_text.splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert len(secrets["SECRET_KEY"]) >= 40 and len(secrets["PROCESS_API_TOKEN"]) >= 32
    output = stack.output()
    assert f"http://127.0.0.1:{stack.env['PORT']}/" in output, output
    assert f"Dev login:  admin / {secrets['DASHBOARD_PASSWORD']}" in output

    state = stack.state()
    pids = [int(c["pid"]) for c in state["children"]]  # type: ignore[index,union-attr]
    redis_port = str(state["redis_url"]).rsplit(":", 1)[1].split("/")[0]
    assert all(pid_alive(p) for p in pids)

    assert stack.interrupt() == 0, stack.output()
    assert not [p for p in pids if pid_alive(p)], "a service outlived Ctrl-C"
    import socket

    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(redis_port))) != 0, "redis outlived Ctrl-C"
    assert "PROCESS: SIGTERM received" in stack.output()


def test_supervisor_restarts_a_crashed_service(stack: Stack) -> None:
    import os
    import signal

    stack.up()
    assert stack.cli("status", "--wait", "20", timeout=40).returncode == 0, stack.output()
    state = stack.state()
    notify = next(c for c in state["children"] if c["service"] == "notify")  # type: ignore[union-attr]
    os.kill(int(notify["pid"]), signal.SIGKILL)
    wait_until(
        lambda: "notify exited with code -9; restarting" in stack.output(),
        20,
        lambda: f"the supervisor to restart notify:\n{stack.output()}",
        interval_s=0.1,
    )

    def beats_again() -> bool:  # the restarted notify: a fresh pid in its heartbeat
        status = stack.cli("status", "--json")
        return f'"pid": {notify["pid"]}' not in status.stdout and status.returncode == 0

    wait_until(
        beats_again, 20, lambda: f"notify's new heartbeat:\n{stack.output()}", interval_s=0.2
    )
    assert stack.interrupt() == 0


def test_up_with_replicas_runs_two_of_each_worker_under_distinct_names(stack: Stack) -> None:
    """``render-signal up --replicas 2``: two supervised processes of ingest, offload
    and notify (one gateway), each with its own instance name and metrics port;
    mail goes through; a killed replica is restarted; Ctrl-C stops them all."""
    import json
    import os
    import signal

    stack.up("--replicas", "2")
    assert stack.cli("status", "--wait", "30", timeout=60).returncode == 0, stack.output()
    state = stack.state()
    children = state["children"]
    assert isinstance(children, list)
    by_service: dict[str, list[dict[str, object]]] = {}
    for child in children:
        by_service.setdefault(str(child["service"]), []).append(child)
    assert {s: len(c) for s, c in by_service.items()} == {
        "ingest": 2, "offload": 2, "notify": 2, "gateway": 1,
    }  # fmt: skip

    def instances() -> dict[str, set[str]]:
        report = json.loads(stack.cli("status", "--json").stdout)
        return {
            s["service"]: {i["instance"] for i in s["instances"] if i["alive"]}
            for s in report["services"]
        }

    def two_each() -> dict[str, set[str]] | None:
        seen = instances()
        return (
            seen
            if all(len(seen.get(s, ())) == 2 for s in ("ingest", "offload", "notify"))
            else None
        )

    seen = wait_until(two_each, 30, lambda: f"two live instances each: {instances()}")
    for service in ("ingest", "offload", "notify"):
        assert {name.rsplit("-", 1)[1] for name in seen[service]} == {"0", "1"}, seen
    sent = stack.cli("send", "--wait", "30", timeout=60)
    assert sent.returncode == 0, sent.stdout + stack.output()

    second = next(c for c in children if c["child"] == "offload-1")
    os.kill(int(str(second["pid"])), signal.SIGKILL)
    wait_until(
        lambda: "offload-1 exited with code -9; restarting" in stack.output(),
        20,
        lambda: f"the supervisor to restart offload-1:\n{stack.output()}",
    )
    pids = [int(str(c["pid"])) for c in children]
    assert stack.interrupt() == 0, stack.output()
    assert not [p for p in pids if pid_alive(p)], "a replica outlived Ctrl-C"


def test_no_secret_from_the_environment_reaches_any_log_line(stack: Stack) -> None:
    """Sentinel secrets through a whole run (start, one email, stop) at DEBUG level."""
    sentinels = {
        "SECRET_KEY": "SENTINEL-secret-key-0d3c9b8a7f6e5d4c3b2a",
        "DASHBOARD_PASSWORD": "SENTINEL-dash-pw-71c2",
        "PROCESS_API_TOKEN": "SENTINEL-api-token-5e8f1a2b3c4d",
        "WEBHOOK_SIGNING_SECRET": "whsec_U0VOVElORUwtc2lnbmluZy1zZWNyZXQtMTIzNDU2Nzg=",
        "MAKECOM_API_KEY": "SENTINEL-make-key-19af",
        "R2_FETCH_TOKEN": "SENTINEL-r2-token-66b0",
        "EMAIL_PASSWORD": "SENTINEL-imap-pw-3d3d",
        "RENDER_API_KEY": "SENTINEL-render-key-abab",
    }
    lines = ["RENDER_SIGNAL_ENV=dev", "LOG_LEVEL=DEBUG", "HEARTBEAT_INTERVAL_SECONDS=1"]
    lines += [f"{k}={v}" for k, v in sentinels.items()]
    (stack.workdir / ".env").write_text("\n".join(lines) + "\n")
    stack.up()
    assert stack.cli("status", "--wait", "20", timeout=40).returncode == 0, stack.output()
    sent = stack.cli("send", "--wait", "20", timeout=60)
    output_before_stop = stack.output()
    assert stack.interrupt() == 0
    output = stack.output() + sent.stdout + sent.stderr
    assert output_before_stop, "the stack logged nothing at all"
    leaked = [name for name, value in sentinels.items() if value in output]
    assert not leaked, f"secrets found in logs: {leaked}"
    assert "SENTINEL-secret-key" not in output
    assert sent.returncode == 0, sent.stdout + sent.stderr + output


def test_ingress_reply_carries_the_email_id_the_webhook_will_carry(stack: Stack) -> None:
    """The 2xx names the email; the receiver later sees that id as microsoft_graph_email_id."""
    import json
    import urllib.request

    stack.up()
    assert stack.cli("status", "--wait", "20", timeout=40).returncode == 0, stack.output()
    env = dict(
        line.split("=", 1)
        for line in (stack.workdir / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    base = f"http://127.0.0.1:{stack.env['PORT']}"
    headers = {"Authorization": f"Bearer {env['PROCESS_API_TOKEN']}"}
    link = "https://www.dropbox.com/scl/fi/idcheck/photos.zip?rlkey=abc&dl=0"
    gmail = json.dumps(
        {
            "subject": "Lot 7 (id check)",
            "sender": "Média Solution <Missions@Agency.example.net>",
            "body": f"<p>Fichiers : <a href='{link}'>ici</a></p>",
            "date": "2026-11-28T09:00:00Z",
        }
    ).encode()
    raw = (
        b"From: a@agency.example.net\r\nTo: b@studio.example.net\r\n"
        b"Subject: raw id check\r\nMessage-ID: <ID-Check-42@agency.example.net>\r\n\r\n"
        + link.encode()
        + b"\r\n"
    )
    replies = []
    for path, body, ctype, status in (
        ("/api/ingress/gmail", gmail, "application/json", 200),  # what the Apps Script needs
        ("/api/ingress/raw", raw, "message/rfc822", 202),
    ):
        request = urllib.request.Request(
            base + path, data=body, method="POST", headers={**headers, "Content-Type": ctype}
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            assert response.status == status
            replies.append(json.loads(response.read()))
    ids = [r["email_id"] for r in replies]
    assert all(len(i) == 32 for i in ids), replies

    sink = stack.workdir / ".run" / "sink.jsonl"
    seen: set[str] = set()

    def both_delivered() -> bool:
        if sink.exists():
            for line in sink.read_text().splitlines():
                seen.add(json.loads(json.loads(line)["body"])["microsoft_graph_email_id"])
        return set(ids) <= seen

    wait_until(
        both_delivered,
        20,
        lambda: f"{ids} at the dev sink (seen {seen}):\n{stack.output()[-3000:]}",
        interval_s=0.1,
    )
    assert stack.interrupt() == 0


def test_killing_the_supervisor_outright_leaves_no_process(stack: Stack) -> None:
    """SIGKILL of `render-signal up` itself: the kernel stops its children (PDEATHSIG)."""
    import os
    import signal
    import socket

    stack.up()
    assert stack.cli("status", "--wait", "20", timeout=40).returncode == 0, stack.output()
    state = stack.state()
    pids = [int(c["pid"]) for c in state["children"]]  # type: ignore[index,union-attr]
    redis_port = int(str(state["redis_url"]).rsplit(":", 1)[1].split("/")[0])
    assert stack.process is not None
    os.kill(stack.process.pid, signal.SIGKILL)  # the supervisor only, not its group
    stack.process.wait(timeout=10)
    wait_until(
        lambda: not [p for p in pids if pid_alive(p)],
        30,
        "the services to die with their supervisor",
        interval_s=0.1,
    )

    def redis_gone() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", redis_port)) != 0

    wait_until(redis_gone, 30, "redis to die with its supervisor", interval_s=0.1)


def test_make_run_on_a_fresh_clone(tmp_path: Path) -> None:
    """The README's command, literally: `make run` in a fresh clone, status, Ctrl-C."""
    import json
    import os
    import shutil
    import signal
    import subprocess

    require_component(
        bool(shutil.which("git") and shutil.which("make") and shutil.which("uv")),
        "git, make and uv are needed to run `make run` on a clone",
    )
    repo = Path(__file__).resolve().parents[2]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, timeout=120)
    assert not (clone / ".env").exists() and not (clone / ".venv").exists()
    probe = Stack(clone)  # free ports and a clean environment (no REDIS_URL)
    env = {k: v for k, v in probe.env.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    log = (tmp_path / "make-run.log").open("wb")
    make = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        state_file = clone / ".run" / "state.json"

        def started() -> bool:
            assert make.poll() is None, (tmp_path / "make-run.log").read_text()
            return state_file.exists()

        wait_until(  # includes `uv sync` and `npm ci` in the clone
            started,
            240,
            lambda: f"`make run` to start:\n{(tmp_path / 'make-run.log').read_text()}",
            interval_s=0.2,
        )
        status = subprocess.run(
            [str(clone / ".venv" / "bin" / "render-signal"), "status", "--wait", "20"],
            cwd=clone, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout + (tmp_path / "make-run.log").read_text()
        state = json.loads(state_file.read_text())
        pids = [int(c["pid"]) for c in state["children"]]
        output = (tmp_path / "make-run.log").read_text()
        assert f"http://127.0.0.1:{env['PORT']}/" in output
        assert "Dev login:  admin / " in output
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        make.wait(timeout=60)
        wait_until(
            lambda: not [p for p in pids if pid_alive(p)],
            30,
            "the services to stop after Ctrl-C",
            interval_s=0.1,
        )
        assert "RENDER_SIGNAL_ENV=dev" in (clone / ".env").read_text()
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
        log.close()
