"""Child processes the harness starts, stops and kills: services and the Worker."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from render_signal.devstack.polling import wait_until

__all__ = ["REPO", "ServiceProcess", "WorkerProcess", "http_ok", "service_command"]

REPO = Path(__file__).resolve().parents[3]
WORKER_DIR = REPO / "deploy" / "r2-worker"
SERVE = WORKER_DIR / "scripts" / "serve.mjs"


def service_command(name: str) -> list[str]:
    """The service's console script (how production starts it), else ``python -m``."""
    script = Path(sys.executable).parent / f"render-signal-{name}"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", f"render_signal.{name}.main"]


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ServiceProcess:
    """One service as a separate process; output appended to ``<logdir>/<name>.log``.

    ``service`` is the program (``offload``) when ``name`` names one replica of
    it (``offload-1``).
    """

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        logdir: Path,
        ready_url: str | None,
        argv: list[str] | None = None,
        service: str | None = None,
    ) -> None:
        self.name = name
        self.service = service or name
        self.argv = argv or service_command(self.service)
        self.env = env
        self.log_path = logdir / f"{name}.log"
        self.ready_url = ready_url
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.pids: list[int] = []
        self.lock = threading.RLock()  # fault lanes and the reviver act concurrently

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with self.lock:
            if not self.alive():
                self._spawn()

    def revive(self) -> str | None:
        """Start again if the process exited on its own (a supervisor's job).

        Returns why it had exited (exit code and its last error log line), or None.
        """
        with self.lock:
            if self.process is None or self.alive():
                return None
            code = self.process.returncode
            if code == -signal.SIGKILL:
                return None  # our own SIGKILL: the fault lane restarts it after the outage
            errors = [
                line
                for line in self.tail(60).splitlines()
                if '"ERROR"' in line or '"CRITICAL"' in line or "Error" in line
            ]
            self._spawn()
            return f"exit {code}: {errors[-1][:300] if errors else '(no error line)'}"

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.pids.append(self.process.pid)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            return self.ready_url is None or http_ok(self.ready_url)

        wait_until(ready, timeout_s, lambda: f"{self.name} to be ready:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        with self.lock:
            self._kill()

    def _kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (a normal restart/deploy), SIGKILL after ``timeout_s``."""
        with self.lock:
            return self._stop(timeout_s)

    def restart(self, timeout_s: float = 30.0) -> int | None:
        """A normal restart: SIGTERM then start, under the lock so the reviver never
        mistakes the deliberate exit for a crash."""
        with self.lock:
            code = self._stop(timeout_s)
            self._spawn()
            return code

    def _stop(self, timeout_s: float) -> int | None:
        if not self.alive():
            return None if self.process is None else self.process.returncode
        assert self.process is not None
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._kill()
            return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class WorkerProcess:
    """The real R2 Worker in workerd (``deploy/r2-worker/scripts/serve.mjs``), fixed ports."""

    def __init__(self, token: str, provider_origin: str, port: int, admin_port: int) -> None:
        self.token = token
        self.provider_origin = provider_origin
        self.port = port
        self.admin_port = admin_port
        self.process: subprocess.Popen[str] | None = None
        self.stops = 0

    @staticmethod
    def available() -> bool:
        return (
            shutil.which("node") is not None
            and SERVE.is_file()
            and (WORKER_DIR / "node_modules").is_dir()
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout_s: float = 60.0) -> None:
        node = shutil.which("node")
        assert node is not None
        env = {
            **os.environ,
            "PORT": str(self.port),
            "ADMIN_PORT": str(self.admin_port),
            "R2_FETCH_TOKEN": self.token,
            "R2_PUBLIC_BASE_URL": "https://files.r2.test",
            "PROVIDER_ORIGIN": self.provider_origin,
        }
        self.process = subprocess.Popen(
            [node, str(SERVE)],
            cwd=WORKER_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        ready = threading.Event()
        stdout = self.process.stdout

        def read() -> None:
            for line in stdout:
                if line.startswith("READY"):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout_s) or self.process.poll() is not None:
            raise AssertionError(f"serve.mjs did not print READY (exit {self.process.poll()})")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.stops += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None
