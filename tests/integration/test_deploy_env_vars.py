"""Every environment variable the code reads is documented, and vice versa.

The scanner parses services/*/src, libs/common/src and libs/devstack/src (minus
the pytest plugin and its container helper, which read test-only variables:
``DOCKER_HOST``, ``REDIS_IMAGE`` for the test Redis) for:

* ``EnvReader`` calls: ``env.string/boolean/integer/number("X", default, *aliases)``
  and ``env.secret/url/csv/required/raw("X", *aliases)``; legacy aliases count;
* ``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")`` and
  ``self._env.get("X")`` (the reader's own lookups).

Documentation = the root ``.env.example`` (``X=`` or ``# X=`` lines) and the
README configuration table (backticked names in a table's first column). The
comparison runs against whatever versions of those files exist; while either is
missing the documentation tests skip and say so.

The original's variables that render-signal does not read are the "known
legacy" table (``render_signal.common.legacyenv``): never read by the code (a
variable that becomes honoured leaves the table), each one named in the
migration guide, and a documentation mention of one is not stale.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from render_signal.common.legacyenv import LEGACY_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
TYPED_WITH_DEFAULT = {"string", "boolean", "integer", "number"}
NAME_THEN_ALIASES = {"secret", "url", "csv", "required", "raw"}
VAR = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Names built at run time in read_common(): f"{service.upper()}_METRICS_PORT", or PORT.
DYNAMIC_PORT_VARS = {"INGEST_METRICS_PORT", "OFFLOAD_METRICS_PORT", "NOTIFY_METRICS_PORT", "PORT"}
# Read from the platform, not configured by people.
PLATFORM_VARS = {"HOSTNAME", "PATH"}


def source_files() -> list[Path]:
    files = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]
    test_only = {"pytest_plugin.py", "containers.py"}
    return sorted(p for p in files if not (p.parent.name == "devstack" and p.name in test_only))


def _const(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and VAR.match(node.value):
        return node.value
    return None


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or ``self._env`` / ``self._environ``."""
    return isinstance(node, ast.Attribute) and node.attr in ("environ", "_env", "_environ")


def scan(path: Path) -> tuple[set[str], list[str]]:
    """Variable names read in ``path``, and descriptions of non-constant names."""
    found: set[str] = set()
    dynamic: list[str] = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            if name := _const(node.slice):
                found.add(name)
            continue
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, owner = node.func.attr, node.func.value
        args = node.args
        environ_get = method in ("get", "pop") and _is_environ(owner)
        os_getenv = method == "getenv" and isinstance(owner, ast.Name) and owner.id == "os"
        if (environ_get or os_getenv) and args:
            if name := _const(args[0]):
                found.add(name)
        elif isinstance(owner, ast.Name) and owner.id in ("env", "reader", "self") and args:
            if method in TYPED_WITH_DEFAULT:
                names = [args[0], *args[2:]]
            elif method in NAME_THEN_ALIASES:
                names = list(args)
            else:
                continue
            for arg in names:
                if name := _const(arg):
                    found.add(name)
                elif arg is names[0]:
                    dynamic.append(f"{path.relative_to(ROOT)}:{node.lineno}: env.{method}(...)")
    return found, dynamic


def code_env_vars() -> tuple[set[str], list[str]]:
    found: set[str] = set()
    dynamic: list[str] = []
    for path in source_files():
        names, dyn = scan(path)
        found |= names
        dynamic += dyn
    return found, dynamic


def read_in_code() -> set[str]:
    found, _ = code_env_vars()
    return (found | DYNAMIC_PORT_VARS) - PLATFORM_VARS


def env_example_vars() -> set[str] | None:
    path = ROOT / ".env.example"
    if not path.is_file():
        return None
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def readme_table_vars() -> set[str] | None:
    path = ROOT / "README.md"
    if not path.is_file():
        return None
    names = set()
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("|"):
            first = line.strip().strip("|").split("|")[0]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names or None


def compose_only_vars() -> set[str]:
    """Variables that only docker-compose.yml interpolates (ports, image tags...)."""
    text = (ROOT / "docker-compose.yml").read_text()
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def test_scanner_finds_the_known_variables_and_aliases() -> None:
    found, dynamic = code_env_vars()
    for name in (
        "REDIS_URL",
        "REDIS_KEY_PREFIX",
        "RENDER_SIGNAL_ENV",
        "RENDER_SIGNAL_ENV_FILE",
        "SECRET_KEY",
        "FLASK_SECRET_KEY",  # alias
        "DASHBOARD_PASSWORD",
        "TRIGGER_PAGE_PASSWORD",  # alias
        "PROCESS_API_TOKEN",
        "WEBHOOK_URL",
        "LOG_LEVEL",
        "FLASK_LOG_LEVEL",  # alias after a default
        "METRICS_HOST",
    ):
        assert name in found, name
    # Defaults are not variable names ("INFO" is LOG_LEVEL's default).
    assert "INFO" not in found
    # Computed names: the per-service port variable in read_common(), and the
    # reader's own methods passing their argument on.
    assert all(d.split(":")[0].endswith(("settings.py", "envreader.py")) for d in dynamic), dynamic


def test_every_variable_read_by_the_code_is_in_env_example() -> None:
    documented = env_example_vars()
    if documented is None:
        pytest.skip(".env.example not written yet (the lead owns it)")
    missing = sorted(read_in_code() - documented)
    assert not missing, f"read by the code but absent from .env.example: {missing}"


def test_every_variable_read_by_the_code_is_in_the_readme_table() -> None:
    documented = readme_table_vars()
    if documented is None:
        pytest.skip("README.md has no configuration table yet (the lead owns it)")
    missing = sorted(read_in_code() - documented)
    assert not missing, f"read by the code but absent from the README table: {missing}"


@pytest.mark.parametrize("source", [".env.example", "README.md"])
def test_every_documented_variable_is_read_somewhere(source: str) -> None:
    documented = env_example_vars() if source == ".env.example" else readme_table_vars()
    if documented is None:
        pytest.skip(f"{source} (with its variables) not written yet (the lead owns it)")
    known = read_in_code() | compose_only_vars() | PLATFORM_VARS | set(LEGACY_VARIABLES)
    stale = sorted(documented - known)
    assert not stale, f"documented in {source} but read by no code nor compose: {stale}"


def test_the_known_legacy_variables_are_not_read_by_the_code() -> None:
    honoured = sorted(set(LEGACY_VARIABLES) & read_in_code())
    assert not honoured, f"read by the code, so not legacy: remove from legacyenv {honoured}"


def test_every_known_legacy_variable_is_in_the_migration_guide() -> None:
    guide = (ROOT / "docs" / "migrating.md").read_text()
    missing = sorted(n for n in LEGACY_VARIABLES if f"`{n}`" not in guide)
    assert not missing, f"absent from docs/migrating.md: {missing}"
