"""Every shared Redis key and stream name, in one place (as arq's ``constants.py``).

All keys of a deployment live under one prefix (``REDIS_KEY_PREFIX``, default
``render_signal:``); :class:`Keys` builds them from it, so no other module
spells a key. Streams and their consumer groups:

=================  ==========  ====================================================
stream             group       entries
=================  ==========  ====================================================
``mail.raw``       ``ingest``  emails as they arrived (IMAP, Gmail push, raw upload)
``mail.received``  ``offload`` parsed, classified emails
``mail.offloaded`` ``notify``  emails whose links were offered to R2
``<stream>.dlq``   --          entries that failed ``max_deliveries`` times
=================  ==========  ====================================================

Consumers are named ``<service>-<instance>`` (:func:`consumer_name`), where the
instance is stable per replica (pod or host name plus ``RENDER_SIGNAL_REPLICA``),
so a restarted replica re-reads its own pending entries.

Other keys (``<p>`` is the prefix), by owner (the one module that writes them):

* common: ``<p>heartbeat:<service>:<instance>`` (heartbeat, TTL), ``<p>lastseen``,
  ``<p>live:<service>-<instance>`` (liveness: the short-TTL key whose expiry lets
  other replicas take over what that process held, ``common.liveness``),
  ``<p>applied:<service>:<instance>`` (config a service applies),
  ``<p>email:<id>``, ``<p>email:<id>:events``, ``<p>emails`` (per-email timeline,
  written by ingest, offload and notify), ``<p>probe:<service>`` and
  ``<p>probe:result:<id>`` (operator tests run by the service that owns the resource),
  ``<p>config:<name>`` / ``<p>config:changed`` (config store, written by the gateway);
* ingest: ``<p>poller_lock`` (exactly ``render_signal:poller_lock``),
  ``<p>ingest:seen:<email_id>``, ``<p>ingest:fp:<fingerprint>`` (copies of one
  sender + subject, for cross-path dedup), ``<p>ingest:imap:checkpoint:<mailbox>``;
* offload: ``<p>offload:done:<event_id>``, ``<p>offload:links`` (+ ``:index``,
  ``:unfiled``);
* notify: ``<p>notify:jobs|scheduled|leases|deadletters|disabled_targets``,
  ``<p>notify:deferred|overrides|targets``,
  ``<p>notify:sent:<id>``, ``<p>notify:final:<id>``, ``<p>notify:ratelimit:<digest>``,
  ``<p>webhook_logs``;
* gateway: ``<p>gateway:session:<hash>``, ``<p>gateway:magic:<hash>``,
  ``<p>gateway:magic_permanent``, ``<p>gateway:magic_sessions:<link id>`` (the
  sessions a link opened, ended with it), ``<p>gateway:login_*``,
  ``<p>gateway:ingress_*`` (failed-token throttle), ``<p>gateway:deploy_lock``.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "ALL_STREAMS",
    "DEFAULT_PREFIX",
    "GROUP_INGEST",
    "GROUP_NOTIFY",
    "GROUP_OFFLOAD",
    "STREAM_GROUPS",
    "STREAM_MAIL_OFFLOADED",
    "STREAM_MAIL_RAW",
    "STREAM_MAIL_RECEIVED",
    "Keys",
    "consumer_name",
]

DEFAULT_PREFIX = "render_signal:"

STREAM_MAIL_RAW = "mail.raw"
STREAM_MAIL_RECEIVED = "mail.received"
STREAM_MAIL_OFFLOADED = "mail.offloaded"
ALL_STREAMS = (STREAM_MAIL_RAW, STREAM_MAIL_RECEIVED, STREAM_MAIL_OFFLOADED)

GROUP_INGEST = "ingest"
GROUP_OFFLOAD = "offload"
GROUP_NOTIFY = "notify"
#: The consumer group reading each stream (one group per stream: the service name).
STREAM_GROUPS = {
    STREAM_MAIL_RAW: GROUP_INGEST,
    STREAM_MAIL_RECEIVED: GROUP_OFFLOAD,
    STREAM_MAIL_OFFLOADED: GROUP_NOTIFY,
}


def consumer_name(service: str, instance: str) -> str:
    """The consumer (and lease/lock owner) name of one replica of ``service``."""
    return f"{service}-{instance}"


class Keys(msgspec.Struct, frozen=True):
    """The Redis keys of one deployment, under ``prefix``."""

    prefix: str = DEFAULT_PREFIX

    # -- streams ------------------------------------------------------------------
    def stream(self, name: str) -> str:
        """Full key of the stream ``name`` (one of :data:`ALL_STREAMS`)."""
        return f"{self.prefix}{name}"

    @property
    def mail_raw(self) -> str:
        return self.stream(STREAM_MAIL_RAW)

    @property
    def mail_received(self) -> str:
        return self.stream(STREAM_MAIL_RECEIVED)

    @property
    def mail_offloaded(self) -> str:
        return self.stream(STREAM_MAIL_OFFLOADED)

    @staticmethod
    def dlq(stream_key: str) -> str:
        """The dead-letter stream of a full stream key."""
        return f"{stream_key}.dlq"

    @staticmethod
    def stream_errors(stream_key: str) -> str:
        """Hash: entry id -> last handler error, while the entry is retried."""
        return f"{stream_key}.errors"

    @staticmethod
    def stream_name(stream_key: str) -> str:
        """The short stream name (metric label) of a full stream key."""
        return stream_key.rsplit(":", 1)[-1]

    # -- common ---------------------------------------------------------------------
    def heartbeat(self, service: str, instance: str) -> str:
        return f"{self.prefix}heartbeat:{service}:{instance}"

    def liveness(self, owner: str) -> str:
        """A process's liveness key; ``owner`` is its :func:`consumer_name`.

        ``liveness("")`` is the prefix Lua scripts append an owner to (the
        takeover scripts look holders up by name inside Redis).
        """
        return f"{self.prefix}live:{owner}"

    @property
    def heartbeat_pattern(self) -> str:
        return f"{self.prefix}heartbeat:*"

    def applied(self, service: str, instance: str) -> str:
        """The configuration one replica applies (written on every config load)."""
        return f"{self.prefix}applied:{service}:{instance}"

    @property
    def applied_pattern(self) -> str:
        return f"{self.prefix}applied:*"

    @property
    def last_seen(self) -> str:
        """Hash: ``<service>:<instance>`` -> last heartbeat time (outlives the heartbeat)."""
        return f"{self.prefix}lastseen"

    def probe_requests(self, service: str) -> str:
        """Stream of operator test requests a replica of ``service`` answers."""
        return f"{self.prefix}probe:{service}"

    def probe_result(self, probe_id: str) -> str:
        return f"{self.prefix}probe:result:{probe_id}"

    # -- the per-email timeline -----------------------------------------------------
    def email(self, email_id: str) -> str:
        """Hash: one email's summary fields and its targets' states."""
        return f"{self.prefix}email:{email_id}"

    def email_events(self, email_id: str) -> str:
        """List: one email's timeline events, oldest first."""
        return f"{self.prefix}email:{email_id}:events"

    @property
    def emails_index(self) -> str:
        """ZSET: email ids by reception time."""
        return f"{self.prefix}emails"

    def config(self, name: str) -> str:
        return f"{self.prefix}config:{name}"

    @property
    def config_changed(self) -> str:
        """Pub/sub channel announcing ``<name>:<version>`` after each config write."""
        return f"{self.prefix}config:changed"

    # -- ingest ---------------------------------------------------------------------
    @property
    def poller_lock(self) -> str:
        """The IMAP watcher's singleton lock (``render_signal:poller_lock``)."""
        return f"{self.prefix}poller_lock"

    def ingest_seen(self, email_id: str) -> str:
        return f"{self.prefix}ingest:seen:{email_id}"

    def ingest_fingerprint(self, fingerprint: str) -> str:
        """ZSET of the copies of one (sender, subject), scored by the email's date."""
        return f"{self.prefix}ingest:fp:{fingerprint}"

    def imap_checkpoint(self, mailbox: str) -> str:
        return f"{self.prefix}ingest:imap:checkpoint:{mailbox}"

    # -- offload --------------------------------------------------------------------
    def offload_done(self, event_id: str) -> str:
        return f"{self.prefix}offload:done:{event_id}"

    @property
    def link_journal(self) -> str:
        """Hash: normalised source URL -> link record JSON."""
        return f"{self.prefix}offload:links"

    @property
    def link_journal_index(self) -> str:
        """ZSET: source URL scored by its record's creation time."""
        return f"{self.prefix}offload:links:index"

    @property
    def links_file_staged(self) -> str:
        """Hash of links-file rows written to Redis but not yet to the file."""
        return f"{self.prefix}offload:links:unfiled"

    # -- notify ---------------------------------------------------------------------
    @property
    def notify_jobs(self) -> str:
        return f"{self.prefix}notify:jobs"

    @property
    def notify_scheduled(self) -> str:
        return f"{self.prefix}notify:scheduled"

    @property
    def notify_leases(self) -> str:
        return f"{self.prefix}notify:leases"

    def notify_sent(self, webhook_id: str) -> str:
        return f"{self.prefix}notify:sent:{webhook_id}"

    def notify_final(self, webhook_id: str) -> str:
        return f"{self.prefix}notify:final:{webhook_id}"

    @property
    def notify_dead_letters(self) -> str:
        return f"{self.prefix}notify:deadletters"

    @property
    def notify_disabled_targets(self) -> str:
        """Hash: target URL -> JSON {disabled_at, status, email_id}, set on 410 Gone."""
        return f"{self.prefix}notify:disabled_targets"

    @property
    def notify_deferred(self) -> str:
        """Set: webhook-ids parked by a rule (window, absence, switch), re-checked on change."""
        return f"{self.prefix}notify:deferred"

    @property
    def notify_overrides(self) -> str:
        """Hash: webhook-id -> JSON {at, user}: an operator asked to send it now."""
        return f"{self.prefix}notify:overrides"

    @property
    def notify_targets(self) -> str:
        """Hash: target digest -> ``TargetHealth`` JSON (the status verdict reads it)."""
        return f"{self.prefix}notify:targets"

    def notify_ratelimit(self, target_digest: str) -> str:
        return f"{self.prefix}notify:ratelimit:{target_digest}"

    @property
    def webhook_log(self) -> str:
        """List of webhook-log entries, newest first."""
        return f"{self.prefix}webhook_logs"

    # -- gateway --------------------------------------------------------------------
    def session(self, session_hash: str) -> str:
        return f"{self.prefix}gateway:session:{session_hash}"

    def magic_link(self, token_hash: str) -> str:
        return f"{self.prefix}gateway:magic:{token_hash}"

    @property
    def magic_links_permanent(self) -> str:
        return f"{self.prefix}gateway:magic_permanent"

    def magic_link_sessions(self, link_id: str) -> str:
        """Set of the session hashes a magic link opened (revoking the link ends them)."""
        return f"{self.prefix}gateway:magic_sessions:{link_id}"

    def login_failures(self, scope: str, digest: str) -> str:
        return f"{self.prefix}gateway:login_fail:{scope}:{digest}"

    def login_lock(self, scope: str, digest: str) -> str:
        return f"{self.prefix}gateway:login_lock:{scope}:{digest}"

    def ingress_failures(self, scope: str, digest: str) -> str:
        return f"{self.prefix}gateway:ingress_fail:{scope}:{digest}"

    def ingress_lock(self, scope: str, digest: str) -> str:
        return f"{self.prefix}gateway:ingress_lock:{scope}:{digest}"

    @property
    def deploy_lock(self) -> str:
        return f"{self.prefix}gateway:deploy_lock"
