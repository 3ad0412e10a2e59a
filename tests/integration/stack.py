"""Run ``render-signal up`` as a real process in a scratch directory, for tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from render_signal.devstack.polling import wait_until
from render_signal.devstack.ports import free_port

PORT_VARS = ("PORT", "INGEST_METRICS_PORT", "OFFLOAD_METRICS_PORT", "NOTIFY_METRICS_PORT")


class Stack:
    """``render-signal up`` in ``workdir`` with free ports; output captured to a file."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.log_path = workdir / "stack.log"
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("REDIS_URL", "RENDER_SIGNAL_", "WEBHOOK_", "PORT"))
        }
        self.env = {**base, **{var: str(free_port()) for var in PORT_VARS}, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "render_signal.devstack.cli", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def up(self, *args: str) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "render_signal.devstack.cli", "up", *args],
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def state(self) -> dict[str, object]:
        path = self.workdir / ".run" / "state.json"

        def written() -> bool:
            assert self.process is not None and self.process.poll() is None, self.output()
            return path.is_file()

        wait_until(written, 30, lambda: f"the state file; output:\n{self.output()}")
        return dict(json.loads(path.read_text()))

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a person would press it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); /proc tells the truth.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()
