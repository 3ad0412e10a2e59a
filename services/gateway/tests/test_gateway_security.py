"""Sessions, CSRF, throttling and magic links (acceptance item 2)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import httpx
import pytest
from gateway_testkit import (
    API_TOKEN,
    PASSWORD,
    USER,
    Gateway,
    csrf_of,
    dump_redis,
    form_csrf,
    login,
    magic_post,
)
from render_signal.gateway.guards import SESSION_COOKIE

GENERIC_LINK_ERROR = "Invalid or expired link"


async def _new_link(client: httpx.AsyncClient, unlimited: bool = False) -> dict[str, Any]:
    response = await client.post("/api/auth/magic-link", json={"unlimited": unlimited})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


async def test_session_rotates_at_login_and_logout_invalidates(gateway: Gateway) -> None:
    async with gateway.client() as client:
        assert (await client.get("/api/auth/session")).status_code == 401
        token = form_csrf((await client.get("/login")).text)
        form = {"username": USER, "password": PASSWORD, "csrf_token": token}
        assert (await client.post("/login", data=form)).status_code == 303
        first = client.cookies[SESSION_COOKIE]
        # Logged in already: GET /login moves on; a second POST rotates the id.
        assert (await client.get("/login")).status_code == 303
        assert (await client.post("/login", data=form)).status_code == 303
        second = client.cookies[SESSION_COOKIE]
        assert first != second
        async with gateway.client(cookies={SESSION_COOKIE: first}) as replay:
            assert (await replay.get("/api/auth/session")).status_code == 401
        assert (await client.get("/api/auth/session")).status_code == 200
        response = await client.get("/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
    async with gateway.client(cookies={SESSION_COOKIE: second}) as replay:
        response = await replay.get("/api/auth/session")
        assert response.status_code == 401
        assert response.json() == {"success": False, "message": "Authentication required"}
        page = await replay.get("/", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=")


async def test_session_cookie_flags(gateway: Gateway) -> None:
    async with gateway.client() as client:
        response = await login(client)
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http, no trusted proxy
    async with gateway.client(base_url="https://testserver") as client:
        cookie = (await login(client)).headers["set-cookie"]
        assert "Secure" in cookie
        assert "strict-transport-security" in (await client.get("/api/ping")).headers


async def test_forwarded_proto_only_from_trusted_proxy(
    make_settings: Any, gateway_factory: Any
) -> None:
    untrusted: Gateway = await gateway_factory(make_settings())
    async with untrusted.client(headers={"X-Forwarded-Proto": "https"}) as client:
        assert "Secure" not in (await login(client)).headers["set-cookie"]
    trusted: Gateway = await gateway_factory(make_settings(TRUSTED_PROXIES="127.0.0.1"))
    transport = httpx.ASGITransport(app=trusted.app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"X-Forwarded-Proto": "https"}
    ) as client:
        assert "Secure" in (await login(client)).headers["set-cookie"]


async def test_csrf_required_on_state_changes(gateway: Gateway) -> None:
    async with gateway.client() as client:
        await login(client)
        token = await csrf_of(client)
        body = {"gmail_ingress_enabled": False}
        response = await client.post("/api/runtime_flags", json=body)
        assert response.status_code == 403
        assert response.json()["success"] is False
        wrong = await client.post(
            "/api/runtime_flags", json=body, headers={"X-CSRF-Token": "x" * 43}
        )
        assert wrong.status_code == 403
        cross = await client.post(
            "/api/runtime_flags",
            json=body,
            headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
        other_origin = await client.post(
            "/api/runtime_flags",
            json=body,
            headers={"X-CSRF-Token": token, "Origin": "https://evil.example.net"},
        )
        assert other_origin.status_code == 403
        flags = (await client.get("/api/runtime_flags")).json()["flags"]
        assert flags["gmail_ingress_enabled"] is True  # nothing was written
        ok = await client.post(
            "/api/runtime_flags",
            json=body,
            headers={"X-CSRF-Token": token, "Origin": "http://testserver"},
        )
        assert ok.status_code == 200
        assert ok.json()["flags"]["gmail_ingress_enabled"] is False


async def test_login_form_needs_its_csrf_token(gateway: Gateway) -> None:
    async with gateway.client() as client:
        await client.get("/login")
        response = await client.post(
            "/login", data={"username": USER, "password": PASSWORD, "csrf_token": "forged"}
        )
        assert response.status_code == 403
        assert SESSION_COOKIE not in client.cookies


async def test_sixth_wrong_password_is_throttled(gateway: Gateway) -> None:
    async with gateway.client() as client:
        for _ in range(5):
            response = await login(client, password="wrong-password")
            assert response.status_code == 401
            assert "Invalid credentials" in response.text
        sixth = await login(client, password="wrong-password")
        assert sixth.status_code == 429
        assert int(sixth.headers["retry-after"]) >= 1
        assert "Invalid credentials" in sixth.text
        # Even the right password waits: the lock is checked first.
        right = await login(client)
        assert right.status_code == 429
        assert SESSION_COOKIE not in client.cookies


async def test_unknown_user_gets_the_same_answer(gateway: Gateway) -> None:
    async with gateway.client(headers={"Accept-Language": "fr-FR"}) as client:
        page = await client.get("/login")
        response = await client.post(
            "/login",
            data={"username": "nobody", "password": PASSWORD, "csrf_token": form_csrf(page.text)},
        )
        assert response.status_code == 401
        assert "Identifiants invalides." in response.text


async def test_next_stays_on_this_host(gateway: Gateway) -> None:
    async with gateway.client() as client:
        page = await client.get("/login")
        for target, expected in (
            ("/api/status?x=1", "/api/status?x=1"),
            ("https://evil.test/", "/"),
            ("//evil.test/a", "/"),
        ):
            client.cookies.delete(SESSION_COOKIE)
            response = await client.post(
                "/login",
                data={
                    "username": USER,
                    "password": PASSWORD,
                    "csrf_token": form_csrf(page.text),
                    "next": target,
                },
            )
            assert response.status_code == 303
            assert response.headers["location"] == expected


async def test_magic_links_refused_uniformly(gateway: Gateway, redis: Any) -> None:
    async with gateway.client() as admin:
        await login(admin)
        admin.headers["X-CSRF-Token"] = await csrf_of(admin)
        reused = await _new_link(admin)
        expired = await _new_link(admin)
        tampered = await _new_link(admin)
    answers = []
    async with gateway.client() as visitor:
        first = await magic_post(visitor, _path(reused["magic_link"]))
        assert first.status_code == 303
        assert (await visitor.get("/api/auth/session")).json()["kind"] == "magic"
    async with gateway.client() as visitor:
        answers.append(await magic_post(visitor, _path(reused["magic_link"])))
        token = tampered["magic_link"].rsplit("/", 1)[1]
        flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
        answers.append(await magic_post(visitor, f"/login/magic/{flipped}"))
        answers.append(await magic_post(visitor, "/login/magic/" + "u" * 43))
        store = gateway.ctx.magic_links
        real_clock = store.clock
        store.clock = lambda: real_clock() + 3600  # an hour later: past the 900 s TTL
        try:
            answers.append(await magic_post(visitor, _path(expired["magic_link"])))
        finally:
            store.clock = real_clock
        assert SESSION_COOKIE not in visitor.cookies
    assert {a.status_code for a in answers} == {401}
    assert all(GENERIC_LINK_ERROR in a.text for a in answers)
    # The expired one is gone for good, not merely refused while the clock was moved.
    async with gateway.client() as visitor:
        assert (await magic_post(visitor, _path(expired["magic_link"]))).status_code == 401


async def test_landing_get_does_not_consume(gateway: Gateway) -> None:
    async with gateway.client() as admin:
        await login(admin)
        admin.headers["X-CSRF-Token"] = await csrf_of(admin)
        link = await _new_link(admin)
    async with gateway.client() as scanner:
        for _ in range(3):
            landing = await scanner.get(_path(link["magic_link"]))
            assert landing.status_code == 200
            assert "<script" not in landing.text
    async with gateway.client() as visitor:
        assert (await magic_post(visitor, _path(link["magic_link"]))).status_code == 303


async def test_only_hashes_stored_and_permanent_links_managed(
    gateway: Gateway, redis: Any, key_prefix: str
) -> None:
    async with gateway.client() as admin:
        await login(admin)
        admin.headers["X-CSRF-Token"] = await csrf_of(admin)
        one_shot = await _new_link(admin)
        permanent = await _new_link(admin, unlimited=True)
        assert one_shot["expires_at"] and permanent["expires_at"] is None
        tokens = [link["magic_link"].rsplit("/", 1)[1] for link in (one_shot, permanent)]
        assert all(len(t) >= 43 for t in tokens)  # >= 32 random bytes
        blob = await dump_redis(redis, key_prefix)
        for token in tokens:
            assert token not in blob
            digest = hashlib.sha256(token.encode()).hexdigest()
            assert await redis.exists(f"{key_prefix}gateway:magic:{digest}")
        ttl = await redis.ttl(
            f"{key_prefix}gateway:magic:{hashlib.sha256(tokens[0].encode()).hexdigest()}"
        )
        assert 0 < ttl <= 900
        listed = (await admin.get("/api/auth/magic-links")).json()["links"]
        assert [link["id"] for link in listed] == [permanent["id"]]
        # A permanent link works repeatedly and records its last use...
        for _ in range(2):
            async with gateway.client() as visitor:
                assert (
                    await magic_post(visitor, _path(permanent["magic_link"]))
                ).status_code == 303
        listed = (await admin.get("/api/auth/magic-links")).json()["links"]
        assert listed[0]["last_used_at"] is not None
        # ...until revoked.
        revoked = await admin.delete(f"/api/auth/magic-links/{permanent['id']}")
        assert revoked.json() == {"success": True, "revoked": 1}
        async with gateway.client() as visitor:
            assert (await magic_post(visitor, _path(permanent["magic_link"]))).status_code == 401
        await _new_link(admin, unlimited=True)
        await _new_link(admin, unlimited=True)
        assert (await admin.delete("/api/auth/magic-links")).json()["revoked"] == 2
        assert (await admin.get("/api/auth/magic-links")).json()["links"] == []


async def test_magic_session_cannot_deploy(
    make_settings: Any, gateway_factory: Any, tmp_path: Any
) -> None:
    marker = tmp_path / "deployed"
    gw: Gateway = await gateway_factory(
        make_settings(DEPLOY_CMD=f"python -c \"open('{marker}','w').write('x')\"")
    )
    async with gw.client() as admin:
        await login(admin)
        admin.headers["X-CSRF-Token"] = await csrf_of(admin)
        link = await _new_link(admin, unlimited=True)
    async with gw.client() as visitor:
        assert (await magic_post(visitor, _path(link["magic_link"]))).status_code == 303
        info = (await visitor.get("/api/auth/session")).json()
        assert info["kind"] == "magic" and info["can_deploy"] is False
        response = await visitor.post(
            "/api/deploy_application", headers={"X-CSRF-Token": info["csrf_token"]}
        )
        assert response.status_code == 403
    assert not marker.exists()


async def test_one_shot_link_consumed_once_under_concurrency(gateway: Gateway) -> None:
    async with gateway.client() as admin:
        await login(admin)
        admin.headers["X-CSRF-Token"] = await csrf_of(admin)
        links = [await _new_link(admin) for _ in range(5)]
    for link in links:
        path = _path(link["magic_link"])
        async with gateway.client() as a, gateway.client() as b:
            tokens = []
            for client in (a, b):
                tokens.append(form_csrf((await client.get(path)).text))
            results = await asyncio.gather(
                a.post(path, data={"csrf_token": tokens[0]}),
                b.post(path, data={"csrf_token": tokens[1]}),
            )
        assert sorted(r.status_code for r in results) == [303, 401]


async def test_no_secret_reaches_the_logs(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = "https://hooks.receiver-sentinel.net/path-sentinel-7d1e"
    caplog.set_level(logging.DEBUG)
    async with gateway.client() as client:
        await login(client, password="wrong-sentinel-password-55")
        await login(client)
        sid = client.cookies[SESSION_COOKIE]
        client.headers["X-CSRF-Token"] = await csrf_of(client)
        link = await _new_link(client)
        permanent = await _new_link(client, unlimited=True)
        saved = await client.post("/api/webhooks/config", json={"webhook_url": webhook})
        assert saved.status_code == 200
        assert "path-sentinel" not in saved.text  # masked in the API too
        bad = await client.post("/api/webhooks/config", json={"webhook_url": webhook + " x"})
        assert bad.status_code == 400
        exported = await client.get("/api/config/export")
        assert exported.json()["documents"]["webhook_config"]["webhook_url"] == webhook
        ingress = await client.post(
            "/api/ingress/gmail",
            json={"sender": "a@b.fr", "body": "hello"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert ingress.status_code == 200
        await client.post(
            "/api/ingress/gmail",
            json={"sender": "a"},
            headers={"Authorization": "Bearer nope-sentinel"},
        )
    async with gateway.client() as visitor:
        await magic_post(visitor, _path(link["magic_link"]))
        await magic_post(visitor, _path(link["magic_link"]))  # refused: logged as such
        await magic_post(visitor, _path(permanent["magic_link"]))
    secrets = [
        PASSWORD,
        "wrong-sentinel-password-55",
        API_TOKEN,
        "nope-sentinel",
        sid,
        "path-sentinel-7d1e",
        link["magic_link"].rsplit("/", 1)[1],
        permanent["magic_link"].rsplit("/", 1)[1],
    ]
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith("render_signal.gateway") for r in ours)
    text = "\n".join(r.getMessage() + "\n" + str(r.exc_text or "") for r in ours)
    for secret in secrets:
        assert secret not in text, f"secret leaked into logs: {secret[:6]}..."


async def test_magic_landing_post_with_null_origin(gateway: Gateway) -> None:
    """no-referrer landing pages make browsers send ``Origin: null``; cross-site stays refused."""
    async with gateway.client() as admin:
        await login(admin)
        token = await csrf_of(admin)
        admin.headers["X-CSRF-Token"] = token
        links = [await _new_link(admin) for _ in range(2)]
        # The session-CSRF check still refuses a null Origin.
        refused = await admin.post("/api/auth/magic-link", json={}, headers={"Origin": "null"})
        assert refused.status_code == 403
    for link, site, expected in ((links[0], "cross-site", 401), (links[1], "same-origin", 303)):
        path = _path(link["magic_link"])
        async with gateway.client() as visitor:
            csrf = form_csrf((await visitor.get(path)).text)
            response = await visitor.post(
                path,
                data={"csrf_token": csrf},
                headers={"Origin": "null", "Sec-Fetch-Site": site},
            )
            assert response.status_code == expected
