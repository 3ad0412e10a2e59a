from __future__ import annotations

from gateway_testkit import Gateway, login


async def test_login_flow_and_headers(gateway: Gateway) -> None:
    async with gateway.client() as client:
        page = await client.get("/login")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        response = await login(client)
        assert response.status_code == 303
        info = await client.get("/api/auth/session")
        assert info.json()["kind"] == "password"
