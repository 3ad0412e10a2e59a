"""A private time zone whose minute boundary falls when the test wants it.

The time window is configured in whole minutes of ``POLLING_TIMEZONE`` and
notify reads the wall clock (no clock injection across processes). Instead of
waiting up to a minute for a real boundary, we write a TZif file with a UTC
offset to the second (RFC 8536, version 1, no transitions) and point every
service at it with ``PYTHONTZPATH``: the window then opens exactly when planned.
"""

from __future__ import annotations

import math
import struct
import time
from pathlib import Path

__all__ = ["shifted_zone"]


def _tzif(offset_s: int, abbr: bytes = b"E2E") -> bytes:
    chars = abbr + b"\0"
    header = b"TZif" + b"\0" + b"\0" * 15 + struct.pack(">6l", 0, 0, 0, 0, 1, len(chars))
    return header + struct.pack(">lBB", offset_s, 0, 0) + chars


def shifted_zone(directory: Path, opens_in_s: float) -> tuple[str, float]:
    """Write zone ``E2E/Shift`` under ``directory``; a local minute starts ``opens_in_s`` from now.

    Returns the zone key and the Unix time of that minute boundary.
    """
    boundary = math.ceil(time.time() + opens_in_s)
    offset = 3600 + (-boundary) % 60  # local(boundary) = boundary + offset, a multiple of 60
    (directory / "E2E").mkdir(parents=True, exist_ok=True)
    (directory / "E2E" / "Shift").write_bytes(_tzif(offset))
    return "E2E/Shift", float(boundary)
