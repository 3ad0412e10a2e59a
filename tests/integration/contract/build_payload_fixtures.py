"""Regenerate the payload contract fixtures.

``uv run python tests/integration/contract/build_payload_fixtures.py``

For each source the original handled (IMAP; raw RFC 822, which it read like
IMAP; the Gmail Apps Script push) and each detector outcome (recadrage, DESABO,
none), this writes the input (``<case>.eml`` or ``<case>.json``) and, in
``payloads.json``, the webhook body the original would have sent for it,
computed with the original's formulas (render_signal_server, orchestrator
``_build_webhook_payload`` and ``IngressService``; facts in
``docs/original-system.md``):

* IMAP/raw: ``microsoft_graph_email_id`` = md5 of ``Message-ID|Subject|Date``
  (raw Message-ID and Date headers, RFC 2047-decoded Subject);
  ``receivedDateTime`` = the raw Date header; ``sender_address`` = the raw From
  header; ``sender_email`` = the address in From, lowercased;
  ``email_content`` = text/plain parts + "\\n" + text/html parts;
  ``bodyPreview`` = its first 200 characters; no ``source``.
* Gmail: ``microsoft_graph_email_id`` = md5 of ``subject|sender_email|date``;
  ``receivedDateTime`` = ``date``; ``sender_address`` = ``sender``;
  ``email_content`` = ``body`` (HTML); ``bodyPreview`` = ``body[:200]``;
  ``source`` = ``gmail_push``.
* ``detector``/``delivery_time`` as the original's rules decide for the text
  (stated per case); ``delivery_links`` = ``[{provider, raw_url}]``.

No time window is configured, so ``webhooks_time_*`` are absent, as in the
original. ``ours`` records where render-signal deliberately differs (the id:
see docs/migrating.md §5), with the original's value kept in ``legacy_email_id``.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import hashlib
import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FROM_RAW = "=?utf-8?q?M=C3=A9dia_Solution?= <Missions@Media-Solution.fr>"
DATE_RAW = "Tue, 03 Feb 2026 09:41:07 +0100"
GMAIL_SENDER = "Média Solution <missions@media-solution.fr>"
GMAIL_DATE = "2026-02-03T08:41:12.000Z"
DESABO_TEXT = (
    "Bonjour, seriez-vous disponible demain pour une journée aux tarifs habituels ? "
    "Pour vous désabonner de ces propositions, répondez STOP."
)


def subject_header(text: str) -> str:
    return email.header.Header(text, "utf-8").encode()


def links(kind: str, source: str) -> list[tuple[str, str]]:
    if kind == "recadrage":
        return [("dropbox", f"https://www.dropbox.com/s/k3x9{source}/Lot12-{source}.zip?dl=0")]
    if kind == "none":
        return [("fromsmash", f"https://fromsmash.com/Fichiers-{source}")]
    return []


def texts(kind: str, source: str) -> tuple[str, str, str, str | None]:
    """(subject, plain, html, delivery_time)."""
    found = links(kind, source)
    url = found[0][1] if found else ""
    if kind == "recadrage":
        subject = f"Média Solution - Missions Recadrage - Lot 12 ({source})"
        plain = f"Bonjour,\nMissions à faire pour 16h30.\nDropbox : {url}\nMerci\n"
        html = f'<p>Bonjour,</p><p>Missions à faire pour 16h30.</p><a href="{url}">Dropbox</a>'
        return subject, plain, html, "16h30"
    if kind == "desabo":
        return f"Disponibilité demain ({source})", DESABO_TEXT + "\n", "", None
    subject = f"Vos fichiers ({source})"
    plain = f"Bonjour,\nVos fichiers : {url}\n"
    return subject, plain, f'<p>Vos fichiers : <a href="{url}">{url}</a></p>', None


def rfc822(kind: str, source: str) -> bytes:
    subject, plain, html, _ = texts(kind, source)
    head = [
        f"From: {FROM_RAW}",
        "To: photographe@studio.example.org",
        f"Subject: {subject_header(subject)}",
        f"Date: {DATE_RAW}",
        f"Message-ID: <{kind}.{source}.20260203@media-solution.fr>",
        "MIME-Version: 1.0",
    ]
    if not html:
        head += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(head) + "\r\n\r\n" + plain.replace("\n", "\r\n")).encode()
    head.append('Content-Type: multipart/alternative; boundary="b1"')
    parts = [("plain", plain), ("html", html)]
    body = "".join(
        f"--b1\r\nContent-Type: text/{sub}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
        f"\r\n\r\n{text.replace(chr(10), chr(13) + chr(10))}\r\n"
        for sub, text in parts
    )
    return ("\r\n".join(head) + "\r\n\r\n" + body + "--b1--\r\n").encode()


def gmail(kind: str) -> dict[str, str]:
    subject, plain, html, _ = texts(kind, "gmail")
    body = html or "<div>" + plain.replace("\n", "<br>") + "</div>"
    return {
        "subject": subject,
        "sender": GMAIL_SENDER,
        "date": GMAIL_DATE,
        "body": body,
        "snippet": plain[:200],
    }


# -- the original's formulas ----------------------------------------------------------
def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _decoded(value: str) -> str:
    out = ""
    for part, charset in email.header.decode_header(value):
        out += part.decode(charset or "utf-8", errors="ignore") if isinstance(part, bytes) else part
    return out


def original_imap(raw: bytes, kind: str, source: str) -> dict[str, Any]:
    msg = email.message_from_bytes(raw)
    subject = _decoded(msg.get("Subject", ""))
    from_raw, date_raw = msg.get("From", ""), msg.get("Date", "")
    match = re.search(r"<([^>]+)>|([^\s<>]+@[^\s<>]+)", from_raw)
    sender = (match.group(1) or match.group(2)).lower() if match else ""
    plain = html = ""
    for part in msg.walk():
        if part.is_multipart() or "attachment" in (part.get("Content-Disposition") or ""):
            continue
        data = part.get_payload(decode=True) or b""
        text = data.decode(part.get_content_charset() or "utf-8", errors="ignore")
        if part.get_content_type() == "text/plain":
            plain += text
        elif part.get_content_type() == "text/html":
            html += text
    combined = plain + "\n" + html
    payload: dict[str, Any] = {
        "microsoft_graph_email_id": _md5(f"{msg.get('Message-ID', '')}|{subject}|{date_raw}"),
        "subject": subject,
        "receivedDateTime": date_raw,
        "sender_address": from_raw or sender,
        "bodyPreview": combined[:200],
        "email_content": combined,
        "sender_email": sender,
    }
    return _classified(payload, kind, source)


def original_gmail(fields: dict[str, str], kind: str) -> dict[str, Any]:
    sender = (email.utils.parseaddr(fields["sender"])[1] or fields["sender"]).strip().lower()
    payload: dict[str, Any] = {
        "microsoft_graph_email_id": _md5(f"{fields['subject']}|{sender}|{fields['date']}"),
        "subject": fields["subject"],
        "receivedDateTime": fields["date"],
        "sender_address": fields["sender"],
        "bodyPreview": fields["body"][:200],
        "email_content": fields["body"],
        "source": "gmail_push",
        "sender_email": sender,
    }
    return _classified(payload, kind, "gmail")


def _classified(payload: dict[str, Any], kind: str, source: str) -> dict[str, Any]:
    delivery_time = texts(kind, source)[3]
    if kind == "recadrage":
        payload["detector"] = "recadrage"
        payload["delivery_time"] = delivery_time
    elif kind == "desabo":
        payload["detector"] = "desabonnement_journee_tarifs"
    found = links(kind, source)
    if found:
        payload["delivery_links"] = [{"provider": p, "raw_url": u} for p, u in found]
    return payload


def message_id_email_id(message_id: str) -> str:
    """render-signal's id for a Message-ID (common.identity), written out for the fixture."""
    return hashlib.sha256(message_id.strip().strip("<>").strip().lower().encode()).hexdigest()[:32]


def build() -> None:
    cases: list[dict[str, Any]] = []
    for kind in ("recadrage", "desabo", "none"):
        for source in ("imap", "raw"):
            raw = rfc822(kind, source)
            name = f"{source}_{kind}"
            (HERE / f"{name}.eml").write_bytes(raw)
            original = original_imap(raw, kind, source)
            mid = email.message_from_bytes(raw)["Message-ID"]
            cases.append(
                {
                    "case": name,
                    "source": source,
                    "input": f"{name}.eml",
                    "original": original,
                    "ours": {"microsoft_graph_email_id": message_id_email_id(mid)},
                }
            )
        fields = gmail(kind)
        name = f"gmail_push_{kind}"
        (HERE / f"{name}.json").write_text(json.dumps(fields, ensure_ascii=False, indent=1) + "\n")
        cases.append(
            {
                "case": name,
                "source": "gmail_push",
                "input": f"{name}.json",
                "original": original_gmail(fields, kind),
                "ours": {},
            }
        )
    text = json.dumps(cases, ensure_ascii=False, indent=1) + "\n"
    (HERE / "payloads.json").write_text(text)


if __name__ == "__main__":
    build()
