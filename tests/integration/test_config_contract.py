"""Every field of every config document, end to end, generated from the structs (issue 11, 1).

For each field of each ``configdocs`` struct, against the running stack (the
four services as processes, real Redis):

* a changed valid value POSTed through the gateway's API is read back by GET;
* the service that applies it (``applied_by`` in the field's metadata) loads
  the new version (its ``CONFIG: loaded <doc> version <n>`` log line) and
  reports the value, from the dashboard, in its ``AppliedConfig`` record --
  written from the struct it decoded itself;
* an invalid value gets 400 naming the field; an unknown field gets 400.

Values are derived from the field types (bounds, literals, formats); the
table below only names fields whose valid value needs a companion (a window
has two ends) or a shape the type cannot say (a URL, an email).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from render_signal.common.appliedconfig import field_meta
from render_signal.common.configdocs import DOCUMENTS, ConfigDoc
from render_signal.common.keys import Keys
from render_signal.common.logs import mask_url
from render_signal.common.records import AppliedConfig

from .harness.pipeline import Pipeline

pytestmark = pytest.mark.integration

ROUTES = {
    "webhook_config": ("/api/webhooks/config", "config"),
    "routing_rules": ("/api/routing_rules", "config"),
    "polling_config": ("/api/polling_config", "config"),
    "runtime_flags": ("/api/runtime_flags", "flags"),
    "processing_prefs": ("/api/processing_prefs", "prefs"),
    "make_config": ("/api/make_config", "config"),
}
FUTURE = dt.date.today() + dt.timedelta(days=400)


def _special(receiver_url: str) -> dict[str, tuple[dict[str, Any], Any]]:
    """``field -> (valid changes, invalid value)`` where the type alone can't say."""
    rule = {
        "name": "contract",
        "conditions": [{"field": "subject", "operator": "contains", "value": "contract"}],
        "actions": {"webhook_url": f"{receiver_url}/rule", "priority": "high"},
    }
    return {
        "webhook_url": ({"webhook_url": f"{receiver_url}/contract"}, "https://example.com/x"),
        "webhook_time_start": (
            {"webhook_time_start": "07:30", "webhook_time_end": "19:00"},
            "25:99",
        ),
        "webhook_time_end": ({"webhook_time_start": "08:00", "webhook_time_end": "20:30"}, "9h"),
        "absence_pause_enabled": (
            {"absence_pause_enabled": True, "absence_pause_days": ["sunday"]},
            "maybe",
        ),
        "absence_pause_days": ({"absence_pause_days": ["friday", "saturday"]}, ["lundi"]),
        "vacation_start": (
            {"vacation_start": FUTURE.isoformat(), "vacation_end": FUTURE.isoformat()},
            "2026-13-40",
        ),
        "vacation_end": ({"vacation_end": (FUTURE + dt.timedelta(days=1)).isoformat()}, "soon"),
        "sender_of_interest_for_polling": (
            {"sender_of_interest_for_polling": ["ops@render-signal.fr"]},
            ["not-an-email"],
        ),
        "rules": ({"rules": [rule]}, [{**rule, "conditions": []}]),
        "scenario_ids": ({"scenario_ids": ["424242"]}, ["12a"]),
        "exclude_keywords": ({"exclude_keywords": ["contract-kw"]}, [1]),
        "exclude_keywords_recadrage": ({"exclude_keywords_recadrage": ["kw-r"]}, [2]),
        "exclude_keywords_autorepondeur": ({"exclude_keywords_autorepondeur": ["kw-a"]}, [3]),
        "detectors_enabled": ({"detectors_enabled": ["recadrage"]}, ["bogus"]),
        "active_days": ({"active_days": [2, 4]}, [7]),
    }


def _base(kind: Any) -> Any:
    """The type info of a field without UNSET/None and metadata wrappers."""
    node = kind
    while True:
        if isinstance(node, msgspec.inspect.UnionType):
            options = [
                t
                for t in node.types
                if not isinstance(t, msgspec.inspect.UnsetType | msgspec.inspect.NoneType)
            ]
            node = options[0]
        elif isinstance(node, msgspec.inspect.Metadata):
            node = node.type
        else:
            return node


