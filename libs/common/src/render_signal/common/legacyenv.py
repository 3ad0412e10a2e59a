"""Variables the original (render_signal_server) read that render-signal does not.

An operator who copies the original's environment gets, from every service at
start, one WARNING line per such variable that is set, saying what replaces
it (:func:`warn_legacy_variables`). The original's variables that
render-signal honours (``FLASK_SECRET_KEY``, ``TRIGGER_PAGE_*``, ``WEBHOOK_*``,
``IMAP_*``, ``ENABLE_BACKGROUND_TASKS``, ``POLLING_*``, ``R2_*``, ``RENDER_*``,
...) are read by the settings modules and are not listed here: a test checks
that no variable in :data:`LEGACY_VARIABLES` is read by the code, so a
variable that becomes honoured leaves this table.

(The table is the data; longer than it is clever. ``docs/migrating.md`` has
the same mapping for people.)
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from types import MappingProxyType

__all__ = ["LEGACY_VARIABLES", "legacy_warnings", "warn_legacy_variables"]

logger = logging.getLogger(__name__)

_GUNICORN = (
    "not used: each service is its own process (uvicorn for the gateway); scale with "
    "replicas, graceful stop with DRAIN_TIMEOUT_SECONDS"
)
_STORE = (
    "the configuration lives in Redis only (REDIS_URL, REDIS_KEY_PREFIX), edited in the "
    "dashboard; import the original's JSON files once with POST /api/config/import_legacy"
)
_KEYS = "every Redis key is under REDIS_KEY_PREFIX; email dedup lasts EMAIL_DEDUP_TTL_SECONDS"
_PHP = "read by the PHP receiver, not by render-signal: set it on the receiver's host"

#: name -> what replaces it (shown after "LEGACY: NAME is set but ...").
LEGACY_VARIABLES: Mapping[str, str] = MappingProxyType(
    {
        # process model (Dockerfile / gunicorn)
        "GUNICORN_WORKERS": _GUNICORN,
        "GUNICORN_THREADS": _GUNICORN,
        "GUNICORN_TIMEOUT": _GUNICORN,
        "GUNICORN_GRACEFUL_TIMEOUT": _GUNICORN,
        "GUNICORN_KEEP_ALIVE": _GUNICORN,
        "GUNICORN_MAX_REQUESTS": _GUNICORN,
        "GUNICORN_MAX_REQUESTS_JITTER": _GUNICORN,
        "GUNICORN_CMD_ARGS": _GUNICORN,
        # background poller and its locks
        "BG_POLLER_LOCK_FILE": (
            "no file lock: the IMAP watcher is a singleton through the Redis lock "
            "render_signal:poller_lock (POLLER_LOCK_TTL_SECONDS, renewed while held)"
        ),
        "REDIS_LOCK_TTL_SECONDS": "POLLER_LOCK_TTL_SECONDS",
        "EMAIL_ID_INFLIGHT_LOCK_TTL_SECONDS": (
            "no in-flight lock: an accepted email is on a Redis stream and ingest "
            "claims it atomically before publishing"
        ),
        "EMAIL_ID_INFLIGHT_LOCK_PREFIX": _KEYS,
        "PROCESSED_EMAIL_IDS_REDIS_KEY": _KEYS,
        "PROCESSED_SUBJECT_GROUPS_REDIS_KEY": _KEYS,
        "SUBJECT_GROUP_REDIS_PREFIX": _KEYS,
        "SUBJECT_GROUP_TTL_SECONDS": _KEYS,
        "ENABLE_SUBJECT_GROUP_DEDUP": (
            "no subject-group dedup (it never fired in the original); emails are deduplicated "
            "by id and, across IMAP and Gmail push, by sender + subject + date"
        ),
        # config store and magic links
        "CONFIG_STORE_MODE": _STORE,
        "CONFIG_STORE_REDIS_PREFIX": _STORE,
        "CONFIG_STORE_DISABLE_REDIS": _STORE,
        "EXTERNAL_CONFIG_BASE_URL": _STORE,
        "CONFIG_API_TOKEN": _STORE,
        "MAGIC_LINK_TOKENS_FILE": (
            "magic links live in Redis as hashes; the original's links cannot be carried "
            "over: create new ones in the dashboard"
        ),
        # operations
        "RESTART_CMD": (
            "no restart endpoint: configuration applies without a restart, and the "
            "supervisor (Render, systemd, Kubernetes) restarts a stopped service"
        ),
        "TEST_API_KEY": (
            "no /api/test/* key: the dashboard's test tools use the login session, "
            "PROCESS_API_TOKEN guards the ingress"
        ),
        "CORS_ALLOWED_ORIGINS": "no cross-origin API: the dashboard is served by the gateway",
        "GMAIL_INGRESS_IP_CHECK_ENABLED": (
            "not applied: the Gmail ingress is guarded by PROCESS_API_TOKEN (Bearer)"
        ),
        "ORCHESTRATOR_ALLOW_LEGACY_DELEGATION": "no legacy orchestrator",
        "ORCH_TEST_RERAISE": "the original's test switch; nothing to set",
        "DEBUG_EMAIL": "LOG_LEVEL=DEBUG",
        "DEBUG_WEBHOOK": "LOG_LEVEL=DEBUG",
        "EMAIL_CONFIG_VALID": "the services check their settings at start",
        "IMAP_SSL": "IMAP_USE_SSL",
        # Make.com scenario control
        "MAKE_SCENARIO_ID_AUTOREPONDEUR": (
            "MAKE_SCENARIO_IDS (comma-separated) or the dashboard's Make scenarios"
        ),
        "MAKE_SCENARIO_ID_RECADRAGE": (
            "MAKE_SCENARIO_IDS (comma-separated) or the dashboard's Make scenarios"
        ),
        "MAKE_API_AUTH_TYPE": (
            "not needed: the Make API is called with 'Authorization: Token <MAKECOM_API_KEY>'"
        ),
        "MAKE_API_ORG_ID": "not sent: Make API calls are made with the API key alone",
        "MAKE_WEBHOOK_CONTROL_URL": (
            "no control webhook: scenarios are started and stopped through the Make API "
            "(MAKECOM_API_KEY, MAKE_SCENARIO_IDS)"
        ),
        "MAKE_WEBHOOK_API_KEY": "no control webhook: MAKECOM_API_KEY",
        # R2 credentials the original documented but never needed
        "R2_ACCESS_KEY_ID": "not needed: the R2 Worker writes to its bucket binding",
        "R2_SECRET_ACCESS_KEY": "not needed: the R2 Worker writes to its bucket binding",
        "R2_ACCOUNT_ID": "not needed: the R2 Worker writes to its bucket binding",
        # the PHP receiver's own environment
        "CONFIG_API_STORAGE_DIR": _PHP,
        "JSON_LOG_MAX_BYTES": _PHP,
        "GMAIL_CLIENT_ID": _PHP,
        "GMAIL_CLIENT_SECRET": _PHP,
        "GMAIL_REFRESH_TOKEN": _PHP,
        "GMAIL_FROM_EMAIL": _PHP,
        "GMAIL_FROM_NAME": _PHP,
        "AUTOREPONDEUR_TO": _PHP,
        "RECADRAGE_TO": _PHP,
        "GMAIL_OAUTH_CHECK_KEY": _PHP,
        "GMAIL_OAUTH_CHECK_INTERVAL_DAYS": _PHP,
    }
)


def legacy_warnings(env_set: Collection[str]) -> list[str]:
    """One line per legacy variable in ``env_set`` (the names set, non-blank), sorted."""
    return [
        f"LEGACY: {name} is set but render-signal does not read it; instead: "
        f"{LEGACY_VARIABLES[name]}"
        for name in sorted(set(env_set) & LEGACY_VARIABLES.keys())
    ]


def warn_legacy_variables(env_set: Collection[str]) -> int:
    """Log :func:`legacy_warnings` at WARNING; returns how many lines were logged."""
    lines = legacy_warnings(env_set)
    for line in lines:
        logger.warning("%s", line)
    return len(lines)
