"""The original's ``webhook_links.json`` journal (``WEBHOOK_LINKS_FILE``).

The gateway reads this file for the dashboard without importing this module,
so the format is the contract:

* A UTF-8 JSON **array** of objects, oldest first, pretty-printed (indent 2).
* Each object: ``source_url`` (the normalised source link), ``r2_url``,
  ``provider`` (``dropbox``, ``fromsmash``, ``swisstransfer``, ...),
  ``created_at`` (UTC ISO 8601, e.g. ``2026-01-25T10:00:00.123456+00:00``) and
  ``original_filename`` only when the Worker returned one. **No** ``email_id``.
* Strict dedup: an entry is not appended when one with the same
  ``(source_url, r2_url, provider)`` already exists.
* Rotation: only the last ``R2_LINKS_MAX_ENTRIES`` (default 1000) are kept.
* Writers take an exclusive ``fcntl.flock`` on ``<file>.lock`` around the
  read-modify-write, write a temp file in the same directory, fsync it and
  ``os.replace`` it over the file, so readers always see a complete file
  (readers need no lock). A corrupt or non-array file is treated as empty
  (with a warning) and rewritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["LinksFile", "make_entry"]

logger = logging.getLogger(__name__)


def make_entry(
    source_url: str, r2_url: str, provider: str, original_filename: str | None = None
) -> dict[str, str]:
    """One journal object in the original's schema."""
    entry = {
        "source_url": source_url,
        "r2_url": r2_url,
        "provider": provider,
        "created_at": datetime.now(UTC).isoformat(),
    }
    if original_filename:
        entry["original_filename"] = original_filename
    return entry


class LinksFile:
    """Append-with-dedup to the JSON array file under an exclusive lock (blocking I/O)."""

    def __init__(self, path: str | Path, max_entries: int = 1000) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.max_entries = max(1, max_entries)

    def read(self) -> list[dict[str, Any]]:
        """Current entries; [] when missing or corrupt."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            data = json.loads(text) if text.strip() else []
        except ValueError:
            logger.warning("LINKS: %s is not valid JSON; treating it as empty", self.path)
            return []
        if not isinstance(data, list):
            logger.warning("LINKS: %s is not a JSON array; treating it as empty", self.path)
            return []
        return [item for item in data if isinstance(item, dict)]

    def append(self, entries: list[dict[str, str]]) -> int:
        """Add ``entries`` (deduplicated), keep the newest ``max_entries``; returns added count."""
        if not entries:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                current = self.read()
                seen = {(e.get("source_url"), e.get("r2_url"), e.get("provider")) for e in current}
                added = 0
                for entry in entries:
                    key = (entry["source_url"], entry["r2_url"], entry["provider"])
                    if key in seen:
                        continue
                    seen.add(key)
                    current.append(entry)
                    added += 1
                if added:
                    self._write(current[-self.max_entries :])
                return added
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _write(self, items: list[dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from the gateway's user
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(items, handle, ensure_ascii=False, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
