"""Dashboard password check: plaintext, argon2, or a werkzeug pbkdf2/scrypt hash.

``DASHBOARD_PASSWORD`` may hold the password itself (compared in constant
time), an argon2 hash (``$argon2id$...``), or a hash produced by the original's
werkzeug (``pbkdf2:sha256:<iterations>$salt$hex`` or
``scrypt:<n>:<r>:<p>$salt$hex``), verified here with hashlib so no werkzeug
dependency is needed.
"""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["is_hash", "verify_password"]

_argon2 = PasswordHasher()


def _werkzeug(stored: str, password: str) -> bool:
    try:
        method, salt, expected = stored.split("$", 2)
        parts = method.split(":")
        if parts[0] == "pbkdf2":
            name = parts[1] if len(parts) > 1 else "sha256"
            iterations = int(parts[2]) if len(parts) > 2 else 600000
            if iterations > 10_000_000:
                return False
            derived = hashlib.pbkdf2_hmac(name, password.encode(), salt.encode(), iterations)
        elif parts[0] == "scrypt":
            n, r, p = (int(x) for x in parts[1:4]) if len(parts) >= 4 else (2**15, 8, 1)
            derived = hashlib.scrypt(
                password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p
            )
        else:
            return False
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(derived.hex(), expected)


def is_hash(stored: str) -> bool:
    """True when ``stored`` is a password hash this module verifies (not the password)."""
    return stored.startswith(("$argon2", "pbkdf2:", "scrypt:"))


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the configured ``stored`` value."""
    if stored.startswith("$argon2"):
        try:
            return _argon2.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    if stored.startswith(("pbkdf2:", "scrypt:")):
        return _werkzeug(stored, password)
    return hmac.compare_digest(stored.encode(), password.encode())
