"""Test emails with a unique marker, and the ways in: IMAP APPEND, HTTP raw ingress, and
the Gmail push of either Apps Script (the original's, without Message-ID, and ours)."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import email.utils
import functools
import json
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email import quoprimime
from email.policy import SMTP

from imapclient import IMAPClient

__all__ = ["HttpIngress", "ImapAppender", "Sent", "gmail_push_of", "make_email"]


@dataclass
class Sent:
    """One email handed to the system (the oracle's input history)."""

    marker: str
    channel: str  # "imap" | "http"
    at: float  # wall clock when the hand-over started
    done_at: float  # when the server confirmed it (APPEND OK / 202)
    attempts: int


def make_email(
    marker: str, *, size_pad: int = 0, recadrage: bool = True, html: bool = False
) -> bytes:
    """A Média Solution recadrage email with a Dropbox and a SwissTransfer link.

    The marker is in the subject and the Message-ID; links are unique per email
    so every email really goes through the Worker. With ``html`` it is what
    agencies actually send: multipart/alternative, the HTML part quoted-printable
    (links split by soft line breaks) and padded to ``size_pad`` bytes.
    """
    token = uuid.uuid4()
    dropbox = f"https://www.dropbox.com/scl/fi/{token.hex[:12]}/Rapport-{marker}.zip?rlkey=k{token.hex[12:20]}&dl=0"
    swiss = f"https://www.swisstransfer.com/d/{token}"
    subject = (
        f"Média Solution - Missions Recadrage - Lot 42 [{marker}]"
        if recadrage
        else f"Fichiers du jour [{marker}]"
    )
    body = (
        "Bonjour,\n\n"
        "Veuillez trouver les fichiers de la mission, à faire pour 16h30.\n"
        f"Dropbox : {dropbox}\n"
        f"SwissTransfer : {swiss}\n\n"
        "Merci,\nL'équipe Média Solution\n"
    )
    if html:
        return _html_email(marker, subject, body, dropbox, swiss, size_pad, token.hex[:8])
    headers = [
        "From: Agence Média <missions@mediasolution.example.org>",
        "To: alice@localhost",
        f"Subject: {subject}",
        f"Message-ID: <{marker}.{token.hex[:8]}@e2e.render-signal>",
        f"Date: {email.utils.formatdate(localtime=False)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()
    return text + _text_padding(size_pad) if size_pad else text


@functools.cache
def _text_padding(size_pad: int) -> bytes:
    # Made once per size: the bench's load generator shares the cores it measures.
    pad = ("Lorem ipsum dolor sit amet. " * (size_pad // 28 + 1))[:size_pad]
    return f"\r\n{pad}\r\n".encode()


_PARAGRAPH = '<p style="margin:0 0 12px;font-family:Arial">Lorem ipsum dolor, é à ç.</p>'
_HTML_HEADERS = (
    "From: Agence =?utf-8?q?M=C3=A9dia?= <missions@mediasolution.example.org>\r\n"
    "To: alice@localhost\r\n"
)
_QP_PART = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n"
)


def _qp(text: str) -> str:
    """Quoted-printable of the UTF-8 text with CRLF, as the email package's SMTP
    policy writes a part (its encoder works on the bytes, read as latin-1)."""
    return quoprimime.body_encode(text.encode().decode("latin-1"), 76).replace("\n", "\r\n")


@functools.cache
def _encoded_filler(size_pad: int) -> str:
    # Quoted-printable grows this markup by about a quarter (=3D, =C3=A9, soft breaks);
    # encoded once per size: the bench's load generator shares the cores it measures.
    filler = "\n".join([_PARAGRAPH] * max(1, int(size_pad / (1.25 * len(_PARAGRAPH)))))
    return _qp(filler)


def _html_email(
    marker: str, subject: str, text: str, dropbox: str, swiss: str, size_pad: int, tag: str
) -> bytes:
    """multipart/alternative as the email package writes it (SMTP policy), built by
    hand: the package's header objects cost milliseconds per email."""
    boundary = f"==============={random.randrange(sys.maxsize):019d}=="
    page = (
        '<html><body><table role="presentation"><tr><td>'
        "<p>Bonjour,</p><p>Veuillez trouver les fichiers de la mission, à faire pour 16h30.</p>"
        f'<p><a href="{dropbox.replace("&", "&amp;")}">Télécharger (Dropbox)</a><br>'
        f'<a href="{swiss}">Télécharger (SwissTransfer)</a></p>'
    )
    out = (
        _HTML_HEADERS
        + SMTP.fold_binary(*SMTP.header_store_parse("Subject", subject)).decode("ascii")
        + f"Message-ID: <{marker}.{tag}@e2e.render-signal>\r\n"
        + f"Date: {email.utils.formatdate(localtime=False)}\r\n"
        + "MIME-Version: 1.0\r\n"
        + f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'
        + f"--{boundary}\r\n{_QP_PART.format(subtype='plain')}\r\n{_qp(text)}\r\n"
        + f"--{boundary}\r\n{_QP_PART.format(subtype='html')}MIME-Version: 1.0\r\n\r\n"
        + f"{_qp(page)}\r\n{_encoded_filler(size_pad)}\r\n</td></tr></table></body></html>\r\n"
        + f"\r\n--{boundary}--\r\n"
    )
    return out.encode()


def gmail_push_of(message: bytes, *, with_message_id: bool, delay_s: float = 25.0) -> bytes:
    """The JSON an Apps Script pushes for ``message`` as Gmail shows it.

    Gmail's timestamp (``getDate()``) is when Gmail received the email, a little
    after its Date header: ``delay_s`` later here. The original's script sends
    subject, sender, date, body, snippet; ours adds ``message_id``.
    """
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    received = email.utils.parsedate_to_datetime(str(parsed["Date"])) + dt.timedelta(
        seconds=delay_s
    )
    part = parsed.get_body(preferencelist=("html", "plain"))
    text = part.get_content() if part is not None else ""
    body = text if "<" in text else "<div>" + text.replace("\n", "<br>") + "</div>"
    fields = {
        "subject": str(parsed["Subject"]),
        "sender": str(parsed["From"]),
        "date": received.astimezone(dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "body": body,
        "snippet": text[:200],
    }
    if with_message_id:
        fields["message_id"] = str(parsed["Message-ID"])
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


class ImapAppender:
    """APPENDs over one IMAP connection; reconnects (bounded) when the server drops."""

    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.client: IMAPClient | None = None

    def _connect(self) -> IMAPClient:
        if self.client is None:
            client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
            client.login(self.user, self.password)
            self.client = client
        return self.client

    def append(self, marker: str, message: bytes, deadline_s: float = 120.0) -> Sent:
        started = time.time()
        end = time.monotonic() + deadline_s
        attempts = 0
        while True:
            attempts += 1
            try:
                self._connect().append("INBOX", message)
                return Sent(marker, "imap", started, time.time(), attempts)
            except Exception:  # IMAP4.abort/error, OSError: server dropped, retry
                self.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)  # pacing between reconnect attempts while the server is down

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.logout()
            with contextlib.suppress(Exception):
                self.client.shutdown()
        self.client = None


class HttpIngress:
    """POST /api/ingress/raw with the bearer token; retries 503 / connection errors."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def _request(self, path: str, data: bytes, content_type: str) -> urllib.request.Request:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type}
        if path.endswith("/gmail"):
            headers["X-Source"] = "GoogleAppsScript"  # what both Apps Scripts send
        return urllib.request.Request(
            f"{self.base_url}{path}", data=data, method="POST", headers=headers
        )

    def push_gmail(self, payload: bytes) -> dict[str, object]:
        """POST /api/ingress/gmail as the Apps Script does; the reply (it must be 200)."""
        request = self._request("/api/ingress/gmail", payload, "application/json")
        with urllib.request.urlopen(request, timeout=15) as response:
            assert response.status == 200, response.status
            reply: dict[str, object] = json.loads(response.read())
        return reply

    def post_once(self, message: bytes, timeout_s: float = 60.0) -> int | str:
        """One POST /api/ingress/raw, no retry: the status, or the error that ended it."""
        request = self._request("/api/ingress/raw", message, "message/rfc822")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError as exc:
            return type(exc).__name__

    def post(self, marker: str, message: bytes, deadline_s: float = 120.0) -> Sent:
        started = time.time()
        end = time.monotonic() + deadline_s
        attempts = 0
        while True:
            attempts += 1
            request = self._request("/api/ingress/raw", message, "message/rfc822")
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    reply = json.loads(response.read() or b"{}")
                    if response.status == 202 and reply.get("success"):
                        return Sent(marker, "http", started, time.time(), attempts)
                    raise AssertionError(f"ingress answered {response.status}: {reply}")
            except urllib.error.HTTPError as exc:
                if exc.code not in (502, 503, 504) or time.monotonic() > end:
                    raise AssertionError(f"ingress refused {marker}: {exc.code}") from exc
            except OSError:
                if time.monotonic() > end:
                    raise
            time.sleep(0.2)  # the sender's retry pacing while the gateway/Redis is down
