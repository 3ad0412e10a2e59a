"""Worker faults (acceptance 2), SSRF refusals (3), concurrency cap, disabled mode.

Every scenario asserts that mail.offloaded carries the source URLs within the
timeout plus a bounded margin, judged from recorded timestamps, and that an open
breaker sends the next email straight to fallback (the stand-in sees nothing).
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from offload_harness import mail, make_settings, offload_env, running_service, send, wait_offloaded
from redis.asyncio import Redis
from render_signal.common.events import DeliveryLink
from render_signal.devstack.polling import eventually
from render_signal.devstack.ports import free_port
from render_signal.offload.normalise import normalise
from standin import WorkerStandIn

MARGIN_S = 1.5
TIMEOUT_S = 0.6
BACKOFF_TOTAL_S = 0.2 + 0.4  # full-jitter caps for retries 1 and 2

DROPBOX = [
    ("dropbox", f"https://www.dropbox.com/s/id{i}/file{i}.zip?dl=0&amp;x={i}") for i in range(3)
]


def fault_env(redis_url: str, prefix: str, endpoint: str) -> dict[str, str]:
    return offload_env(
        redis_url,
        prefix,
        endpoint,
        R2_FETCH_TIMEOUT_SECONDS=str(TIMEOUT_S),
        R2_FETCH_RETRIES="2",
        R2_BREAKER_FAILURES="3",
        R2_BREAKER_COOLDOWN_SECONDS="60",
    )


@pytest.mark.parametrize(
    ("mode", "n_links", "expected_requests", "breaker_opens", "bound_s"),
    [
        ("500", 1, 3, True, BACKOFF_TOTAL_S),
        ("close", 1, 3, True, BACKOFF_TOTAL_S),
        ("hang", 3, 3, True, TIMEOUT_S),  # timeouts aren't retried; links run concurrently
        ("badjson", 3, 3, True, 0.0),
        ("fail", 3, 3, False, 0.0),  # a well-formed refusal is a healthy Worker
        ("source502", 3, 3, False, 0.0),  # the source failed, not the Worker: no retry
    ],
)
async def test_worker_fault_falls_back_and_breaker_skips_next_email(
    redis: Redis,
    redis_url: str,
    key_prefix: str,
    mode: str,
    n_links: int,
    expected_requests: int,
    breaker_opens: bool,
    bound_s: float,
) -> None:
    with WorkerStandIn(mode, hang_max_s=10) as worker:
        settings = make_settings(fault_env(redis_url, key_prefix, worker.url))
        async with running_service(redis, settings) as service:
            sent_at = time.time()
            await send(redis, key_prefix, mail("e1", *DROPBOX[:n_links]))
            [(_, out)] = await wait_offloaded(redis, key_prefix, 1)
            seen = list(worker.requests)
            assert len(seen) == expected_requests
            assert out.offload_enabled is True
            for link, (provider, raw) in zip(out.links, DROPBOX[:n_links], strict=True):
                assert link.r2_url is None
                assert link.raw_url == raw
                assert link.direct_url == normalise(provider, raw)
                assert "&amp;" not in link.direct_url
                assert "dl=1" in link.direct_url
                assert "dl=0" not in link.direct_url
            # Logically bounded: from the first Worker request to the publish, at most the
            # timeout/backoff budget plus a margin (never one full timeout per link).
            published_at = out.trace["offloaded_at"]
            assert seen[0].at >= sent_at - 0.01
            assert published_at - seen[0].at <= bound_s + MARGIN_S
            if mode == "hang":
                assert published_at - seen[0].at >= TIMEOUT_S - 0.05

            assert service.details().breaker == ("open" if breaker_opens else "closed")
            await send(redis, key_prefix, mail("e2", DROPBOX[0]))
            rows = await wait_offloaded(redis, key_prefix, 2)
            second = rows[1][1]
            assert second.email_id == "e2"
            assert second.links[0].r2_url is None
            if breaker_opens:
                assert worker.count() == expected_requests  # skipped straight to fallback
                assert second.trace["offloaded_at"] - rows[0][1].trace["offloaded_at"] < 5
            else:
                assert worker.count() == expected_requests + 1


async def test_worker_down_costs_bounded_time_then_breaker_opens(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    settings = make_settings(fault_env(redis_url, key_prefix, endpoint))
    async with running_service(redis, settings) as service:
        started = time.time()
        await send(redis, key_prefix, mail("down1", *DROPBOX))
        [(_, out)] = await wait_offloaded(redis, key_prefix, 1)
        assert [link.direct_url for link in out.links] == [normalise(p, u) for p, u in DROPBOX]
        assert all(link.r2_url is None for link in out.links)
        assert out.trace["offloaded_at"] - started <= BACKOFF_TOTAL_S + MARGIN_S
        assert service.details().breaker == "open"
        await send(redis, key_prefix, mail("down2", DROPBOX[0]))
        rows = await wait_offloaded(redis, key_prefix, 2)
        assert rows[1][1].links[0].r2_url is None


async def test_ssrf_refused_links_never_reach_the_worker(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    bad = [
        # (A Dropbox http link is upgraded to https by normalisation, as the original did.)
        ("fromsmash", "http://fromsmash.com/PlainHttp"),
        ("swisstransfer", "http://www.swisstransfer.com/d/uuid"),
        ("dropbox", "https://evil.test/s/a/b.zip"),
        ("dropbox", "https://dropbox.com.evil.test/s/a/b.zip"),
        ("swisstransfer", "https://127.0.0.1/d/secret"),
        ("fromsmash", "https://fromsmash.com@169.254.169.254/latest"),
        ("wetransfer", "https://wetransfer.com:8443/x"),
    ]
    good = ("fromsmash", "https://fromsmash.com/Good1")
    with WorkerStandIn("ok") as worker:
        settings = make_settings(fault_env(redis_url, key_prefix, worker.url))
        async with running_service(redis, settings):
            await send(redis, key_prefix, mail("ssrf", *bad, good))
            [(_, out)] = await wait_offloaded(redis, key_prefix, 1)
    assert [r.json["source_url"] for r in worker.requests] == ["https://fromsmash.com/Good1"]
    for link, (provider, raw) in zip(out.links[:-1], bad, strict=True):
        assert link.r2_url is None
        assert link.direct_url == normalise(provider, raw)
    assert out.links[-1].r2_url is not None


async def test_worker_contract_and_global_concurrency_cap(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    links = [("fromsmash", f"https://fromsmash.com/Cap{i}") for i in range(3)]
    with WorkerStandIn("hang", hang_max_s=10) as worker:
        env = offload_env(redis_url, key_prefix, worker.url, R2_FETCH_CONCURRENCY="2")
        settings = make_settings(env)
        async with running_service(redis, settings):
            await send(redis, key_prefix, mail("c1", *links))
            await send(
                redis, key_prefix, mail("c2", *links[:2], ("fromsmash", "https://fromsmash.com/X"))
            )
            await eventually(lambda: worker.count() >= 2, 10, "two Worker calls")
            # Observation window: with the cap at 2, nothing more may arrive while held.
            window_end = time.monotonic() + 0.4
            while time.monotonic() < window_end:
                assert worker.count() == 2
                await asyncio.sleep(0.02)
            worker.release()
            rows = await wait_offloaded(redis, key_prefix, 2)
    assert worker.max_in_flight == 2
    assert {o.email_id for _, o in rows} == {"c1", "c2"}
    first = worker.requests[0]
    assert first.headers["X-R2-FETCH-TOKEN"] == "standin-token-123"
    assert first.headers["Content-Type"] == "application/json"
    assert set(first.json) == {"source_url", "object_key", "bucket", "provider", "email_id"}
    assert first.json["bucket"] == "render-signal-test"
    for _, out in rows:
        assert all(
            link.r2_url and link.original_filename == "report final.zip" for link in out.links
        )


async def test_disabled_passes_through_with_normalised_sources(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    settings = make_settings(offload_env(redis_url, key_prefix, ""))
    assert settings.enabled is False
    async with running_service(redis, settings) as service:
        await send(
            redis,
            key_prefix,
            mail("off", DROPBOX[0], ("fromsmash", "https://fromsmash.com/A&amp;b")),
        )
        [(_, out)] = await wait_offloaded(redis, key_prefix, 1)
        assert service.details().offload == "disabled"
    assert out.offload_enabled is False
    assert out.links[0].direct_url == normalise(*DROPBOX[0])
    assert out.links[1].direct_url == "https://fromsmash.com/A&b"
    assert all(link.r2_url is None for link in out.links)


async def test_flagged_links_keep_their_flags_and_opaque_gateway_links_stay_as_is(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    """Issue 14, item 6: ingest's link flags reach notify; a Mimecast token is not fetched."""
    opaque = "https://protect-eu.mimecast.com/s/AbCd?domain=www.dropbox.com"
    odd = "https://www.swisstransfer.com/d/Lot12-photos"
    event = msgspec.structs.replace(
        mail("flags"),
        links=(
            DeliveryLink(provider="dropbox", raw_url=opaque, flags=("mimecast_opaque",)),
            DeliveryLink(provider="swisstransfer", raw_url=odd, flags=("unknown_shape",)),
        ),
    )
    with WorkerStandIn("ok") as worker:
        settings = make_settings(fault_env(redis_url, key_prefix, worker.url))
        async with running_service(redis, settings):
            await send(redis, key_prefix, event)
            [(_, out)] = await wait_offloaded(redis, key_prefix, 1)
    assert [r.json["source_url"] for r in worker.requests] == [odd]
    gateway, shaped = out.links
    assert (gateway.direct_url, gateway.r2_url, gateway.flags) == (
        opaque,
        None,
        ("mimecast_opaque",),
    )
    assert shaped.r2_url is not None and shaped.flags == ("unknown_shape",)
