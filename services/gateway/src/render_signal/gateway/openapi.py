"""msgspec structs in FastAPI: JSON responses and the OpenAPI schema, from one definition.

FastAPI builds its schema from pydantic models; the contracts here are msgspec
structs (``common.configdocs``, ``common.records``). Routes declare
``openapi_extra=body(T)`` / ``responses=returns(T)``, answer
``MsgspecResponse(value)``, and :func:`install` adds the structs' JSON schema
components to the app's OpenAPI document, so the schema and the encoder can't
disagree (schemathesis checks the answers against it).

Outside dev mode the schema maps every route an attacker could try, so
``/openapi.json`` needs a session and ``/docs`` a page session (redirect to
the login); dev mode keeps FastAPI's open routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from render_signal.gateway.errors import ApiError
from render_signal.gateway.guards import PageSession, Session

__all__ = ["MsgspecResponse", "body", "install", "read_json_object", "returns"]

_REF = "#/components/schemas/{name}"
_registered: dict[str, type] = {}
_encoder = msgspec.json.Encoder()
_object_decoder = msgspec.json.Decoder(dict[str, object])


def _schema(kind: type) -> dict[str, Any]:
    (schema,), _ = msgspec.json.schema_components([kind], ref_template=_REF)
    _registered[kind.__name__] = kind
    return schema


def returns(kind: type, status_code: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``kind`` as JSON."""
    return {
        status_code: {
            "description": "OK",
            "content": {"application/json": {"schema": _schema(kind)}},
        }
    }


def body(kind: type, *, description: str = "") -> dict[str, Any]:
    """``openapi_extra=`` documenting a JSON request body shaped like ``kind``."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": _schema(kind)}},
        }
    }


class MsgspecResponse(Response):
    """A JSON response encoded by msgspec (structs, UNSET fields omitted)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


async def read_json_object(request: Request) -> dict[str, object]:
    """The request body as a JSON object, or 400."""
    try:
        return _object_decoder.decode(await request.body())
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ApiError(400, "Invalid JSON payload: an object is expected") from exc


def install(app: FastAPI, *, protected: bool = False) -> None:
    """Merge the registered structs' schemas into ``app.openapi()``; with ``protected``,
    serve the schema and its page to logged-in users only."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        _, components = msgspec.json.schema_components(
            list(_registered.values()), ref_template=_REF
        )
        found: Mapping[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
        schema["components"]["schemas"] = {**components, **found}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    if not protected:
        return

    @app.get("/openapi.json", include_in_schema=False)
    async def schema(session: Session) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(session: PageSession) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")
