"""The one exception tree of render-signal (as httpx draws its own).

::

    RenderSignalError
    ├── SettingsError          the environment is wrong: refuse to start, one line per problem
    ├── ConfigInvalid          a runtime-config document failed validation (API: 400)
    ├── ConfigConflict         the document changed since it was read (retry the write)
    ├── RetryableError         transient: leave the work pending and try again later
    │   ├── DestinationUnresolved  an outbound host does not resolve (now)
    │   └── (ingest) ImapUnavailable ── ImapAuthError, (offload) WorkerRetryable
    └── PermanentError         retrying cannot help: dead-letter the entry now
        ├── MalformedEvent     a stream entry that is no known event version
        ├── DestinationRefused an outbound host or address the policy forbids (SSRF)
        └── (ingest) UnreadableEmail, (offload) WorkerRefused

Services derive their private errors from these (the gateway's ``ApiError`` and
``PageRedirect`` from :class:`RenderSignalError`). The streams consumer treats
:class:`PermanentError` as "dead-letter at once" and anything else a handler
raises as retryable: an unexpected bug retries a few times, then dead-letters
with its message, and never loses the entry.
"""

from __future__ import annotations

__all__ = [
    "ConfigConflict",
    "ConfigInvalid",
    "DestinationRefused",
    "DestinationUnresolved",
    "MalformedEvent",
    "PermanentError",
    "RenderSignalError",
    "RetryableError",
    "SettingsError",
]


class RenderSignalError(Exception):
    """Base of every error render-signal raises on purpose."""


class SettingsError(RenderSignalError):
    """Raised with one line per missing or invalid environment variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ConfigInvalid(RenderSignalError, ValueError):
    """A runtime-config document (or one of its fields) is invalid; the message says which.

    A ``ValueError`` too, so msgspec reports one raised while decoding with its path.
    """


class ConfigConflict(RenderSignalError):
    """The document changed since the caller read it (optimistic concurrency)."""


class RetryableError(RenderSignalError):
    """A transient failure: the work stays pending and is retried."""


class PermanentError(RenderSignalError):
    """A handler error that retrying cannot fix: dead-letter the entry now."""


class MalformedEvent(PermanentError):
    """A stream entry that cannot be decoded into a known event version."""


class DestinationRefused(PermanentError):
    """An outbound URL points at an address the policy forbids (``common.outbound``)."""


class DestinationUnresolved(RetryableError):
    """An outbound host name does not resolve; DNS may answer later."""
