"""Fixtures and options for the integration tests.

Whole-pipeline fixtures (issue 8): ``e2e_pipeline`` starts real Redis (AOF),
Dovecot, the Worker in workerd, a recording receiver and the four services as
separate processes (``tests/integration/harness``). ``--fault-emails`` and
``--fault-seed`` size the fault run (``test_faults_run.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from render_signal.devstack.pytest_plugin import require_component

from .harness.pipeline import Pipeline, missing_components


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("render-signal e2e")
    group.addoption(
        "--fault-emails",
        type=int,
        default=200,
        help="emails injected by the fault run (test_faults_run.py); default 200",
    )
    group.addoption(
        "--fault-seed",
        type=int,
        default=None,
        help="seed of the fault schedule (default: random, printed so a run replays)",
    )
    group.addoption(
        "--fault-replicas",
        type=int,
        default=2,
        help="replicas of each worker in the fault run (default 2; 1 = the single-replica run)",
    )
    group.addoption(
        "--scale-seed",
        type=int,
        default=None,
        help="seed of the replica kills in test_scale_out.py (default: random, printed)",
    )
    group.addoption(
        "--fault-redis-fsync",
        default="always",
        choices=("always", "everysec"),
        help="Redis appendfsync during the fault run (everysec may lose 1 s on SIGKILL)",
    )


@pytest.fixture
def pipeline_factory(tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    """Build and start a :class:`Pipeline` (skips/fails cleanly when a part is missing)."""
    started: list[Pipeline] = []

    def make(**kwargs: Any) -> Pipeline:
        reason = missing_components(
            imap=kwargs.get("imap", True), worker=kwargs.get("worker", True)
        )
        require_component(reason is None, reason or "")
        pipeline = Pipeline(tmp_path / f"pipeline-{len(started)}", **kwargs)
        started.append(pipeline)
        return pipeline.start()

    try:
        yield make
    finally:
        for pipeline in started:
            pipeline.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show what the e2e, fault, console and scale-out runs measured (latency, counts, seed) even
    when they pass: pytest only shows captured output of failures."""
    measured = ("/test_e2e_", "/test_faults_", "/test_operator_console", "/test_scale_out")
    reports = [
        r
        for r in terminalreporter.stats.get("passed", [])
        if r.when == "call" and any(part in r.nodeid for part in measured)
    ]
    if not reports:
        return
    terminalreporter.section("end-to-end measurements")
    for report in reports:
        for line in report.capstdout.strip().splitlines():
            terminalreporter.write_line(f"{report.nodeid.rsplit('/', 1)[-1]}: {line.strip()}")
