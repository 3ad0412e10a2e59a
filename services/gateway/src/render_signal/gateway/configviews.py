"""What the config APIs answer: each document's fields as the services apply them.

The view type of a document is derived from its struct (:func:`view_type`):
every field, nullable, plus ``_updated_at``, ``_version`` and ``_sources``
(``field -> dashboard | env | default``). A field the dashboard has not set
shows the value the services report applying (their ``AppliedConfig``
records), so the page never shows "none" while an environment default is in
force. Webhook URLs are masked (``scheme://host/***``); only the export is
unmasked.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from render_signal.common.configdocs import ConfigDoc, UnsetType
from render_signal.common.configstore import Versioned
from render_signal.common.logs import mask_url
from render_signal.common.records import AppliedConfig

__all__ = ["Source", "build_view", "envelope_type", "view_type"]

Source = Literal["dashboard", "env", "default"]


def _loose(kind: Any) -> Any:
    """``kind`` without its constraints: a view shows what the environment gave too
    (``WEBHOOK_TIMEOUT_SECONDS=500`` is applied although the dashboard allows 300)."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _loose(typing.get_args(kind)[0])
    if origin in (types.UnionType, typing.Union):
        loose = [_loose(arg) for arg in typing.get_args(kind) if arg is not UnsetType]
        return functools.reduce(operator.or_, loose)
    if origin is list:
        return list[_loose(typing.get_args(kind)[0])]  # type: ignore[misc]
    if kind is int:
        return int | float  # WEBHOOK_TIMEOUT_SECONDS=2.5 is applied as it is
    return kind


@functools.cache
def view_type(doc_type: type[ConfigDoc]) -> type[msgspec.Struct]:
    """``<Doc>View``: the document's fields (nullable) plus version and sources."""
    fields: list[tuple[str, Any, Any]] = [
        (f.name, _loose(f.type) | None, None) for f in msgspec.structs.fields(doc_type)
    ]
    fields += [
        ("updated_at", str | None, None),
        ("version", int, 0),
        ("sources", dict[str, Source], {}),
    ]
    return msgspec.defstruct(
        f"{doc_type.__name__}View",
        fields,
        kw_only=True,
        rename={"updated_at": "_updated_at", "version": "_version", "sources": "_sources"},
    )


@functools.cache
def envelope_type(doc_type: type[ConfigDoc], key: str) -> type[msgspec.Struct]:
    """``{success, <key>: <Doc>View, message?}`` (the original's response shape)."""
    return msgspec.defstruct(
        f"{doc_type.__name__}Response",
        [("success", bool), (key, view_type(doc_type)), ("message", str | None, None)],
        kw_only=True,
    )


def build_view(versioned: Versioned[ConfigDoc], applied: Sequence[AppliedConfig]) -> msgspec.Struct:
    """The view of ``versioned`` (see the module docstring)."""
    doc = versioned.doc
    values: dict[str, object] = {}
    sources: dict[str, Source] = {}
    for field in msgspec.structs.fields(type(doc)):
        value = getattr(doc, field.name)
        if isinstance(value, UnsetType):
            path = f"{doc.NAME}.{field.name}"
            reported = next((a.values[path] for a in applied if path in a.values), None)
            value, source = (
                (None, "default")
                if reported is None
                else (
                    reported.value,
                    reported.source,
                )
            )
        else:
            default = field.default_factory() if callable(field.default_factory) else field.default
            source = "default" if value == default else "dashboard"
        if isinstance(value, str) and field.name.endswith("url"):
            value = mask_url(value)
        values[field.name] = value
        sources[field.name] = source
    return msgspec.convert(
        {
            **msgspec.to_builtins(values),
            "_updated_at": versioned.updated_at,
            "_version": versioned.version,
            "_sources": sources,
        },
        view_type(type(doc)),
    )
