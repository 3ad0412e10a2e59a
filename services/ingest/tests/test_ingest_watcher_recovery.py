"""The watcher heals itself: Dovecot restarted, and a server that accepts but never answers."""

from __future__ import annotations

from collections import Counter

from ingest_testkit import SilentProxy, make_email, message_id_of, metric, mid, raw_events
from redis.asyncio import Redis
from render_signal.devstack.dovecot import DovecotServer
from render_signal.devstack.polling import eventually


async def _idle() -> bool:
    return metric("render_signal_imap_mode", {"mode": "idle"}) == 1.0


async def _published_once(redis: Redis, key_prefix: str, messages: list[bytes]) -> Counter[str]:
    counts = Counter(message_id_of(e) for e in await raw_events(redis, key_prefix))
    return counts if all(counts[mid(m)] >= 1 for m in messages) else Counter()


async def test_dovecot_restart_recovers_and_publishes_everything_once(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    await start_watcher(settings_for(EMAIL_POLLING_INTERVAL_SECONDS="60"))
    await eventually(_idle, 10, "IDLE mode")
    first = make_email("before the restart")
    dovecot.append(first)
    await eventually(lambda: _published_once(redis, key_prefix, [first]), 10, "first email")
    reconnects = metric("render_signal_imap_reconnects_total")

    dovecot.stop()  # SIGTERM: the session is cut, the port closes
    while_down = [make_email(f"delivered while IMAP is down {i}") for i in range(2)]
    for message in while_down:
        dovecot.deliver(message)  # as the MDA would, straight into the Maildir
    await eventually(
        lambda: metric("render_signal_imap_reconnects_total") > reconnects,
        10,
        "the watcher noticing the outage",
    )
    assert metric("render_signal_imap_connected") == 0.0
    dovecot.start()
    after = make_email("after the restart")
    dovecot.append(after)

    everything = [first, *while_down, after]
    counts = await eventually(
        lambda: _published_once(redis, key_prefix, everything), 20, "all emails after recovery"
    )
    await eventually(_idle, 10, "IDLE again")
    counts = Counter(message_id_of(e) for e in await raw_events(redis, key_prefix))
    assert {mid(m): counts[mid(m)] for m in everything} == {mid(m): 1 for m in everything}
    assert sum(counts.values()) == len(everything)


async def test_silent_server_cannot_freeze_the_watcher(
    dovecot: DovecotServer, redis: Redis, key_prefix: str, settings_for, start_watcher
) -> None:
    proxy = SilentProxy(dovecot.port)
    try:
        settings = settings_for(
            IMAP_PORT=str(proxy.port),
            IMAP_TIMEOUT_SECONDS="1",
            IMAP_IDLE_RENEW_SECONDS="2",
            EMAIL_POLLING_INTERVAL_SECONDS="60",
        )
        await start_watcher(settings)
        await eventually(_idle, 10, "IDLE mode through the proxy")
        first = make_email("before the freeze")
        dovecot.append(first)
        await eventually(lambda: _published_once(redis, key_prefix, [first]), 10, "first email")

        reconnects = metric("render_signal_imap_reconnects_total")
        accepted = proxy.accepted
        proxy.freeze()  # open session hangs; new connections are accepted and never answered
        during = [make_email(f"sent while the server is silent {i}") for i in range(2)]
        for message in during:
            dovecot.append(message)
        # The watcher must give up on the hung session AND on a hung reconnect attempt.
        await eventually(
            lambda: (
                metric("render_signal_imap_reconnects_total") >= reconnects + 2
                and proxy.accepted >= accepted + 1
            ),
            30,
            "watchdog timeouts on the silent server",
        )
        assert metric("render_signal_imap_connected") == 0.0
        counts = Counter(message_id_of(e) for e in await raw_events(redis, key_prefix))
        assert all(counts[mid(m)] == 0 for m in during)  # nothing could have been fetched

        proxy.thaw()
        everything = [first, *during]
        await eventually(
            lambda: _published_once(redis, key_prefix, everything), 20, "emails after the thaw"
        )
        await eventually(_idle, 10, "IDLE again")
        counts = Counter(message_id_of(e) for e in await raw_events(redis, key_prefix))
        assert [counts[mid(m)] for m in everything] == [1, 1, 1]
        assert sum(counts.values()) == len(everything)
    finally:
        proxy.close()