def _generated(field: Any, current: Any) -> tuple[Any, Any]:
    """(valid changed value, invalid value) from the field's type."""
    kind = _base(field.type)
    if isinstance(kind, msgspec.inspect.BoolType):
        return (not current) if isinstance(current, bool) else False, "maybe"
    if isinstance(kind, msgspec.inspect.IntType):
        high = kind.le if kind.le is not None else 1000
        low = kind.ge if kind.ge is not None else 0
        return (high if current != high else low), high + 1
    if isinstance(kind, msgspec.inspect.LiteralType):
        return next(v for v in kind.values if v != current), "bogus"
    raise AssertionError(f"{field.name}: no generated value for {kind!r}; add it to _special")


def _cases() -> Iterator[tuple[type[ConfigDoc], str]]:
    for doc_type in DOCUMENTS:
        for field in msgspec.structs.fields(doc_type):
            yield doc_type, field.name


def _applied(redis: Any, keys: Keys, service: str) -> list[AppliedConfig]:
    decoder = msgspec.json.Decoder(AppliedConfig)
    return [
        decoder.decode(redis.get(key))
        for key in redis.scan_iter(match=keys.applied(service, "*"))
        if redis.get(key)
    ]


def _until(check: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _expected(name: str, value: Any) -> Any:
    return mask_url(value) if isinstance(value, str) and name.endswith("url") else value


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from render_signal.devstack.pytest_plugin import require_component

    from .harness.pipeline import missing_components

    reason = missing_components(imap=False, worker=False)
    require_component(reason is None, reason or "")
    with Pipeline(tmp_path_factory.mktemp("contract"), imap=False, worker=False) as pipeline:
        yield pipeline


def test_every_field_round_trips_and_reaches_the_service_that_applies_it(
    stack: Pipeline,
) -> None:
    keys = Keys(stack.key_prefix)
    redis = stack.sync_redis()
    special = _special(stack.receiver.url)
    checked: list[str] = []
    with stack.dashboard() as client:
        for doc_type, name in _cases():
            path, key = ROUTES[doc_type.NAME]
            field = next(f for f in msgspec.inspect.type_info(doc_type).fields if f.name == name)
            service = field_meta(doc_type, name)["applied_by"]
            before = client.get(path).json()[key]
            if name in special:
                changes, invalid = special[name]
            else:
                valid, invalid = _generated(field, before[name])
                changes = {name: valid}
            if doc_type.NAME == "routing_rules" and name != "rules":
                changes = {"rules": before["rules"], **changes}
            reply = client.post(path, json=changes)
            assert reply.status_code == 200, f"{doc_type.NAME}.{name}: {reply.text}"
            version = reply.json()[key]["_version"]
            view = client.get(path).json()[key]
            expected = changes[name]
            if name == "rules":
                assert [r["name"] for r in view["rules"]] == ["contract"]
            else:
                assert view[name] == _expected(name, expected), f"{doc_type.NAME}.{name}"
            assert view["_sources"][name] == "dashboard", f"{doc_type.NAME}.{name}"

            def applied(
                service: str = service, version: int = version, doc: str = doc_type.NAME
            ) -> AppliedConfig | None:
                return next(
                    (a for a in _applied(redis, keys, service) if a.versions.get(doc) == version),
                    None,
                )

            record = _until(applied, f"{service} to apply {doc_type.NAME} v{version}")
            reported = record.values[f"{doc_type.NAME}.{name}"]
            assert reported.source == "dashboard", f"{doc_type.NAME}.{name}: {reported}"
            if name == "rules":
                assert reported.value == 1
            else:
                assert reported.value == _expected(name, expected), f"{doc_type.NAME}.{name}"
            log = stack.services[service].log_path.read_text()
            assert f"CONFIG: loaded {doc_type.NAME} version {version}" in log, (
                f"{service} did not log loading {doc_type.NAME} v{version}"
            )

            bad = {**changes, name: invalid}
            refused = client.post(path, json=bad)
            assert refused.status_code == 400, f"{doc_type.NAME}.{name}={invalid!r}: {refused.text}"
            assert name in refused.json()["message"], refused.json()["message"]
            checked.append(f"{doc_type.NAME}.{name}")
        for doc_type in DOCUMENTS:
            path, _ = ROUTES[doc_type.NAME]
            body: dict[str, Any] = {"no_such_field": True}
            if doc_type.NAME == "routing_rules":
                body["rules"] = []
            unknown = client.post(path, json=body)
            assert unknown.status_code == 400 and "no_such_field" in unknown.json()["message"]
    redis.close()
    total = sum(len(msgspec.structs.fields(d)) for d in DOCUMENTS)
    assert len(checked) == total
    print(f"config contract: {total} fields of {len(DOCUMENTS)} documents checked end to end")
