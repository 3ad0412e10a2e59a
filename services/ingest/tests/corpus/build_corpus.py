"""Regenerate the ingest corpus: ``uv run python services/ingest/tests/corpus/build_corpus.py``.

Each case writes ``<name>.eml`` and an entry in ``corpus.json`` with the
expected links, detector, delivery_time and is_urgent (clock fixed by the test
at 2025-06-02T10:15:00Z, Europe/Paris -> URGENCE gives 13h15).
"""

from __future__ import annotations

import base64
import json
import quopri
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).parent
CASES: list[dict[str, Any]] = []

DBX_S = "https://www.dropbox.com/s/a1b2c3d4e5/Lot%2012%20photos.zip?dl=0"
DBX_FI = "https://www.dropbox.com/scl/fi/k9x8y7w6v5/IMG_2031.CR2?rlkey=abcdefghij0123456789&dl=0"
DBX_FO = (
    "https://www.dropbox.com/scl/fo/q1w2e3r4t5y6u7i8o9p0a/AKfj3kd93jdKD83jdk3?"
    "rlkey=zz9y8x7w6v5u4t3s2r1q0p9o8n7m6l5k&st=ab12cd34&dl=0"
)
DBX_REQ = "https://www.dropbox.com/request/AbCdEfGhIjKlMnOp"
SMASH = "https://fromsmash.com/Lot-12-Recadrage"
SWISS = "https://www.swisstransfer.com/d/3f2b8c1e-9a7d-4e6f-b5c4-2d1e0f9a8b7c"
WETR = "https://wetransfer.com/downloads/4f1c2a9b8e7d6c5b4a39281706f5e4d320250602101500/a1b2c3"
WETL = "https://we.tl/t-Zx9Yw8Vu7T"
LOGO = "https://www.dropbox.com/scl/fi/lg0001/logo_dropbox.png?rlkey=l0g0&raw=1"
AVATAR = "https://www.dropbox.com/scl/fi/av0002/avatar-jean.jpg?rlkey=av&raw=1"
MS_ICON = "https://www.dropbox.com/scl/fi/ms0003/ms_banner.webp?raw=1&rlkey=ms"
PHOTO_IMG = "https://www.dropbox.com/scl/fi/ph0004/photo_client.png?rlkey=ph&raw=1"

MS_SUBJECT = "Média Solution - Missions Recadrage - Lot 12"
FROM = "Média Solution <Missions@Media-Solution.fr>"
FROM_EMAIL = "missions@media-solution.fr"


def enc_subject(text: str, charset: str = "utf-8", kind: str = "q") -> str:
    data = text.encode(charset)
    if kind == "b":
        return f"=?{charset}?b?{base64.b64encode(data).decode()}?="
    q = quopri.encodestring(data, header=True).decode().replace("=\n", "")
    return f"=?{charset}?q?{q}?="


def headers(subject: str, sender: str = FROM, msgid: str | None = None, extra: str = "") -> str:
    lines = [
        f"From: {sender}",
        "To: photographe@example.org",
        f"Subject: {subject}",
        "Date: Mon, 02 Jun 2025 09:12:00 +0200",
        "MIME-Version: 1.0",
    ]
    if msgid:
        lines.append(f"Message-ID: <{msgid}>")
    if extra:
        lines.append(extra)
    return "\r\n".join(lines) + "\r\n"


def single(subject: str, body: bytes, ctype: str, cte: str = "8bit", **kw: Any) -> bytes:
    head = headers(subject, **kw) + f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n"
    return head.encode("utf-8") + b"\r\n" + body


def qp(text: str, charset: str = "utf-8") -> bytes:
    return quopri.encodestring(text.encode(charset)).replace(b"\n", b"\r\n")


def b64(text: str, charset: str = "utf-8") -> bytes:
    return base64.encodebytes(text.encode(charset)).replace(b"\n", b"\r\n")


def part(ctype: str, body: bytes, cte: str = "8bit", extra: str = "") -> bytes:
    head = f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n"
    if extra:
        head += extra + "\r\n"
    return head.encode() + b"\r\n" + body


