"""Deterministic R2 object keys: the same normalised link overwrites the same object.

``<provider>/<sha256(url)[0:8]>/<sha256(url)[8:16]>/<filename>`` where the
filename is the URL-decoded last path segment when it contains a dot, else
``file``.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote, urlsplit

__all__ = ["object_key"]

_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def _filename(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return "file"
    segment = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    # A decoded %2F or control character must not add key levels or break headers.
    segment = _UNSAFE.sub("_", segment).strip()
    if "." not in segment or segment in (".", ".."):
        return "file"
    return segment


def object_key(provider: str, normalised_url: str) -> str:
    """The R2 object key for ``normalised_url``."""
    digest = hashlib.sha256(normalised_url.encode("utf-8")).hexdigest()
    safe_provider = re.sub(r"[^a-z0-9_-]", "_", provider.lower()) or "unknown"
    return f"{safe_provider}/{digest[0:8]}/{digest[8:16]}/{_filename(normalised_url)}"
