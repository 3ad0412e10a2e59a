"""Gateway settings, read once in ``main()`` from the environment."""

from __future__ import annotations

import msgspec
from render_signal.common.settings import CommonSettings, EnvReader, read_common

__all__ = ["RENDER_SERVICE_NAMES", "GatewaySettings", "RenderService", "read_settings"]

#: The Render services the deploy trigger redeploys, workers first (the gateway that
#: answers the request is replaced last).
RENDER_SERVICE_NAMES = ("ingest", "offload", "notify", "gateway")


class RenderService(msgspec.Struct, frozen=True, kw_only=True):
    """One Render service to redeploy: its Deploy Hook and/or its id for the Render API."""

    name: str
    hook_url: str = ""
    service_id: str = ""


class GatewaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """Auth secrets are required; legacy ``TRIGGER_PAGE_*``/``FLASK_SECRET_KEY`` accepted."""

    common: CommonSettings
    host: str
    secret_key: str
    dashboard_user: str
    dashboard_password: str
    process_api_token: str
    magic_link_ttl_s: int
    public_base_url: str
    trusted_proxies: tuple[str, ...]
    max_ingress_bytes: int
    #: Configured services only (a hook or an id), in RENDER_SERVICE_NAMES order.
    render_services: tuple[RenderService, ...]
    render_api_key: str
    render_api_base: str
    render_clear_cache: str
    render_image_url: str
    deploy_cmd: str
    webhook_links_file: str
    r2_public_base_url: str = ""
    links_max_entries: int = 1000
    session_idle_s: int = 1800
    session_absolute_s: int = 28800
    login_max_failures: int = 5
    login_lockout_s: int = 30
    render_deploy_hook_prefix: str = "https://api.render.com/deploy/"


def read_settings(env: EnvReader) -> GatewaySettings:
    common = read_common(env, "gateway")
    clear_cache = env.string("RENDER_DEPLOY_CLEAR_CACHE", "do_not_clear")
    if clear_cache not in ("clear", "do_not_clear"):
        clear_cache = "do_not_clear"
    return GatewaySettings(
        common=common,
        host=env.string("HOST", "127.0.0.1" if env.dev_mode else "0.0.0.0"),  # noqa: S104
        secret_key=env.secret("SECRET_KEY", "FLASK_SECRET_KEY"),
        dashboard_user=env.string("DASHBOARD_USER", "admin", "TRIGGER_PAGE_USER"),
        dashboard_password=env.secret("DASHBOARD_PASSWORD", "TRIGGER_PAGE_PASSWORD"),
        process_api_token=env.secret("PROCESS_API_TOKEN"),
        magic_link_ttl_s=max(60, env.integer("MAGIC_LINK_TTL_SECONDS", 900, minimum=1)),
        public_base_url=env.string("PUBLIC_BASE_URL"),
        trusted_proxies=env.csv("TRUSTED_PROXIES"),
        max_ingress_bytes=env.integer("MAX_EMAIL_BYTES", 25 * 1024 * 1024, minimum=1024),
        render_services=_render_services(env),
        render_api_key=env.secret("RENDER_API_KEY", required=False),
        render_api_base=env.string("RENDER_API_BASE_URL", "https://api.render.com"),
        render_clear_cache=clear_cache,
        render_image_url=env.string("RENDER_IMAGE_URL"),
        deploy_cmd=env.string("DEPLOY_CMD"),
        webhook_links_file=env.string("WEBHOOK_LINKS_FILE", "data/webhook_links.json"),
        r2_public_base_url=env.string("R2_PUBLIC_BASE_URL"),
        links_max_entries=env.integer("R2_LINKS_MAX_ENTRIES", 1000, minimum=1),
        session_idle_s=env.integer("SESSION_IDLE_SECONDS", 1800, minimum=60),
        session_absolute_s=env.integer("SESSION_ABSOLUTE_SECONDS", 28800, minimum=60),
        login_max_failures=env.integer("LOGIN_MAX_FAILURES", 5, minimum=1),
        login_lockout_s=env.integer("LOGIN_LOCKOUT_SECONDS", 30, minimum=1),
        render_deploy_hook_prefix=_hook_prefix(env),
    )


RENDER_HOOK_PREFIX = "https://api.render.com/deploy/"


def _render_services(env: EnvReader) -> tuple[RenderService, ...]:
    """Per-service hooks and ids; the original's single-service names are the gateway's."""
    hooks = {
        "ingest": env.secret("RENDER_DEPLOY_HOOK_URL_INGEST", required=False),
        "offload": env.secret("RENDER_DEPLOY_HOOK_URL_OFFLOAD", required=False),
        "notify": env.secret("RENDER_DEPLOY_HOOK_URL_NOTIFY", required=False),
        "gateway": env.secret(
            "RENDER_DEPLOY_HOOK_URL_GATEWAY", "RENDER_DEPLOY_HOOK_URL", required=False
        ),
    }
    ids = {
        "ingest": env.string("RENDER_SERVICE_ID_INGEST"),
        "offload": env.string("RENDER_SERVICE_ID_OFFLOAD"),
        "notify": env.string("RENDER_SERVICE_ID_NOTIFY"),
        "gateway": env.string("RENDER_SERVICE_ID_GATEWAY", "", "RENDER_SERVICE_ID"),
    }
    return tuple(
        RenderService(name=name, hook_url=hooks[name], service_id=ids[name])
        for name in RENDER_SERVICE_NAMES
        if hooks[name] or ids[name]
    )


def _hook_prefix(env: EnvReader) -> str:
    """The accepted deploy-hook prefix: Render's, overridable in dev mode only.

    Tests point it at a loopback stand-in; in production the hook must be
    Render's, so a changed prefix there is a configuration error.
    """
    prefix = env.string("RENDER_DEPLOY_HOOK_PREFIX", RENDER_HOOK_PREFIX)
    if prefix != RENDER_HOOK_PREFIX and not env.dev_mode:
        env.problems.append("RENDER_DEPLOY_HOOK_PREFIX: can only be changed in dev mode")
        return RENDER_HOOK_PREFIX
    return prefix
