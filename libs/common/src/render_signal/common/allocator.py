"""The C allocator's two thresholds, set once when a service starts.

Why: glibc hands the free memory at the top of its heap back to the kernel once
more than ``M_TRIM_THRESHOLD`` of it is free (by default twice the largest block
it has freed, about 1 MB with these emails), and serves blocks above
``M_MMAP_THRESHOLD`` from fresh mappings. Parsing, publishing or delivering one
email builds and frees a few MB of bytes and strings (the raw email, its decoded
parts, the bodies on the stream, the webhook's JSON), so every next email wrote
into freshly zeroed pages again: at saturation about 1,300 minor page faults
per email in ingest and 900 in notify, 6 to 8 % of the services' CPU (``perf``:
``exc_page_fault`` under ``memmove`` and the ``str`` decoders). Keeping up to
:data:`TRIM_THRESHOLD` free at the top and mapping directly only blocks above
:data:`MMAP_THRESHOLD` removes those faults; an email larger than that still
gets, and returns, its own mapping, so one huge email does not leave the
process holding its size.

An operator who sets glibc's own variables (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES``) keeps them: nothing is changed
then. On a C library without ``mallopt`` (musl, macOS) nothing is changed either.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Final

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_allocator"]

logger = logging.getLogger(__name__)

#: Blocks above this come from (and go back to) their own mapping.
MMAP_THRESHOLD: Final = 4 << 20
#: Free memory kept at the top of the heap before any goes back to the kernel.
TRIM_THRESHOLD: Final = 16 << 20

# glibc's <malloc.h> parameter numbers.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_OPERATOR_SETTINGS: Final = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def tune_allocator() -> bool:
    """Set the thresholds above; False when left alone (the operator's or no ``mallopt``)."""
    if any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 for a value it refuses.
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    if not applied:
        logger.warning("PROCESS: the C allocator refused its thresholds; left as they were")
    return applied
