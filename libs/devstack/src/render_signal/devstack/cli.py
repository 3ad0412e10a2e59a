"""``render-signal``: run the whole stack locally and look at it.

Commands:
    up       start Redis (unless REDIS_URL is set) and the four services,
             supervised; writes a dev ``.env`` on first use; Ctrl-C stops all.
             ``--replicas N`` (or RENDER_SIGNAL_REPLICAS) runs N of each worker.
    status   the verdict (ok / degraded / failing), its problems, services, targets and
             streams; exit 0 only if the verdict is ok.
    send     post a sample email (or your .eml) to the gateway's HTTP ingress.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from redis.exceptions import RedisError
from render_signal.common.envreader import DEV_MODE_WORDS, EnvReader, load_env_file
from render_signal.common.keys import DEFAULT_PREFIX, Keys
from render_signal.common.redisclient import create_redis
from render_signal.common.webhooklog import read_attempts
from render_signal.devstack.devenv import ensure_dev_env, is_generated_dev_env
from render_signal.devstack.ports import free_port, port_free
from render_signal.devstack.redisserver import RedisServer
from render_signal.devstack.sink import RecordingSink
from render_signal.devstack.status import render_status, wait_for_status
from render_signal.devstack.supervisor import Supervisor, write_state

__all__ = ["main"]

RUN_DIR = Path(".run")
STATE_FILE = RUN_DIR / "state.json"
PORT_VARS = {
    "gateway": ("PORT", 8000),
    "ingest": ("INGEST_METRICS_PORT", 9101),
    "offload": ("OFFLOAD_METRICS_PORT", 9102),
    "notify": ("NOTIFY_METRICS_PORT", 9103),
}


def _say(text: str) -> None:
    print(text, flush=True)


def _stack_env(env_path: Path) -> dict[str, str]:
    """``.env`` values overlaid by the process environment (the environment wins)."""
    return {**load_env_file(env_path), **os.environ}


def cmd_up(args: argparse.Namespace) -> int:
    env_path = Path(args.env_file)
    if ensure_dev_env(env_path):
        _say(f"render-signal: wrote {env_path} with random dev secrets (dev mode)")
    generated = is_generated_dev_env(env_path)
    env = _stack_env(env_path)
    env["RENDER_SIGNAL_ENV_FILE"] = str(env_path.resolve())
    dev = env.get("RENDER_SIGNAL_ENV", "production").strip().lower() in DEV_MODE_WORDS
    replicas = args.replicas
    if replicas is None:
        reader = EnvReader(env, {})
        replicas = reader.integer("RENDER_SIGNAL_REPLICAS", 1, minimum=1)
        for problem in reader.problems:
            _say(f"render-signal: {problem}")
        if reader.problems:
            return 2
    if replicas < 1:
        _say("render-signal: --replicas must be at least 1")
        return 2
    for service, (var, default) in PORT_VARS.items():
        if var in os.environ:
            continue  # explicitly chosen: a clash is the user's to see
        wanted = int(env.get(var) or default)
        if not port_free(wanted):
            env[var] = str(free_port())
            _say(f"render-signal: port {wanted} busy, {service} uses {env[var]}")
        else:
            env[var] = str(wanted)

    redis_server: RedisServer | None = None
    if not env.get("REDIS_URL"):
        port = 6390 if port_free(6390) else 0
        redis_server = RedisServer(
            RUN_DIR / "redis", port=port, aof=True, die_with_parent=True
        ).start()
        env["REDIS_URL"] = redis_server.url
        _say(f"render-signal: started redis-server ({redis_server.binary}) on {env['REDIS_URL']}")
    sink: RecordingSink | None = None
    if dev and not env.get("WEBHOOK_URL"):
        sink = RecordingSink(RUN_DIR / "sink.jsonl").start()
        env["WEBHOOK_URL"] = sink.url
        _say(f"render-signal: no WEBHOOK_URL: dev sink records deliveries at {sink.url}")

    supervisor = Supervisor(env, say=_say, replicas=replicas, free_port=free_port)
    if replicas > 1:
        names = ", ".join(child.name for child in supervisor.children)
        _say(f"render-signal: {replicas} replicas of each worker: {names}")
    gateway_url = f"http://127.0.0.1:{env['PORT']}"

    def started() -> None:
        write_state(
            STATE_FILE,
            {
                "redis_url": env["REDIS_URL"],
                "key_prefix": env.get("REDIS_KEY_PREFIX", DEFAULT_PREFIX),
                "gateway_url": gateway_url,
                "sink_url": sink.url if sink else None,
                "sink_records": str(sink.record_path) if sink else None,
                "supervisor_pid": os.getpid(),
                "children": supervisor.state(),
            },
        )
        _say("")
        _say(f"  Dashboard:  {gateway_url}/")
        if dev:
            # Only a password `up` generated itself is shown; one a person chose stays private.
            password = env.get("DASHBOARD_PASSWORD", "") if generated else ""
            _say(
                f"  Dev login:  {env.get('DASHBOARD_USER', 'admin')} /"
                f" {password or '(DASHBOARD_PASSWORD in ' + str(env_path) + ')'}"
            )
        _say("  Status:     render-signal status      Send a sample: render-signal send")
        _say("  Stop:       Ctrl-C")
        _say("")

    try:
        return supervisor.run(on_started=started)
    finally:
        if sink is not None:
            sink.stop()
        if redis_server is not None:
            redis_server.stop()
        STATE_FILE.unlink(missing_ok=True)


def _resolve_redis(env_path: Path, wait_s: float = 0.0) -> tuple[str, str]:
    env = _stack_env(env_path)
    if env.get("REDIS_URL"):
        return env["REDIS_URL"], env.get("REDIS_KEY_PREFIX", DEFAULT_PREFIX)
    deadline = time.monotonic() + wait_s
    while not STATE_FILE.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)  # `up` may still be starting Redis
    if STATE_FILE.is_file():
        state = json.loads(STATE_FILE.read_text(encoding="utf-8"))
        return str(state["redis_url"]), str(state.get("key_prefix", DEFAULT_PREFIX))
    raise SystemExit("render-signal: no REDIS_URL and no running stack (start one: make run)")


def cmd_status(args: argparse.Namespace) -> int:
    started = time.monotonic()
    url, prefix = _resolve_redis(Path(args.env_file), args.wait)
    remaining = max(0.0, args.wait - (time.monotonic() - started))
    try:
        report = asyncio.run(wait_for_status(url, prefix, remaining))
    except (OSError, RedisError) as exc:
        _say(f"render-signal: cannot reach Redis at {url.split('@')[-1]}: {exc}")
        return 1
    if args.json:
        _say(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    else:
        _say(render_status(report))
    return 0 if report.verdict == "ok" else 1


def _sample_bytes(path: str | None, marker: str) -> bytes:
    if path:
        data = Path(path).read_bytes()
    else:
        data = resources.files("render_signal.devstack").joinpath("samples/sample.eml").read_bytes()
        data = data.replace(b"{MARKER}", marker.encode())
    # A fresh Message-ID so resending the sample is a new email, not a duplicate.
    head, sep, body = data.partition(b"\n\n")
    replaced = (b"message-id:", b"date:")
    lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(replaced)]
    lines.append(f"Message-ID: {email.utils.make_msgid(domain='render-signal.local')}".encode())
    lines.append(f"Date: {email.utils.formatdate(localtime=False)}".encode())
    return b"\n".join(lines) + sep + body


async def _wait_delivery(
    url: str, prefix: str, marker: str, wait_s: float
) -> dict[str, Any] | None:
    redis = create_redis(url)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for entry in await read_attempts(redis, Keys(prefix), limit=50):
                if marker in entry.subject:
                    return msgspec.to_builtins(entry)  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)
        return None
    finally:
        await redis.aclose()


def cmd_send(args: argparse.Namespace) -> int:
    env = _stack_env(Path(args.env_file))
    token = env.get("PROCESS_API_TOKEN", "")
    base = args.url
    if not base and STATE_FILE.is_file():
        base = json.loads(STATE_FILE.read_text(encoding="utf-8"))["gateway_url"]
    base = base or f"http://127.0.0.1:{env.get('PORT', '8000')}"
    marker = f"RS-{secrets.token_hex(4)}"
    body = _sample_bytes(args.file, marker)
    request = urllib.request.Request(  # noqa: S310 - our own gateway URL
        f"{base}/api/ingress/raw",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            reply = json.loads(response.read() or b"{}")
            _say(f"render-signal: gateway answered {response.status}: {json.dumps(reply)}")
    except urllib.error.HTTPError as exc:
        _say(f"render-signal: gateway refused the email: {exc.code} {exc.read()[:300]!r}")
        return 1
    except OSError as exc:
        _say(f"render-signal: gateway unreachable at {base}: {exc}")
        return 1
    if args.wait <= 0 or args.file:
        return 0
    url, prefix = _resolve_redis(Path(args.env_file))
    entry = asyncio.run(_wait_delivery(url, prefix, marker, args.wait))
    if entry is None:
        _say(f"render-signal: no webhook log entry for {marker} within {args.wait:.0f}s")
        return 1
    elapsed = time.monotonic() - started
    _say(
        f"render-signal: webhook {entry.get('status')} ({entry.get('status_code')}) to"
        f" {entry.get('target')} in {elapsed:.2f}s — see the dashboard's webhook log"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="render-signal", description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", default=".env", help="dotenv file (default: ./.env)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Redis and all services, supervised")
    up.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="run N of each worker (ingest, offload, notify); default RENDER_SIGNAL_REPLICAS or 1",
    )
    up.set_defaults(func=cmd_up)
    status = sub.add_parser("status", help="show heartbeats and stream lag")
    status.add_argument("--wait", type=float, default=0.0, help="wait up to N s for the verdict ok")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)
    send = sub.add_parser("send", help="post a sample email to the HTTP ingress")
    send.add_argument("file", nargs="?", help="an .eml file (default: bundled sample)")
    send.add_argument("--url", default="", help="gateway base URL")
    send.add_argument("--wait", type=float, default=10.0, help="wait N s for the webhook log")
    send.set_defaults(func=cmd_send)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    raise SystemExit(args.func(args))


if __name__ == "__main__":
    main(sys.argv[1:])
