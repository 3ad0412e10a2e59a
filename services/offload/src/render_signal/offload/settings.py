"""Offload settings, read once in ``main()`` from the environment."""

from __future__ import annotations

import msgspec
from render_signal.common.settings import CommonSettings, EnvReader, read_common

__all__ = ["OffloadSettings", "read_settings"]


class OffloadSettings(msgspec.Struct, frozen=True, kw_only=True):
    """R2 offload is on only when enabled and both endpoint and token are set."""

    common: CommonSettings
    enabled: bool
    endpoint: str
    token: str
    bucket: str
    public_base_url: str
    links_file: str
    links_max_entries: int
    timeout_s: float
    folder_timeout_s: float
    concurrency: int
    retries: int
    breaker_failures: int
    breaker_cooldown_s: float
    reuse_max_age_s: float


def read_settings(env: EnvReader) -> OffloadSettings:
    common = read_common(env, "offload")
    wanted = env.boolean("R2_FETCH_ENABLED", False)
    endpoint = env.url("R2_FETCH_ENDPOINT")
    token = env.secret("R2_FETCH_TOKEN", required=False)
    return OffloadSettings(
        common=common,
        enabled=wanted and bool(endpoint) and bool(token),
        endpoint=endpoint,
        token=token,
        bucket=env.string("R2_BUCKET_NAME"),
        public_base_url=env.string("R2_PUBLIC_BASE_URL"),
        links_file=env.string("WEBHOOK_LINKS_FILE", "data/webhook_links.json"),
        links_max_entries=env.integer("R2_LINKS_MAX_ENTRIES", 1000, minimum=1),
        timeout_s=env.number("R2_FETCH_TIMEOUT_SECONDS", 15.0, minimum=0.1),
        folder_timeout_s=env.number("R2_FETCH_TIMEOUT_DROPBOX_SCL_FO", 120.0, minimum=0.1),
        concurrency=env.integer("R2_FETCH_CONCURRENCY", 4, minimum=1, maximum=64),
        retries=env.integer("R2_FETCH_RETRIES", 2, minimum=0, maximum=10),
        breaker_failures=env.integer("R2_BREAKER_FAILURES", 3, minimum=1, maximum=1000),
        breaker_cooldown_s=env.number("R2_BREAKER_COOLDOWN_SECONDS", 30.0, minimum=0.0),
        # R2 objects expire (24 h cleanup); reuse a journalled r2_url only well before that.
        reuse_max_age_s=env.number("R2_LINK_REUSE_MAX_AGE_SECONDS", 43200.0, minimum=0.0),
    )
