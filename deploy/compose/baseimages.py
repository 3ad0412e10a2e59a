"""The four base images of the compose stack: pulled when a registry answers, else built here.

``docker-compose.yml`` names them with variables whose defaults are the upstream
images (``REDIS_IMAGE``, ``PROMETHEUS_IMAGE``, and the build args ``PYTHON_IMAGE``
and ``UV_IMAGE`` of ``deploy/Dockerfile``). For each one: the upstream image when
it is present or can be pulled, else a local stand-in built without any registry:

* a Debian root filesystem from the Debian mirror (``mmdebstrap``, minbase plus
  ca-certificates and the machine's own CAs from ``/usr/local/share/ca-certificates``,
  which an HTTPS proxy needs), imported as an image;
* Python, Redis and Prometheus: Debian's packages on it (``base/*.Containerfile``);
* uv: the static musl ``uv`` binary from its PyPI wheel (hash checked).

Caches, reused when present: the images themselves in the engine's storage (tags
carry a hash of their recipe, so a changed recipe builds anew), and the Debian
root filesystem and the uv wheel under ``RENDER_SIGNAL_IMAGE_CACHE``
(default ``/var/cache/render-signal/images``, or ``~/.cache/...`` when not root).
A file lock there keeps two runs on one machine from building the same thing twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.compose.engine import Engine, run_to_completion

__all__ = ["ROLES", "BaseImages", "MissingTool", "compose_image_defaults", "ensure_base_images"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RECIPES = HERE / "base"
SUITE = "bookworm"
HOST_CAS = Path("/usr/local/share/ca-certificates")
LOCAL_REPO = "localhost/render-signal-base"
PYPI_SIMPLE = "https://pypi.org/simple"

#: role -> the compose variable naming its image
ROLES = {
    "python": "PYTHON_IMAGE",
    "uv": "UV_IMAGE",
    "redis": "REDIS_IMAGE",
    "prometheus": "PROMETHEUS_IMAGE",
}
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--include=ca-certificates",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)

Say = Callable[[str], None]


class MissingTool(RuntimeError):
    """A tool needed to build the local base images is not installed."""


@dataclass(frozen=True)
class BaseImages:
    """Image reference per role (``python``, ``uv``, ``redis``, ``prometheus``)."""

    images: dict[str, str]

    def compose_env(self) -> dict[str, str]:
        """The compose variables (``PYTHON_IMAGE=...``) selecting these images."""
        return {ROLES[role]: ref for role, ref in self.images.items()}

    def build_args(self) -> list[str]:
        """``--build-arg`` flags for ``deploy/Dockerfile``."""
        args: list[str] = []
        for role in ("python", "uv"):
            if role in self.images:
                args += ["--build-arg", f"{ROLES[role]}={self.images[role]}"]
        return args


def compose_image_defaults() -> dict[str, str]:
    """``{"REDIS_IMAGE": "redis:7-alpine", ...}``: the defaults written in docker-compose.yml."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    found = dict(re.findall(r"\$\{(\w+_IMAGE):-([^}]+)\}", text))
    missing = set(ROLES.values()) - set(found)
    if missing:
        raise RuntimeError(f"docker-compose.yml has no default for {sorted(missing)}")
    return found


def default_cache_dir() -> Path:
    configured = os.environ.get("RENDER_SIGNAL_IMAGE_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/render-signal/images")
    return Path.home() / ".cache" / "render-signal" / "images"


def ensure_base_images(
    engine: Engine,
    roles: tuple[str, ...] = tuple(ROLES),
    *,
    say: Say = print,
    rebuild: bool = False,
    cache_dir: Path | None = None,
) -> BaseImages:
    """Upstream images where they are present or pullable, local stand-ins for the rest."""
    defaults = compose_image_defaults()
    images: dict[str, str] = {}
    missing: list[str] = []
    for role in roles:
        upstream = defaults[ROLES[role]]
        if not rebuild and (engine.image_exists(upstream) or engine.pull(upstream)):
            images[role] = upstream
        else:
            missing.append(role)
    if missing:
        say(f"base images: no registry image for {', '.join(missing)}; using local ones")
        builder = LocalBaseImages(engine, cache_dir or default_cache_dir(), say, rebuild)
        uv_version = defaults["UV_IMAGE"].rsplit(":", 1)[-1]
        with builder.locked():
            for role in missing:
                local = builder.uv(uv_version) if role == "uv" else builder.debian_based(role)
                images[role] = local
    return BaseImages(images)


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def mmdebstrap_arguments(cas: list[Path]) -> tuple[list[str], list[str]]:
    """mmdebstrap's options and mirrors for the Debian root filesystem.

    ``DEBIAN_MIRROR`` replaces the default mirror (deb.debian.org, to which mmdebstrap
    adds the updates and security suites of a stable release).
    """
    options = [*MMDEBSTRAP_OPTIONS, "--quiet"]
    if cas:
        copy = " ".join(str(p) for p in cas)
        options += [
            f"--customize-hook=copy-in {copy} /usr/local/share/ca-certificates",
            '--customize-hook=chroot "$1" update-ca-certificates >/dev/null 2>&1',
        ]
    mirror = os.environ.get("DEBIAN_MIRROR", "")
    return options, [mirror] if mirror else []


