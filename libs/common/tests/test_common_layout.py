"""The layout rules of issue 11, checked on the source trees (acceptance 2, 3, 5).

* No Redis key or stream name is spelled outside ``common/keys.py``: every key
  :class:`Keys` builds is cut into its fixed fragments (``notify:scheduled``,
  ``heartbeat:``, ``mail.raw``...), and no string literal in a ``src/`` tree
  (docstrings aside) may start with one or with the default prefix.
* No service imports another; ``render_signal.common`` imports no dev tooling
  and no service; the services' declared dependencies do not include the dev
  member.
* The links file (``WEBHOOK_LINKS_FILE``) is written by one module.
* A module over 300 lines says why in its docstring.
"""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from render_signal.common.keys import DEFAULT_PREFIX, Keys

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("ingest", "offload", "notify", "gateway")
#: Event type names (``<stream>/<version>``, ``common.events``) are a different contract.
EVENT_TYPE = re.compile(r"^mail\.[a-z]+/\d+$")


def src_files() -> Iterator[Path]:
    for tree in [ROOT / "libs/common/src", ROOT / "libs/devstack/src"] + [
        ROOT / f"services/{s}/src" for s in SERVICES
    ]:
        yield from sorted(tree.rglob("*.py"))


def key_fragments() -> set[str]:
    """The fixed parts of every key :class:`Keys` builds (arguments and prefix cut out)."""
    sample = Keys("\x00")
    fragments: set[str] = set()
    for name, member in inspect.getmembers(Keys):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            value = getattr(sample, name)
        elif inspect.isfunction(member):
            params = [p for p in inspect.signature(member).parameters if p != "self"]
            bound = getattr(sample, name)
            value = bound(*["\x00\x01"] * len(params))
        else:
            continue
        if isinstance(value, str):
            fragments.update(p for p in re.split("[\x00\x01]+", value) if len(p) >= 4)
    # Plain words ("emails", "lastseen") are also English; only key-shaped ones count.
    return {f for f in fragments if re.search(r"[:._]", f)}


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """String literals of ``path``, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docstrings:
            continue
        if isinstance(node.value, str):
            yield node.lineno, node.value


def test_the_fragments_cover_the_keys() -> None:
    fragments = key_fragments()
    assert {"notify:scheduled", "heartbeat:", "mail.raw", "gateway:session:"} <= fragments


def test_no_redis_key_is_spelled_outside_keys_module() -> None:
    fragments = key_fragments()
    found = []
    for path in src_files():
        if path.name == "keys.py" and path.parent.name == "common":
            continue
        for line, text in literals(path):
            if " " in text or EVENT_TYPE.match(text):
                continue  # a sentence or an event type name, not a key
            if text.startswith(DEFAULT_PREFIX) or any(text.startswith(f) for f in fragments):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not found, "Redis keys spelled outside common/keys.py:\n" + "\n".join(found)


def imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("render_signal.")}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_itself_and_common(service: str) -> None:
    for path in (ROOT / f"services/{service}/src").rglob("*.py"):
        others = imported_packages(path) - {service, "common"}
        assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"


def test_common_imports_no_service_and_no_dev_tooling() -> None:
    for path in (ROOT / "libs/common/src").rglob("*.py"):
        assert imported_packages(path) <= {"common"}, path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8")
        assert "import pytest" not in text and "argparse" not in text, path.relative_to(ROOT)


@pytest.mark.parametrize("member", ["libs/common", *(f"services/{s}" for s in SERVICES)])
def test_runtime_dependencies_do_not_pull_the_dev_member(member: str) -> None:
    project = tomllib.loads((ROOT / member / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = project["project"].get("dependencies", [])
    assert not [d for d in dependencies if "devstack" in d], member


def test_the_links_file_has_one_writer() -> None:
    writers = [
        path.relative_to(ROOT)
        for path in src_files()
        if "os.replace(" in path.read_text(encoding="utf-8")
        and "links" in path.read_text(encoding="utf-8").lower()
    ]
    assert [str(w) for w in writers] == ["libs/common/src/render_signal/common/linkjournal.py"]


def test_long_modules_say_why() -> None:
    unexplained = []
    for path in src_files():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= 300:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "300 lines" not in docstring:
            unexplained.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not unexplained, "modules over 300 lines without a reason:\n" + "\n".join(unexplained)
