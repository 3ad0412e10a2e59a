"""Standard Webhooks headers: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signing secret (``WEBHOOK_SIGNING_SECRET``) is read two ways: a value
starting with ``whsec_`` is the standard's form (base64 key after the
prefix), exactly what the reference ``standardwebhooks`` library takes; any
other value is used as raw UTF-8 key bytes. Receivers of a raw secret verify
with ``Webhook(base64(secret))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["secret_key", "sign", "webhook_headers", "webhook_id"]


def webhook_id(email_id: str, target_url: str) -> str:
    """Stable per (email, target): the receiver's idempotency key."""
    digest = hashlib.sha256(f"{email_id}|{target_url}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def secret_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return headers
