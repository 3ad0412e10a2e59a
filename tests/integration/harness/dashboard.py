"""A logged-in dashboard client, as an operator's browser (or script) holds one."""

from __future__ import annotations

import re

import httpx

__all__ = ["login"]


def login(client: httpx.Client, user: str, password: str) -> httpx.Client:
    """Log ``client`` in with the login form and send the CSRF header from then on."""
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF token in the login form: {page.status_code}"
    reply = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": match.group(1), "next": "/"},
    )
    assert reply.status_code == 303, f"login failed: {reply.status_code} {reply.text[:200]}"
    session = client.get("/api/auth/session")
    assert session.status_code == 200, session.text
    client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
    return client
