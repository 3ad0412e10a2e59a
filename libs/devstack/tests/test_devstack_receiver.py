"""The recording receiver and the dev sink built on it, over real loopback HTTP."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from render_signal.devstack.receiver import JSON, Receiver, Recorded, Reply, download
from render_signal.devstack.sink import RecordingSink


def post(url: str, body: bytes = b"{}", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def test_queued_replies_then_the_default_and_what_was_recorded() -> None:
    with Receiver() as rx:
        rx.respond(500, b"oops", times=2)
        rx.respond(429, headers={"Retry-After": "7"})
        answers = [post(rx.url, b'{"n": %d}' % i, **{"Webhook-Id": f"msg_{i}"}) for i in range(4)]
        assert [status for status, _, _ in answers] == [500, 500, 429, 200]
        assert answers[1][2] == b"oops"
        assert answers[2][1]["Retry-After"] == "7"
        assert json.loads(answers[3][2]) == {"success": True}
        requests = rx.wait_for(4)
    assert [r.status for r in requests] == [500, 500, 429, 200]
    assert [r.json for r in requests] == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]
    assert rx.ids() == ["msg_0", "msg_1", "msg_2", "msg_3"]
    first = requests[0]
    assert (first.method, first.path) == ("POST", "/hook")
    # Header names keep the case they were sent in, and are found in any case.
    assert "Webhook-Id" in dict(first.headers) and first.headers["WEBHOOK-ID"] == "msg_0"
    assert first.answered_at is not None and first.answered_at >= first.at
    assert [r.accepted for r in requests] == [False, False, False, True]


def test_an_answer_function_sees_the_request() -> None:
    def echo_path(request: Recorded) -> Reply:
        return Reply(201 if request.method == "POST" else 404, request.path.encode(), JSON)

    with Receiver(echo_path) as rx:
        assert post(rx.url_for("/a?b=1"))[::2] == (201, b"/a?b=1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rx.url_for("/x"), timeout=10)
        assert refused.value.code == 404
        refused.value.close()
        rx.answer = Reply(503)
        assert post(rx.url)[0] == 503


def test_hold_then_release_drops_the_connection_unanswered() -> None:
    with Receiver() as rx:
        rx.hold()
        outcome: list[object] = []

        def call() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=10)
            try:
                connection.request("POST", "/hook", body=b"{}")
                outcome.append(connection.getresponse().status)
            except (http.client.RemoteDisconnected, ConnectionError) as exc:
                outcome.append(type(exc))
            finally:
                connection.close()

        caller = threading.Thread(target=call)
        caller.start()
        rx.wait_for(1)
        time.sleep(0.2)
        assert outcome == [] and rx.in_flight == 1  # held: no answer yet
        rx.release()
        caller.join(10)
        assert outcome == [http.client.RemoteDisconnected]
        assert rx.requests[0].status is None
        assert post(rx.url)[0] == 200  # the hold was for one request only


def test_a_reply_held_at_most_hold_max_s_is_then_answered() -> None:
    with Receiver(Reply(200, b"late", hold=True, hold_max_s=0.3)) as rx:
        started = time.monotonic()
        assert post(rx.url)[::2] == (200, b"late")
        assert time.monotonic() - started >= 0.3
        assert rx.max_in_flight == 1 and rx.in_flight == 0


def test_download_names_the_file_as_providers_do() -> None:
    with Receiver(download(b"zipbytes", "Rapport été.zip")) as rx:
        status, headers, body = post(rx.url)
    assert (status, body) == (200, b"zipbytes")
    assert headers["Content-Disposition"].endswith("filename*=UTF-8''Rapport%20%C3%A9t%C3%A9.zip")


def test_dev_sink_appends_each_request_without_the_authorization_header(tmp_path: Path) -> None:
    sink = RecordingSink(tmp_path / "run" / "sink.jsonl").start()
    try:
        for n in range(2):
            status, _, body = post(
                sink.url, b'{"n": %d}' % n, Authorization="Bearer secret", **{"webhook-id": f"w{n}"}
            )
            assert status == 200 and json.loads(body)["success"] is True
    finally:
        sink.stop()
    lines = [json.loads(line) for line in sink.record_path.read_text().splitlines()]
    assert [(e["webhook_id"], e["path"], e["body"]) for e in lines] == [
        ("w0", "/hook", '{"n": 0}'),
        ("w1", "/hook", '{"n": 1}'),
    ]
    assert all("authorization" not in {k.lower() for k in e["headers"]} for e in lines)
    assert sink.receiver.requests == []  # the file is the record: nothing kept in memory
