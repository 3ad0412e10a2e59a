"""The pytest plugin keeps test runs off the developer's checkout.

A nested pytest runs in a throwaway "checkout" (a folder with ``.git``), with a
dev ``.env`` there as ``make run`` writes it: the run fails, naming the file,
when a test writes into the checkout, and a test reading settings never sees
the ``.env`` values nor the checkout's links file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LEAKY = """
from pathlib import Path

def test_writes_into_the_checkout():
    Path("data").mkdir(exist_ok=True)
    Path("data/webhook_links.json").write_text("[]")
"""

CLEAN = """
import os
from render_signal.common.envreader import EnvReader

def test_reads_no_dev_env(tmp_path):
    env = EnvReader.from_process()
    assert env.raw("SECRET_KEY") is None, "the checkout's .env was read"
    assert not os.environ["WEBHOOK_LINKS_FILE"].startswith(os.getcwd())
    (tmp_path / "fine.txt").write_text("tmp_path is not the checkout")
"""


def run_in_checkout(root: Path, test: str) -> subprocess.CompletedProcess[str]:
    (root / ".git").mkdir(parents=True)
    (root / ".env").write_text("SECRET_KEY=from-the-dev-env-file\n")
    (root / "test_it.py").write_text(test)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("RENDER_SIGNAL_ENV_FILE", None)
    env.pop("WEBHOOK_LINKS_FILE", None)
    env.pop("SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_run_that_writes_into_the_checkout_fails_and_names_the_file(tmp_path: Path) -> None:
    run = run_in_checkout(tmp_path / "checkout", LEAKY)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "files the tests left in the checkout" in output, output
    assert "data/webhook_links.json" in output, output


def test_tests_never_read_the_dev_env_nor_write_the_checkout_links_file(tmp_path: Path) -> None:
    run = run_in_checkout(tmp_path / "checkout", CLEAN)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 passed" in output, output
