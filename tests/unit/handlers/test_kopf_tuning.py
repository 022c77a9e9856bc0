"""handlers.kopf_tuning: Kopf's change detection is off, and may be; its watch streams parse with orjson."""

from __future__ import annotations

import json

import kopf
import pytest
from kopf._cogs.clients import api

from rental_operator.handlers import kopf_tuning, watches


def test_change_detection_is_off_only_because_no_handler_needs_it() -> None:
    """NoDiffBase makes Kopf see no diff; that is safe only while every handler is an `on.event`."""
    registry = kopf.get_default_registry()
    assert watches.rental_event is not None  # importing the module registered the handlers
    assert registry._watching.get_all_handlers(), "the saga's on.event handlers are registered"
    assert not registry._changing.get_all_handlers(), "a change handler needs Kopf's diff base back"
    assert not registry._spawning.get_all_handlers()


def test_no_diff_base_has_no_essence() -> None:
    storage = kopf_tuning.NoDiffBase()
    body = kopf.Body({"metadata": {"name": "r"}, "spec": {"purifier": "p"}})
    assert storage.build(body=body) is None
    assert storage.fetch(body=body) is None


def test_kopf_s_watch_streams_decode_with_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "json", json)
    assert kopf_tuning.parse_watch_streams_with_orjson()
    assert api.json is kopf_tuning.ORJSON_DECODER
    line = '{"type":"MODIFIED","object":{"metadata":{"name":"정수기"},"spec":{"n":9007199254740993}}}'
    assert api.json.loads(line) == json.loads(line)
    assert api.json.loads(line.encode()) == json.loads(line)
    assert kopf_tuning.parse_watch_streams_with_orjson(), "idempotent"


def test_an_unexpected_kopf_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "json", object())
    assert not kopf_tuning.parse_watch_streams_with_orjson()


def test_watch_events_lose_only_their_managed_fields() -> None:
    event = {
        "type": "ADDED",
        "object": {
            "metadata": {"name": "r1", "resourceVersion": "7", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"managedFields": "a spec field of the same name stays"},
            "status": {"phase": "Confirmed"},
        },
    }
    decoded = kopf_tuning.decode_watch_line(json.dumps(event))
    assert decoded["object"]["metadata"] == {"name": "r1", "resourceVersion": "7"}
    assert decoded["object"]["spec"] == event["object"]["spec"]
    assert decoded["object"]["status"] == event["object"]["status"]
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    assert kopf_tuning.decode_watch_line(json.dumps(bookmark)) == bookmark
    error = {"type": "ERROR", "object": {"code": 410, "message": "too old"}}
    assert kopf_tuning.decode_watch_line(json.dumps(error)) == error


@pytest.mark.parametrize(
    ("version", "streams"),
    [
        ({"major": "1", "minor": "37"}, True),
        ({"major": "1", "minor": "34+"}, True),
        ({"major": "1", "minor": "33"}, False),
        ({"major": "1", "minor": "30"}, False),
        ({"major": "2", "minor": "0"}, True),
        ({"major": "", "minor": ""}, False),
        ({}, False),
    ],
)
def test_initial_lists_are_streamed_from_kubernetes_1_34(version: dict[str, str], streams: bool) -> None:
    assert kopf_tuning.streams_initial_lists(version) is streams
