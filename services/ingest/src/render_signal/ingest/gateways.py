"""Links rewritten by mail-security gateways, unwrapped to the link the sender wrote.

Corporate mail filters replace every link with one to their own checker; the
provider link is inside, encoded their way:

* Microsoft Safe Links: ``https://<region>.safelinks.protection.outlook.com/?url=<%-encoded>&data=...``;
* Proofpoint URL Defense v1: ``https://urldefense.proofpoint.com/v1/url?u=<%-encoded>&k=...``;
* Proofpoint v2: ``.../v2/url?u=<encoded>&d=...`` where ``-`` stands for ``%`` and ``_`` for ``/``;
* Proofpoint v3: ``https://urldefense.com/v3/__<url>__;<base64url>!!<tag>$``: in ``<url>``
  each ``*`` stands for the next character of the base64url-decoded text, and ``**X``
  for a run of them (``X`` in ``A-Za-z0-9-_`` = 2, 3, ... 65 characters);
* Mimecast: ``https://<region>.mimecast.com/s/<token>?domain=<host>`` (also
  ``*.mimecastprotect.com``). The token is opaque: only Mimecast's API can tell
  the target, so :func:`unwrap` answers ``target=None`` with the ``domain``
  (a ``url``/``u`` parameter, when a deployment adds one, is unwrapped).

Everything here is bounded string work on one URL already capped by the link
scanner; a malformed wrapper is "not unwrapped", never an error.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import string
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

__all__ = ["GATEWAY_DOMAINS", "Unwrapped", "unwrap"]

#: Hosts (and their subdomains) of the gateways handled here.
GATEWAY_DOMAINS = (
    "safelinks.protection.outlook.com",
    "safelinks.protection.office365.us",
    "urldefense.proofpoint.com",
    "urldefense.com",
    "mimecast.com",
    "mimecastprotect.com",
)
_RUNS = {c: n for n, c in enumerate(string.ascii_uppercase + string.ascii_lowercase, start=2)}
_RUNS.update({c: n for n, c in enumerate(string.digits + "-_", start=len(_RUNS) + 2)})
_V3 = re.compile(r"/v3/__(?P<url>.+?)__;(?P<bytes>[A-Za-z0-9_-]*)!")
_V3_TOKEN = re.compile(r"\*\*[A-Za-z0-9_-]|\*")


class Unwrapped(msgspec.Struct, frozen=True):
    """What a gateway link carried: the target URL (None: opaque) and the gateway."""

    gateway: str
    target: str | None
    #: Mimecast's ``domain`` parameter (the target's host) when the target is opaque.
    domain: str = ""


def _gateway_of(host: str) -> str | None:
    for domain in GATEWAY_DOMAINS:
        if host == domain or host.endswith("." + domain):
            return "mimecast" if domain.startswith("mimecast") else domain
    return None


def _param(query: str, *names: str) -> str | None:
    values = parse_qs(query[:4096], keep_blank_values=False)
    for name in names:
        if values.get(name):
            return values[name][0]
    return None


def _proofpoint_v3(url: str) -> str | None:
    match = _V3.search(url)
    if match is None:
        return None
    encoded = match.group("bytes")
    try:
        replacements = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    out: list[str] = []
    used = 0
    inner = unquote(match.group("url"))
    pos = 0
    for token in _V3_TOKEN.finditer(inner):
        count = 1 if token.group(0) == "*" else _RUNS[token.group(0)[2]]
        if used + count > len(replacements):
            return None  # more placeholders than characters: not a wrapper we understand
        out += [inner[pos : token.start()], replacements[used : used + count]]
        used += count
        pos = token.end()
    out.append(inner[pos:])
    return "".join(out)


def unwrap(url: str) -> Unwrapped | None:
    """The target inside a gateway link, or None when ``url`` is not a gateway link."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    gateway = _gateway_of(host)
    if gateway is None:
        return None
    if gateway.startswith("safelinks"):
        return Unwrapped("safelinks", _param(parts.query, "url"))
    if gateway == "mimecast":
        target = _param(parts.query, "url", "u")
        domain = "" if target else (_param(parts.query, "domain") or "").lower()
        return Unwrapped("mimecast", target, domain)
    path = parts.path
    if path.startswith("/v3/"):
        return Unwrapped("proofpoint", _proofpoint_v3(url))
    encoded = _param(parts.query, "u")
    if encoded is None:
        return Unwrapped("proofpoint", None)
    if path.startswith("/v2/"):
        encoded = unquote(encoded.translate(str.maketrans("-_", "%/")))
        return Unwrapped("proofpoint", html.unescape(encoded))
    return Unwrapped("proofpoint", encoded)  # v1: parse_qs already %-decoded it