class LocalBaseImages:
    """Builds (or finds) the stand-ins; see the module docstring."""

    def __init__(self, engine: Engine, cache_dir: Path, say: Say, rebuild: bool) -> None:
        self.engine = engine
        self.cache_dir = cache_dir
        self.say = say
        self.rebuild = rebuild
        self._debian: str | None = None

    @contextmanager
    def locked(self, timeout: float = 1800) -> Iterator[None]:
        """One builder per machine at a time (another run may be building the same)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with (self.cache_dir / ".lock").open("w") as lock:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{self.cache_dir}/.lock held too long") from None
                    time.sleep(1)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _have(self, ref: str) -> bool:
        return not self.rebuild and self.engine.image_exists(ref)

    # -- Debian root filesystem ---------------------------------------------------
    def debian(self) -> str:
        """``localhost/render-signal-base/debian:bookworm-<recipe hash>``."""
        if self._debian:
            return self._debian
        cas = sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else []
        options, mirrors = mmdebstrap_arguments(cas)
        key = _digest(SUITE, *options, *mirrors, *(p.read_bytes() for p in cas))
        ref = f"{LOCAL_REPO}/debian:{SUITE}-{key}"
        if not self._have(ref):
            tarball = self.cache_dir / f"debian-{SUITE}-{key}.tar"
            if self.rebuild or not tarball.exists():
                tool = shutil.which("mmdebstrap")
                if tool is None:
                    raise MissingTool("mmdebstrap not installed (apt-get install mmdebstrap)")
                self.say(f"base images: mmdebstrap {SUITE} (minbase, {len(cas)} local CA(s))")
                started = time.monotonic()
                partial = tarball.with_suffix(".partial.tar")
                argv = [tool, *options, SUITE, str(partial), *mirrors]
                if run_to_completion(argv, None, timeout=1200, capture=False).returncode != 0:
                    raise RuntimeError("mmdebstrap failed (its output is above)")
                partial.rename(tarball)
                self.say(
                    f"base images: Debian root filesystem in {time.monotonic() - started:.1f} s"
                )
            self.engine.run(
                "import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["bash"]',
                str(tarball), ref, timeout=600,
            )  # fmt: skip
        self._debian = ref
        return ref

    def debian_based(self, role: str) -> str:
        """python / redis / prometheus from ``base/<role>.Containerfile``."""
        recipe = RECIPES / f"{role}.Containerfile"
        debian = self.debian()
        ref = f"{LOCAL_REPO}/{role}:{SUITE}-{_digest(debian, recipe.read_bytes())}"
        if not self._have(ref):
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as context:  # the recipes COPY nothing
                self.engine.build(
                    "-f", str(recipe), "--build-arg", f"DEBIAN_IMAGE={debian}", "-t", ref, context
                )
            self.say(f"base images: built {ref} in {time.monotonic() - started:.1f} s")
        return ref

    # -- uv ---------------------------------------------------------------------
    def uv(self, version: str) -> str:
        """``localhost/render-signal-base/uv:<version>`` (``/uv`` and ``/uvx``, as upstream)."""
        recipe = RECIPES / "uv.Containerfile"
        ref = f"{LOCAL_REPO}/uv:{version}-{_digest(recipe.read_bytes())}"
        if self._have(ref):
            return ref
        wheel = self._uv_wheel(version)
        with tempfile.TemporaryDirectory() as context:
            with zipfile.ZipFile(wheel) as archive:
                for name in ("uv", "uvx"):
                    target = Path(context, name)
                    target.write_bytes(archive.read(f"uv-{version}.data/scripts/{name}"))
                    target.chmod(0o755)
            self.engine.build("-f", str(recipe), "-t", ref, context)
        self.say(f"base images: built {ref} from the PyPI wheel")
        return ref

    def _uv_wheel(self, version: str) -> Path:
        """The musllinux wheel (static binary), from PyPI's JSON simple API, hash checked."""
        arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())
        wanted = f"uv-{version}-py3-none-musllinux_1_1_{arch}.whl"
        cached = self.cache_dir / wanted
        if cached.exists():
            return cached
        index = urllib.request.Request(  # noqa: S310 - fixed https URL
            f"{PYPI_SIMPLE}/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(index, timeout=60) as response:  # noqa: S310 - fixed https URL
            files = json.load(response)["files"]
        entry = next((f for f in files if f["filename"] == wanted), None)
        if entry is None:
            raise RuntimeError(f"{wanted} is not on PyPI")
        with urllib.request.urlopen(entry["url"], timeout=300) as response:  # noqa: S310
            data = response.read()
        if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
            raise RuntimeError(f"{wanted}: sha256 mismatch")
        partial = cached.with_suffix(".partial")
        partial.write_bytes(data)
        partial.rename(cached)
        return cached
