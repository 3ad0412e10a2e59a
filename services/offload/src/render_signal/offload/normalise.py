"""Provider URL normalisation, exactly as the original R2 service did it.

Dropbox (``provider == "dropbox"``):

* HTML-unescape, then undo ``amp%3B`` and double-encoding (up to 3 passes,
  while the result still contains ``://``);
* force ``https``, lowercase the host, drop default ports, keep userinfo;
* path: unquote, collapse ``//``, strip the trailing ``/``, re-quote;
* query: drop keys with empty values except ``rlkey``; drop every ``dl``;
  de-duplicate pairs; append ``dl=1``; sort by key (case-insensitive) then
  value; drop the fragment.

Every other provider is only HTML-unescaped.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["normalise", "normalise_dropbox"]

_MULTI_SLASH = re.compile(r"/{2,}")
_AMP_ENCODED = re.compile(r"&amp%3B", re.IGNORECASE)


def _undo_encoding(url: str) -> str:
    # "&amp%3B" must go before unescaping: html.unescape turns a bare "&amp" into "&",
    # which would strand "%3B" in front of the next key.
    value = html.unescape(_AMP_ENCODED.sub("&", url.strip()))
    for _ in range(3):
        candidate = unquote(value.replace("amp%3B", "").replace("amp%3b", ""))
        # Keep a pass only while the result is still a URL; stop once stable.
        if candidate == value or "://" not in candidate:
            break
        value = candidate
    return value


def normalise_dropbox(url: str) -> str:
    """The canonical form of a Dropbox link (see module docstring)."""
    value = _undo_encoding(url)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return value
    host = (parts.hostname or "").lower()
    if not host:
        return value
    netloc = host
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{host}"
    if port is not None and port not in (80, 443):
        netloc = f"{netloc}:{port}"
    path = _MULTI_SLASH.sub("/", unquote(parts.path)).rstrip("/")
    path = quote(path, safe="/")
    pairs: list[tuple[str, str]] = []
    for key, val in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == "dl":
            continue
        if val == "" and key != "rlkey":
            continue
        if (key, val) not in pairs:
            pairs.append((key, val))
    pairs.append(("dl", "1"))
    pairs.sort(key=lambda kv: (kv[0].lower(), kv[1]))
    return urlunsplit(("https", netloc, path, urlencode(pairs), ""))


def normalise(provider: str, url: str) -> str:
    """Dropbox links get the full treatment; the others are only HTML-unescaped."""
    if provider.lower() == "dropbox":
        return normalise_dropbox(url)
    return html.unescape(url.strip())