def multipart(subject: str, kind: str, parts: list[bytes], boundary: str = "b0und", **kw: Any):
    head = headers(subject, **kw) + f'Content-Type: multipart/{kind}; boundary="{boundary}"\r\n'
    out = head.encode("utf-8") + b"\r\nThis is a multi-part message in MIME format.\r\n"
    for p in parts:
        out += f"--{boundary}\r\n".encode() + p + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def case(name: str, raw: bytes, links: list[tuple[str, ...]], **expect: Any) -> None:
    """``links``: ``(provider, url)`` or ``(provider, url, flag, ...)`` (``DeliveryLink.flags``)."""
    (HERE / f"{name}.eml").write_bytes(raw)
    entry: dict[str, Any] = {
        "file": f"{name}.eml",
        "links": [[link[0], link[1], *([list(link[2:])] if link[2:] else [])] for link in links],
        "detector": expect.pop("detector", None),
        "delivery_time": expect.pop("delivery_time", None),
        "is_urgent": expect.pop("is_urgent", False),
    }
    entry.update(expect)
    CASES.append(entry)


def html(body: str) -> str:
    return f"<html><head><style>p {{ color: #333; }}</style></head><body>{body}</body></html>"


def build() -> None:
    # -- provider URL shapes -------------------------------------------------------
    case(
        "dropbox_s_plain",
        single("Vos fichiers", f"Bonjour,\n{DBX_S}\nMerci".encode(), "text/plain; charset=utf-8"),
        [("dropbox", DBX_S)],
        sender_email=FROM_EMAIL,
    )
    case(
        "dropbox_scl_fi_html_amp",
        single(
            "Fichier",
            html(f'<a href="{DBX_FI.replace("&", "&amp;")}">Télécharger</a>').encode(),
            "text/html; charset=utf-8",
        ),
        [("dropbox", DBX_FI)],
    )
    case(
        "dropbox_scl_fo_rlkey_qp",
        single(
            "Dossier",
            qp(html(f'<p>Dossier&nbsp;: <a href="{DBX_FO.replace("&", "&amp;")}">ouvrir</a></p>')),
            "text/html; charset=utf-8",
            "quoted-printable",
        ),
        [("dropbox", DBX_FO)],
    )
    case(
        "dropbox_scl_fo_without_rlkey",
        single(
            "Dossier",
            b"Lien: https://www.dropbox.com/scl/fo/abc123/def456?dl=0\r\n",
            "text/plain; charset=us-ascii",
        ),
        # A folder link without its rlkey: not a shape we know, kept as the original did.
        [("dropbox", "https://www.dropbox.com/scl/fo/abc123/def456?dl=0", "unknown_shape")],
    )
    case(
        "dropbox_request_plain",
        single("Demande de fichiers", f"Deposez ici: {DBX_REQ}\n".encode(), "text/plain"),
        [("dropbox", DBX_REQ)],
    )
    case(
        "fromsmash_plain",
        single("Smash", f"Voici le lien {SMASH} pour le lot".encode(), "text/plain; charset=utf-8"),
        [("fromsmash", SMASH)],
    )
    case(
        "swisstransfer_html",
        single(
            "SwissTransfer",
            html(f"<a href='{SWISS}'>{SWISS}</a>").encode(),
            "text/html; charset=utf-8",
        ),
        [("swisstransfer", SWISS)],
    )
    case(
        "wetransfer_downloads",
        single(
            "WeTransfer",
            html(f'<a href="{WETR}">Get files</a>').encode(),
            "text/html; charset=utf-8",
        ),
        [("wetransfer", WETR)],
    )
    case(
        "wetransfer_short",
        single("we.tl", f"Link: {WETL}\r\n".encode(), "text/plain"),
        [("wetransfer", WETL)],
    )
    case(
        "dropbox_help_links_ignored",
        single(
            "Aide",
            html(
                '<a href="https://www.dropbox.com/help">Aide</a> <a href="https://www.dropbox.com/">Home</a>'
                ' <a href="https://www.swisstransfer.com/fr/">SwissTransfer</a>'
            ).encode(),
            "text/html",
        ),
        [],
    )
    case(
        "all_providers_alternative",
        multipart(
            "Tous les liens",
            "alternative",
            [
                part("text/plain; charset=utf-8", f"{DBX_S}\n{SMASH}\n{SWISS}\n{WETL}\n".encode()),
                part(
                    "text/html; charset=utf-8",
                    html(
                        f'<a href="{DBX_S}">a</a><a href="{SMASH}">b</a><a href="{WETR}">c</a>'
                        f'<a href="{SWISS}">d</a>'
                    ).encode(),
                ),
            ],
        ),
        [
            ("dropbox", DBX_S),
            ("fromsmash", SMASH),
            ("swisstransfer", SWISS),
            ("wetransfer", WETL),
            ("wetransfer", WETR),
        ],
    )
    # -- transfer encodings and charsets -------------------------------------------
    long_fo = DBX_FO + "&extra=" + "x" * 120
    case(
        "qp_html_long_link_soft_breaks",
        single(
            "QP",
            qp(
                html(
                    f'<table><tr><td><a href="{long_fo.replace("&", "&amp;")}" '
                    'style="color:#0061fe;'
                    'text-decoration:none">Voir le dossier partag=C3=A9</a></td></tr></table>'
                )
            ),
            "text/html; charset=utf-8",
            "quoted-printable",
        ),
        [("dropbox", long_fo)],
    )
    case(
        "qp_soft_break_in_host",
        single(
            "QP host",
            b"Lien : https://www.drop=\r\nbox.com/s/softbreak1/fi=\r\nle.zip?dl=3D0 fin\r\n",
            "text/plain; charset=utf-8",
            "quoted-printable",
        ),
        [("dropbox", "https://www.dropbox.com/s/softbreak1/file.zip?dl=0")],
    )
    case(
        "base64_html",
        single(
            "B64",
            b64(html(f'<a href="{SWISS}">t\u00e9l\u00e9charger</a>')),
            "text/html; charset=utf-8",
            "base64",
        ),
        [("swisstransfer", SWISS)],
    )
    case(
        "base64_plain",
        single("B64 plain", b64(f"Fichiers : {SMASH}\n"), "text/plain; charset=utf-8", "base64"),
        [("fromsmash", SMASH)],
    )
    case(
        "iso8859_1_body",
        single(
            "Latin-1",
            qp(f"Voilà les éléments demandés : {DBX_S}\n", "iso-8859-1"),
            "text/plain; charset=iso-8859-1",
            "quoted-printable",
        ),
        [("dropbox", DBX_S)],
        body_contains="Voilà les éléments",
    )
    case(
        "windows1252_body",
        single(
            "CP1252",
            f"Prix 30 € – « lot » : {WETL}\n".encode("cp1252"),
            "text/plain; charset=windows-1252",
            "8bit",
        ),
        [("wetransfer", WETL)],
        body_contains="30 € – « lot »",
    )
    case(
        "iso_label_cp1252_bytes",
        single(
            "Mislabelled",
            "L’équipe — merci".encode("cp1252") + f" {SMASH}".encode(),
            "text/plain; charset=iso-8859-1",
        ),
        [("fromsmash", SMASH)],
        body_contains="L’équipe — merci",
    )
    case(
        "rfc2047_q_subject",
        single(
            enc_subject(MS_SUBJECT),
            f"{SMASH} à faire pour 15h".encode(),
            "text/plain; charset=utf-8",
        ),
        [("fromsmash", SMASH)],
        detector="recadrage",
        delivery_time="15h00",
        subject=MS_SUBJECT,
    )
    case(
        "rfc2047_b_latin1_subject",
        single(enc_subject("Réunion été", "iso-8859-1", "b"), b"rien", "text/plain"),
        [],
        subject="Réunion été",
    )
    case(
        "rfc2047_unknown_charset",
        single("=?x-klingon?q?Caf=C3=A9?= ok", b"corps", "text/plain"),
        [],
        subject="Café ok",
    )
    case(
        "invalid_body_charset",
        single("Charset", f"Réf {DBX_S}".encode(), "text/plain; charset=x-bogus-8"),
        [("dropbox", DBX_S)],
        body_contains="Réf",
    )
    case(
        "non_text_codec_charset",
        single("Codec", f"zip {SMASH}".encode(), "text/plain; charset=zlib_codec"),
        [("fromsmash", SMASH)],
    )
    case(
        "raw_utf8_subject",
        single("Média Solution — été", f"{WETL}".encode(), "text/plain"),
        [("wetransfer", WETL)],
        subject="Média Solution — été",
    )
    # -- structure -----------------------------------------------------------------
    inner = headers("Fichiers du lot", sender="Agence <agence@client.fr>").encode() + (
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        + html(f'<a href="{SWISS}">x</a>').encode()
    )
    case(
        "forwarded_rfc822",
        multipart(
            "Fwd: Fichiers du lot",
            "mixed",
            [
                part("text/plain; charset=utf-8", b"Voir le message transfere ci-dessous."),
                part("message/rfc822", inner, "7bit", "Content-Disposition: inline"),
            ],
        ),
        [("swisstransfer", SWISS)],
    )
    inner2 = (
        headers("Lot", sender="a@b.fr").encode() + b'Content-Type: multipart/mixed; boundary="in1"'
    )
    inner2 += b"\r\n\r\n--in1\r\n" + part("text/plain", f"deep {SMASH}".encode()) + b"\r\n--in1\r\n"
    inner2 += (
        part(
            "message/rfc822",
            headers("x", sender="c@d.fr").encode()
            + b"Content-Type: text/plain\r\n\r\n"
            + DBX_REQ.encode(),
        )
        + b"\r\n--in1--\r\n"
    )
    case(
        "nested_forward_twice",
        multipart(
            "TR: Lot",
            "mixed",
            [
                part("text/plain", f"top {WETL}".encode()),
                part("message/rfc822", inner2, "7bit"),
            ],
        ),
        [("wetransfer", WETL), ("fromsmash", SMASH), ("dropbox", DBX_REQ)],
    )
    case(
        "attachment_text_ignored",
        multipart(
            "Pièce jointe",
            "mixed",
            [
                part("text/plain", b"Voir PJ."),
                part(
                    "text/plain; name=links.txt",
                    f"{SMASH}".encode(),
                    "8bit",
                    'Content-Disposition: attachment; filename="links.txt"',
                ),
                part(
                    "application/pdf",
                    base64.encodebytes(b"%PDF-1.4 fake"),
                    "base64",
                    'Content-Disposition: attachment; filename="a.pdf"',
                ),
            ],
        ),
        [],
    )
    case(
        "related_html_with_images",
        multipart(
            "Related",
            "related",
            [
                part(
                    "text/html; charset=utf-8",
                    html(f'<img src="cid:x"><a href="{DBX_FI}">f</a>').encode(),
                ),
                part("image/png", base64.encodebytes(b"\x89PNG fake"), "base64", "Content-ID: <x>"),
            ],
        ),
        [("dropbox", DBX_FI)],
    )
    case(
        "plain_only_no_links",
        single("Bonjour", b"Juste un message sans lien.\r\n", "text/plain"),
        [],
    )
    case(
        "html_only_no_links",
        single(
            "Newsletter",
            html(
                "<p>Rien &agrave; t&eacute;l&eacute;charger"
                ' <a href="https://www.example.org/x">ici</a></p>'
            ).encode(),
            "text/html",
        ),
        [],
    )
    case(
        "no_content_type_header",
        (headers("Sans type").encode() + b"\r\n" + DBX_S.encode()),
        [("dropbox", DBX_S)],
    )
    case(
        "lf_line_endings",
        single("LF", f"Lien\n{SWISS}\n".encode(), "text/plain").replace(b"\r\n", b"\n"),
        [("swisstransfer", SWISS)],
    )
    case(
        "nul_bytes_in_body",
        single("NUL", f"a\x00b {SMASH}\x00 fin".encode(), "text/plain"),
        [("fromsmash", SMASH)],
        body_contains="ab ",
    )
    case(
        "logo_images_skipped",
        single(
            "Logos",
            html(
                f'<img src="{LOGO.replace("&", "&amp;")}"><img src="{AVATAR}"><img src="{MS_ICON}">'
                f'<img src="{PHOTO_IMG}"><a href="{DBX_S}">fichiers</a>'
            ).encode(),
            "text/html",
        ),
        [("dropbox", PHOTO_IMG), ("dropbox", DBX_S)],
    )
    case(
        "trailing_punctuation",
        single("Ponctuation", f"Lien ({SMASH}). Et {WETL}, puis {DBX_REQ}.".encode(), "text/plain"),
        [("fromsmash", SMASH), ("wetransfer", WETL), ("dropbox", DBX_REQ)],
    )
    case(
        "uppercase_scheme_host",
        single("Maj", b"HTTPS://WWW.DROPBOX.COM/s/UPPER1/F.ZIP?dl=0", "text/plain"),
        [("dropbox", "HTTPS://WWW.DROPBOX.COM/s/UPPER1/F.ZIP?dl=0")],
    )
    case(
        "lookalike_hosts_ignored",
        single(
            "Phish",
            b"https://dropbox.com.evil.net/s/x1/y "
            b"https://evildropbox.com/s/x2/y https://www.dropbox.co/s/x3",
            "text/plain",
        ),
        [],
    )
    case(
        "duplicate_links_first_wins",
        single("Doublons", f"{SMASH} {DBX_S} {SMASH} {DBX_S}".encode(), "text/plain"),
        [("fromsmash", SMASH), ("dropbox", DBX_S)],
    )

    # -- Média Solution recadrage --------------------------------------------------
    def ms(name: str, body: str, when: str | None, subject: str = MS_SUBJECT, **kw: Any) -> None:
        link = kw.pop("link", DBX_FO)
        text = f"Bonjour,\n\nVoici le lot.\n{body}\n\nLien : {link}\n" if link else body
        links = kw.pop("links", [("dropbox", link)] if link else [])
        case(
            name,
            single(enc_subject(subject), qp(text), "text/plain; charset=utf-8", "quoted-printable"),
            links,
            detector="recadrage" if when else None,
            delivery_time=when,
            **kw,
        )

    ms("recadrage_hhmm", "Missions à faire pour 14h30 merci", "14h30")
    ms("recadrage_h_no_minutes", "à faire pour 9h svp", "09h00")
    ms("recadrage_colon", "A faire pour 16:45 au plus tard", "16h45")
    ms("recadrage_date", "à faire pour le 3/7/2025 à 10h", "le 03/07/2025 à 10h00")
    ms("recadrage_date_double_a", "à faire pour le 12/11/2025 à à 8:05", "le 12/11/2025 à 08h05")
    ms("recadrage_fallback_time", "Merci de livrer vers 18h au plus tard (lot 12).", "18h00")
    ms("recadrage_urgence", "à faire pour 14h30", "13h15", subject="URGENCE " + MS_SUBJECT)
    ms(
        "recadrage_tokens_lowercase",
        "à faire pour 7h5",
        "07h05",
        subject="tr media solution missions recadrage lot 4",
    )
    ms("recadrage_no_time", "Pas d'heure indiquée.", None)
    ms("recadrage_no_link", "à faire pour 14h30", None, link="")
    ms(
        "recadrage_swisstransfer",
        "à faire pour 11h",
        "11h00",
        link=SWISS,
        links=[("swisstransfer", SWISS)],
    )
    case(
        "recadrage_html_entities",
        single(
            MS_SUBJECT,
            html(
                f'<p>Missions &agrave; faire pour <b>11h15</b></p><a href="{SMASH}">lien</a>'
            ).encode(),
            "text/html; charset=utf-8",
        ),
        [("fromsmash", SMASH)],
        detector="recadrage",
        delivery_time="11h15",
    )

    # -- DESABO ------------------------------------------------------------------------
    def desabo(name: str, body: str, subject: str = "Disponibilité", **kw: Any) -> None:
        links = kw.pop("links", [])
        case(
            name,
            single(enc_subject(subject), qp(body), "text/plain; charset=utf-8", "quoted-printable"),
            links,
            **kw,
        )

    offer = (
        "Bonjour, seriez-vous disponible pour une journée de shooting aux tarifs habituels ? "
        "Pour ne plus recevoir nos offres, cliquez pour vous désabonner."
    )
    desabo("desabo_non_urgent", offer, detector="desabonnement_journee_tarifs")
    desabo(
        "desabo_urgent",
        offer,
        subject="URGENT : dispo demain ?",
        detector="desabonnement_journee_tarifs",
        is_urgent=True,
    )
    desabo(
        "desabo_urgence_in_body",
        offer + " C'est une urgence.",
        detector="desabonnement_journee_tarifs",
        is_urgent=True,
    )
    desabo(
        "desabo_dropbox_request",
        "Une JOURNÉE aux   tarifs\nhabituels ? Déposez : " + DBX_REQ,
        detector="desabonnement_journee_tarifs",
        links=[("dropbox", DBX_REQ)],
    )
    desabo("desabo_forbidden_facture", offer + " Votre facture suit.")
    desabo("desabo_forbidden_reference_client", offer + " Référence client : 1234")
    desabo("desabo_missing_tarifs", "Une journée ? Pour vous désabonner, répondez STOP.")

    build_leniency()


