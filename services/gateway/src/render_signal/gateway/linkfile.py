"""The file link journal (``WEBHOOK_LINKS_FILE``): merge entries atomically.

Writers (offload, and the gateway's legacy import) take an ``fcntl`` lock on
``<file>.lock``, write a temporary file in the same folder and ``os.replace``
it, so a reader never sees a half-written array.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["merge_links"]

MAX_ENTRIES = 5000


def merge_links(path: Path, entries: list[dict[str, Any]]) -> int:
    """Add ``entries`` (by ``source_url``, new ones win); returns how many were new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            existing: list[dict[str, Any]] = []
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, list):
                    existing = [e for e in loaded if isinstance(e, dict)]
            by_source = {str(e.get("source_url")): e for e in existing if e.get("source_url")}
            added = sum(1 for e in entries if e["source_url"] not in by_source)
            for entry in entries:
                by_source[entry["source_url"]] = entry
            merged = list(by_source.values())[-MAX_ENTRIES:]
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(merged, handle, ensure_ascii=False, indent=2)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return added
