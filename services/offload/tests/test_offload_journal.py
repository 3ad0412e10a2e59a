"""Link journals (acceptance 6): the original's webhook_links.json file and Redis reuse."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from datetime import datetime
from pathlib import Path

import msgspec
from offload_harness import links_writer as _writer
from offload_harness import (
    mail,
    make_entry,
    make_settings,
    offload_env,
    running_service,
    send,
    wait_offloaded,
)
from redis.asyncio import Redis
from render_signal.common.consumer import Consumer
from render_signal.common.events import MailReceived
from render_signal.common.keys import GROUP_OFFLOAD, STREAM_MAIL_RECEIVED
from render_signal.common.linkjournal import LinkRecord, LinksFile
from render_signal.common.streams import ensure_group
from render_signal.devstack.polling import eventually
from render_signal.offload.linkswriter import LinksFileWriter
from render_signal.offload.main import build_service
from standin import WorkerStandIn

SCHEMA_REQUIRED = {"source_url", "r2_url", "provider", "created_at"}


def check_schema(items: list[dict[str, str]]) -> None:
    for item in items:
        assert SCHEMA_REQUIRED <= set(item) <= SCHEMA_REQUIRED | {"original_filename"}
        assert "email_id" not in item
        stamp = datetime.fromisoformat(item["created_at"])
        assert stamp.utcoffset() is not None
        assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_dedup_rotation_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "data" / "webhook_links.json"
    links = LinksFile(path, max_entries=5)
    a = make_entry("https://www.dropbox.com/s/a?dl=1", "https://r2/a", "dropbox", "a é.zip")
    assert links.append([a]) == 1
    # Same (source_url, r2_url, provider): skipped, whatever the timestamp/filename.
    assert links.append([make_entry(a.source_url, a.r2_url, "dropbox")]) == 0
    # Same source but another r2_url or provider: a new pair.
    assert links.append([make_entry(a.source_url, "https://r2/a2", "dropbox")]) == 1
    assert links.append([make_entry(a.source_url, a.r2_url, "fromsmash")]) == 1
    for i in range(6):
        links.append([make_entry(f"https://fromsmash.com/{i}", f"https://r2/{i}", "fromsmash")])
    items = json.loads(path.read_text(encoding="utf-8"))
    assert [i["source_url"] for i in items] == [f"https://fromsmash.com/{i}" for i in range(1, 6)]
    check_schema(items)
    assert "original_filename" not in items[0]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]


def test_corrupt_file_is_treated_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "webhook_links.json"
    path.write_text("[{broken", encoding="utf-8")
    links = LinksFile(path)
    assert links.read() == []
    assert links.append([make_entry("https://we.tl/t-1", "https://r2/1", "wetransfer")]) == 1
    assert [i["source_url"] for i in json.loads(path.read_text())] == ["https://we.tl/t-1"]
    path.write_text('{"not": "a list"}', encoding="utf-8")
    assert links.read() == []


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "webhook_links.json")
    count, cap = 150, 1000
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, tag, count, cap)) for tag in ("a", "b", "c")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    check_schema(items)
    sources = [i["source_url"] for i in items]
    assert len(sources) == len(set(sources)) == 3 * count + 1
    for tag in ("a", "b", "c"):
        mine = [s for s in sources if s.startswith(f"https://fromsmash.com/{tag}")]
        assert mine == [f"https://fromsmash.com/{tag}{i}" for i in range(count)]  # order kept
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_concurrent_writers_respect_the_cap(tmp_path: Path) -> None:
    path = str(tmp_path / "webhook_links.json")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, tag, 120, 100)) for tag in ("x", "y")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    assert len(items) == 100
    assert len({(i["source_url"], i["r2_url"], i["provider"]) for i in items}) == 100
    assert {items[-1]["source_url"], items[-2]["source_url"]} & {
        "https://fromsmash.com/x119",
        "https://fromsmash.com/y119",
        "https://fromsmash.com/shared",
    }


async def test_service_reuses_journalled_links_and_writes_the_file(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    links_path = tmp_path / "webhook_links.json"
    with WorkerStandIn("ok") as worker:
        env = offload_env(redis_url, key_prefix, worker.url, WEBHOOK_LINKS_FILE=str(links_path))
        async with running_service(redis, make_settings(env)):
            await send(
                redis, key_prefix, mail("j1", ("dropbox", "https://www.dropbox.com/s/q/f.zip?dl=0"))
            )
            await wait_offloaded(redis, key_prefix, 1)
            # The same link in another spelling normalises to the same source: reused.
            await send(
                redis,
                key_prefix,
                mail("j2", ("dropbox", "https://WWW.dropbox.com/s/q/f.zip/?dl=0&amp;dl=0")),
            )
            rows = await wait_offloaded(redis, key_prefix, 2)
    assert worker.count() == 1
    first, second = rows[0][1].links[0], rows[1][1].links[0]
    assert first.r2_url is not None
    assert second.r2_url == first.r2_url
    assert second.original_filename == "report final.zip"
    stored = await redis.hgetall(f"{key_prefix}offload:links")
    assert list(stored) == [b"https://www.dropbox.com/s/q/f.zip?dl=1"]
    assert json.loads(stored[b"https://www.dropbox.com/s/q/f.zip?dl=1"])["r2_url"] == first.r2_url
    items = json.loads(links_path.read_text(encoding="utf-8"))
    check_schema(items)
    assert items == [
        {
            "source_url": "https://www.dropbox.com/s/q/f.zip?dl=1",
            "r2_url": first.r2_url,
            "provider": "dropbox",
            "created_at": items[0]["created_at"],
            "original_filename": "report final.zip",
        }
    ]


# -- coalesced links-file writes (LinksFileWriter) -------------------------------------


def _rows(tag: str, count: int) -> list[LinkRecord]:
    return [
        make_entry(f"https://fromsmash.com/{tag}{i}", f"https://r2/{tag}{i}", "fromsmash")
        for i in range(count)
    ]


def _file_sources(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [i["source_url"] for i in json.loads(path.read_text(encoding="utf-8"))]


async def _stage(redis: Redis, writer: LinksFileWriter, rows: list[LinkRecord]) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for row in rows:
            writer.stage(pipe, row)
        await pipe.execute()


async def test_writer_coalesces_rows_into_one_flush_and_unstages(
    redis: Redis, key_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "webhook_links.json"
    staged = f"{key_prefix}offload:links:unfiled"
    writer = LinksFileWriter(LinksFile(path), redis, staged, interval_s=0.2)
    await writer.recover()
    writer.start()
    try:
        rows = _rows("c", 40)
        await _stage(redis, writer, rows)
        for start in range(0, 40, 4):  # ten emails' worth, submitted back to back
            writer.submit(rows[start : start + 4])

        async def written() -> bool:
            return len(_file_sources(path)) == 40 and not await redis.exists(staged)

        await eventually(written, 10, "the coalesced flush")
        assert _file_sources(path) == [r.source_url for r in rows]  # order kept
        assert writer.flushes == 1  # one locked read-modify-write, not ten
        check_schema(json.loads(path.read_text(encoding="utf-8")))
    finally:
        await writer.aclose()


async def test_writer_flushes_pending_rows_on_close(
    redis: Redis, key_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "webhook_links.json"
    staged = f"{key_prefix}offload:links:unfiled"
    writer = LinksFileWriter(LinksFile(path), redis, staged, interval_s=3600)
    writer.start()
    rows = _rows("s", 3)
    await _stage(redis, writer, rows)
    writer.submit(rows)
    assert writer.pending == 3
    await writer.aclose()  # no waiting for the (hour-long) window
    assert _file_sources(path) == [r.source_url for r in rows]
    assert writer.pending == 0
    assert not await redis.exists(staged)


async def test_recover_appends_staged_rows_missing_from_the_file(
    redis: Redis, key_prefix: str, tmp_path: Path
) -> None:
    """A crash after the publish but before the flush: the next start writes the rows."""
    path = tmp_path / "webhook_links.json"
    staged = f"{key_prefix}offload:links:unfiled"
    links = LinksFile(path, max_entries=1000)
    old = _rows("r", 4)
    links.append(old[:1])  # flushed before the crash (its unstage was lost too)
    crashed = LinksFileWriter(links, redis, staged)
    await _stage(redis, crashed, old)
    crashed.submit(old)  # pending in memory only; the process dies here
    assert _file_sources(path) == [old[0].source_url]

    writer = LinksFileWriter(LinksFile(path, max_entries=1000), redis, staged)
    assert await writer.recover() == 3
    items = json.loads(path.read_text(encoding="utf-8"))
    assert [i["source_url"] for i in items] == [r.source_url for r in old]  # no duplicate
    assert items == msgspec.to_builtins(old)
    assert not await redis.exists(staged)
    assert await writer.recover() == 0


async def test_failed_file_write_is_retried_not_dropped(
    redis: Redis, key_prefix: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the directory should be", encoding="utf-8")
    path = blocker / "webhook_links.json"
    staged = f"{key_prefix}offload:links:unfiled"
    writer = LinksFileWriter(LinksFile(path), redis, staged, interval_s=0.05)
    writer.start()
    try:
        rows = _rows("f", 2)
        await _stage(redis, writer, rows)
        writer.submit(rows)

        async def failed() -> bool:
            return writer.failures >= 1

        await eventually(failed, 10, "a failed write")
        assert writer.pending == 2
        assert await redis.hlen(staged) == 2  # still staged for a restart
        blocker.unlink()

        async def written() -> bool:
            return len(_file_sources(path)) == 2

        await eventually(written, 10, "the retried write")
        assert _file_sources(path) == [r.source_url for r in rows]
    finally:
        await writer.aclose()


async def test_service_rows_survive_a_crash_before_the_flush(
    redis: Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Journal + staging are written before the publish; a restart fills the file."""
    links_path = tmp_path / "webhook_links.json"
    with WorkerStandIn("ok") as worker:
        env = offload_env(redis_url, key_prefix, worker.url, WEBHOOK_LINKS_FILE=str(links_path))
        settings = make_settings(env)
        crashed = build_service(settings, redis)  # its writer is never started: never flushes
        stream = settings.common.keys.stream(STREAM_MAIL_RECEIVED)
        await ensure_group(redis, stream, GROUP_OFFLOAD, start_id="0")
        consumer: Consumer[MailReceived] = Consumer(
            redis,
            stream_key=stream,
            group=GROUP_OFFLOAD,
            consumer="crash-0",
            event_type=MailReceived,
            handler=crashed.handle,
            block_ms=100,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            for n in range(3):
                await send(
                    redis, key_prefix, mail(f"c{n}", ("fromsmash", f"https://fromsmash.com/c{n}"))
                )
            rows = await wait_offloaded(redis, key_prefix, 3)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
            assert crashed.client is not None
            await crashed.client.aclose()
    assert not links_path.exists()  # the "crash": nothing reached the file
    assert crashed.links_writer is not None and crashed.links_writer.pending == 3
    restarted = build_service(settings, redis)
    await restarted.start()
    await restarted.aclose()
    items = json.loads(links_path.read_text(encoding="utf-8"))
    check_schema(items)
    by_source = {i["source_url"]: i["r2_url"] for i in items}
    assert len(items) == 3
    for _, out in rows:
        link = out.links[0]
        assert by_source[link.direct_url] == link.r2_url
