"""The C allocator's thresholds: freed email-sized memory is reused, not faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# One "email": ten 400 KB buffers built and freed, as a parse or a delivery does.
_BURSTS = """
import resource, sys
from render_signal.common.allocator import tune_allocator
print(tune_allocator())
def burst():
    held = [bytearray(400_000) for _ in range(10)]
    del held
for _ in range(5):
    burst()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    burst()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's mallopt"
)


def _faults_per_burst(**env: str) -> tuple[str, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    out = subprocess.run(
        [sys.executable, "-c", _BURSTS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return out[0], float(out[1])


def test_tuned_process_reuses_freed_email_sized_memory() -> None:
    """glibc's defaults trim the 4 MB freed each burst and fault it in again; tuned, it stays."""
    applied, tuned = _faults_per_burst()
    assert applied == "True"
    assert tuned < 10, f"{tuned} minor faults per burst with the thresholds set"


@pytest.mark.parametrize(
    "env",
    [
        {"MALLOC_TRIM_THRESHOLD_": str(128 << 10), "MALLOC_MMAP_THRESHOLD_": str(128 << 10)},
        # A tunable at its default value: what glibc does untouched.
        {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"},
    ],
    ids=["malloc-variables", "glibc-defaults"],
)
def test_operator_allocator_settings_are_left_alone(env: dict[str, str]) -> None:
    """With glibc's own variables set, nothing is changed, and the freed memory faults again."""
    applied, faults = _faults_per_burst(**env)
    assert applied == "False"
    # 4 MB of fresh pages (1,000 of 4 KiB) each burst, less what glibc keeps at the top.
    assert faults > 500, f"only {faults} minor faults per burst: their values were overridden"
