"""Gmail push (issue 14, acceptance 1): the original Apps Script's request and ours get 200.

* The original's request, byte for byte as ``scripts/google_script.js`` of
  render_signal_server built it (UrlFetchApp: POST, ``contentType``
  application/json, ``Authorization: Bearer``, ``X-Source``, the JSON fields
  subject/sender/date/body/snippet in that order), answered exactly 200.
* The request of ``deploy/gmail/apps-script.js``, produced by running the script
  itself under node with stand-ins for the Apps Script services, replayed to the
  gateway: 200, and the Message-ID reaches the event and the email id.
* The script's own reading of answers: any 2xx removes the label, anything else
  keeps it (the thread is retried on the next run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gateway_testkit import API_TOKEN, Gateway
from render_signal.common.events import MailRaw, decode_entry
from render_signal.common.identity import message_id_email_id, original_gmail_email_id
from render_signal.devstack.pytest_plugin import require_component

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "gmail" / "apps-script.js"
RUNNER = Path(__file__).with_name("apps_script_runner.cjs")
# What UrlFetchApp sends as User-Agent (the script sets none).
APPS_SCRIPT_UA = (
    "Mozilla/5.0 (compatible; Google-Apps-Script; beanserver;"
    " +https://script.google.com; id: UAEmdDd)"
)
HTML = (
    '<div dir="ltr">Lot 12 : <a href="https://www.dropbox.com/s/abc/lot12.zip?dl=0">ici</a></div>'
)
MESSAGE = {
    "subject": "Média Solution - Missions Recadrage - Lot 12",
    "from": "Média Solution <missions@media-solution.fr>",
    "date": "2026-03-30T07:00:05.000Z",
    "body": HTML,
    "plain": "Lot 12 : ici <https://www.dropbox.com/s/abc/lot12.zip?dl=0>",
    "headers": {"Message-ID": "<CAF=lot12.42@mail.gmail.com>"},
}


def _original_request() -> tuple[dict[str, str], bytes]:
    """The render_signal_server script's request for MESSAGE (JSON.stringify: compact, UTF-8)."""
    payload = {
        "subject": MESSAGE["subject"],
        "sender": MESSAGE["from"],
        "date": MESSAGE["date"],
        "body": MESSAGE["body"],
        "snippet": MESSAGE["plain"][:200],
    }
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {API_TOKEN}",
        "X-Source": "GoogleAppsScript",
        "User-Agent": APPS_SCRIPT_UA,
    }
    return headers, body


def _run_script(threads: list[list[dict[str, Any]]], statuses: list[int]) -> dict[str, Any]:
    node = shutil.which("node")
    require_component(node is not None, "node is needed to run the Apps Script")
    assert node is not None
    spec = {
        "script": str(SCRIPT),
        "properties": {
            "PROCESS_API_TOKEN": API_TOKEN,
            "INGRESS_URL": "https://gateway.test/api/ingress/gmail",
        },
        "threads": threads,
        "statuses": statuses,
    }
    done = subprocess.run(
        [node, str(RUNNER)], input=json.dumps(spec), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _stream(redis: Any, key_prefix: str) -> list[MailRaw]:
    return [decode_entry(f, MailRaw) for _i, f in await redis.xrange(f"{key_prefix}mail.raw")]


async def test_the_original_apps_script_request_gets_exactly_200(
    gateway: Gateway, redis: Any, key_prefix: str
) -> None:
    headers, body = _original_request()
    async with gateway.client() as client:
        response = await client.post("/api/ingress/gmail", content=body, headers=headers)
    assert response.status_code == 200  # the old script: anything else keeps the label
    reply = response.json()
    fields = {"subject": MESSAGE["subject"], "sender": MESSAGE["from"], "date": MESSAGE["date"]}
    assert reply["success"] is True
    assert reply["email_id"] == original_gmail_email_id(fields)  # the original's id
    assert reply["email_id"] in reply["message"]  # one line the script can log
    [event] = await _stream(redis, key_prefix)
    assert event.source == "gmail_push" and event.gmail is not None
    assert event.gmail == {**fields, "body": HTML}  # snippet ignored, as the original did


async def test_our_apps_script_request_gets_200_and_carries_the_message_id(
    gateway: Gateway, redis: Any, key_prefix: str
) -> None:
    run = _run_script([[MESSAGE]], [200])
    [request] = run["requests"]
    options = request["options"]
    assert request["url"] == "https://gateway.test/api/ingress/gmail"
    assert options["method"] == "post" and options["muteHttpExceptions"] is True
    headers = {**options["headers"], "Content-Type": options["contentType"]}
    assert headers["Authorization"] == f"Bearer {API_TOKEN}"
    payload = json.loads(options["payload"])
    assert set(payload) == {"subject", "sender", "date", "body", "snippet", "message_id"}
    async with gateway.client() as client:
        response = await client.post(
            "/api/ingress/gmail", content=options["payload"].encode(), headers=headers
        )
    assert response.status_code == 200
    message_id = MESSAGE["headers"]["Message-ID"]
    assert response.json()["email_id"] == message_id_email_id(message_id)
    [event] = await _stream(redis, key_prefix)
    assert event.gmail is not None and event.gmail["message_id"] == message_id
    assert event.gmail["date"] == MESSAGE["date"]
    assert run["unlabelled"] == [0]
    assert any("accepted" in line for line in run["logs"])


def test_our_apps_script_treats_any_2xx_as_accepted_and_retries_the_rest() -> None:
    read = {**MESSAGE, "unread": False}
    threads = [[MESSAGE], [MESSAGE, MESSAGE], [MESSAGE], [read]]
    run = _run_script(threads, [202, 204, 503, 409])
    # Thread 1 had a 503 on its second message; thread 2 a 409; the read one sends nothing.
    assert len(run["requests"]) == 4
    assert run["unlabelled"] == [0, 3]
    assert any("HTTP 503" in line for line in run["logs"])
    assert any("HTTP 409" in line for line in run["logs"])


def test_our_apps_script_sends_nothing_without_a_token() -> None:
    node = shutil.which("node")
    require_component(node is not None, "node is needed to run the Apps Script")
    assert node is not None
    spec = {"script": str(SCRIPT), "properties": {}, "threads": [[MESSAGE]], "statuses": []}
    done = subprocess.run(
        [node, str(RUNNER)], input=json.dumps(spec), capture_output=True, text=True, timeout=30
    )
    result = json.loads(done.stdout)
    assert result["requests"] == [] and result["unlabelled"] == []
    assert any("PROCESS_API_TOKEN" in line for line in result["logs"])