def safelinks(url: str) -> str:
    return (
        "https://eur01.safelinks.protection.outlook.com/?url="
        + quote(url, safe="")
        + "&data=05%7C02%7Cphoto%40studio.fr%7C1b2c%7C0%7C0%7C638&sdata=Qk9OSk9VUg%3D&reserved=0"
    )


def proofpoint_v2(url: str) -> str:
    encoded = "".join(c if c.isalnum() or c in "./" else f"%{ord(c):02X}" for c in url)
    u = encoded.replace("%", "-").replace("/", "_")
    return f"https://urldefense.proofpoint.com/v2/url?u={u}&d=DwMFaQ&c=euGZ&r=Xk3&m=Q9x&s=Zt1&e="


def proofpoint_v3(url: str, hidden: str = "") -> str:
    """The v3 form: each character of ``hidden`` in ``url`` is replaced by ``*``."""
    kept = "".join("*" if c in hidden else c for c in url)
    replaced = "".join(c for c in url if c in hidden)
    tail = base64.urlsafe_b64encode(replaced.encode()).decode().rstrip("=")
    return f"https://urldefense.com/v3/__{kept}__;{tail}!!Ab7Q!xYz-Q_9aBc$"


def build_leniency() -> None:
    """Issue 14, item 6: unknown shapes on provider hosts, typographic punctuation, gateways."""

    def text(name: str, subject: str, body: str, links: list[tuple[str, ...]], **kw: str) -> None:
        """One single-part case; ``charset`` (default utf-8) encodes the body, ``ctype``
        defaults to text/plain."""
        charset, ctype = kw.get("charset", "utf-8"), kw.get("ctype", "text/plain")
        case(name, single(subject, body.encode(charset), f"{ctype}; charset={charset}"), links)

    swiss_odd = "https://www.swisstransfer.com/d/Lot12-photos"
    dropbox_transfer = "https://www.dropbox.com/t/Xy12AbCdEf"  # Dropbox Transfer
    wetransfer_odd = "https://www.wetransfer.com/transfers/ab12"
    text(
        "unknown_shapes_on_provider_hosts",
        "Formes inconnues",
        f"{swiss_odd}\n{dropbox_transfer}\n{wetransfer_odd}\n",
        [
            (p, u, "unknown_shape")
            for p, u in (
                ("swisstransfer", swiss_odd),
                ("dropbox", dropbox_transfer),
                ("wetransfer", wetransfer_odd),
            )
        ],
    )
    text(
        "provider_pages_and_lookalikes_refused",
        "Pages",
        "https://www.swisstransfer.com/fr/ https://www.dropbox.com/pricing?x=1 "
        "https://help.dropbox.com/share/odd https://www.swisstransfer.com.evil.net/d/odd "
        "https://swisstransfer.co/d/odd https://www.dropbox.com/static/images/logo.svg "
        "https://fromsmash.com.evil.net/x/y",
        [],
    )
    # Closing quotes, guillemets, ellipsis, CJK and full-width marks, in four charsets.
    text(
        "typographic_punctuation_cp1252",
        "Guillemets",
        f"Lien : \u201c{SMASH}\u201d\u2026 et {WETL}\u2019. Puis \u00ab{DBX_REQ}\u00bb.",
        [("fromsmash", SMASH), ("wetransfer", WETL), ("dropbox", DBX_REQ)],
        charset="windows-1252",
    )
    text(
        "typographic_punctuation_latin1",
        "Guillemets latin-1",
        f"Voir \u00ab{SWISS}\u00bb, merci.",
        [("swisstransfer", SWISS)],
        charset="iso-8859-1",
    )
    text(
        "fullwidth_punctuation_utf8",
        "Pleine chasse",
        f"リンク：{SMASH}。次（{WETL}）！{DBX_S}、以上",
        [("fromsmash", SMASH), ("wetransfer", WETL), ("dropbox", DBX_S)],
    )
    text(
        "fullwidth_punctuation_shift_jis",
        "Shift_JIS",
        f"ファイル：{SMASH}」と{WETL}…",
        [("fromsmash", SMASH), ("wetransfer", WETL)],
        charset="shift_jis",
    )
    text(
        "typographic_entities_html",
        "Entités",
        html(f"<p>&laquo;{SMASH}&raquo; &ldquo;{WETL}&rdquo;&hellip;</p>"),
        [("fromsmash", SMASH), ("wetransfer", WETL)],
        ctype="text/html",
    )
    # Mail-security gateways.
    v1 = "https://urldefense.proofpoint.com/v1/url?u=" + quote(SMASH, safe="") + "&k=7Zz%3D%0A&r=ab"
    text(
        "gateway_safelinks",
        "Safe Links",
        html(f'<a href="{safelinks(DBX_S).replace("&", "&amp;")}">Lot 12</a>'),
        [("dropbox", DBX_S, "unwrapped:safelinks")],
        ctype="text/html",
    )
    proofpoint = "unwrapped:proofpoint"
    text(
        "gateway_proofpoint_v1_v2",
        "Proofpoint",
        f"{v1}\n{proofpoint_v2(SWISS)}\n{proofpoint_v2(DBX_FO)}\n",
        [
            ("fromsmash", SMASH, proofpoint),
            ("swisstransfer", SWISS, proofpoint),
            ("dropbox", DBX_FO, proofpoint),
        ],
    )
    text(
        "gateway_proofpoint_v3",
        "Proofpoint v3",
        f"{proofpoint_v3(DBX_REQ)}\n{proofpoint_v3(DBX_S, hidden='%?=')}\n",
        [("dropbox", DBX_REQ, proofpoint), ("dropbox", DBX_S, proofpoint)],
    )
    opaque = "https://protect-eu.mimecast.com/s/AbCdEfGhIjKlMn?domain=www.dropbox.com"
    mimecast_url = "https://url.uk.m.mimecastprotect.com/s/Qq1?url=" + quote(SWISS, safe="")
    text(
        "gateway_mimecast",
        "Mimecast",
        f"{opaque}\nhttps://protect-eu.mimecast.com/s/ZzYyXx?domain=example.org\n{mimecast_url}\n",
        [("dropbox", opaque, "mimecast_opaque"), ("swisstransfer", SWISS, "unwrapped:mimecast")],
    )
    text(
        "gateway_wrapping_a_lookalike_refused",
        "Leurre",
        safelinks("https://dropbox.com.evil.net/s/x1/y") + "\n",
        [],
    )
    text(
        "gateway_safelinks_around_proofpoint",
        "Double",
        safelinks(proofpoint_v2(SMASH)) + "\n",
        [("fromsmash", SMASH, "unwrapped:safelinks", proofpoint)],
    )


if __name__ == "__main__":
    for old in HERE.glob("*.eml"):
        old.unlink()
    build()
    (HERE / "corpus.json").write_text(json.dumps(CASES, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(CASES)} cases")
