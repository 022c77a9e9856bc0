"""handlers.kopf_tuning: Kopf's change detection is off, and may be; its watch streams parse with orjson."""

from __future__ import annotations

import asyncio
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


def _body(index: int) -> kopf.RawBody:
    return {"metadata": {"uid": f"uid-{index}", "name": f"r{index}", "namespace": "shop"}}


async def _recall_all(memories: kopf_tuning.LeanMemories, indices: range, memobase: kopf.Memo) -> None:
    for index in indices:
        await memories.recall(_body(index), memobase=memobase, noticed_by_listing=True)


def test_lean_memories_stay_bounded_while_objects_pass_through() -> None:
    asyncio.run(_lean_memories_stay_bounded_while_objects_pass_through())


async def _lean_memories_stay_bounded_while_objects_pass_through() -> None:
    memobase = kopf.Memo(context="ctx")
    memories = kopf_tuning.LeanMemories(generation_size=100)
    await _recall_all(memories, range(5_000), memobase)
    assert 100 <= len(memories) < 2 * 100, "two generations at most, not one record per object seen"
    assert len(list(memories.iter_all_memories())) == len(memories)
    # An object seen again gets a record equal to the one dropped: its memo is the operator's memo.
    again = await memories.recall(_body(0), memobase=memobase)
    assert again.memo == memobase and again.memo is not memobase


def test_a_record_recalled_in_this_generation_is_the_same_record() -> None:
    asyncio.run(_a_record_recalled_in_this_generation_is_the_same_record())


async def _a_record_recalled_in_this_generation_is_the_same_record() -> None:
    memobase = kopf.Memo(context="ctx")
    memories = kopf_tuning.LeanMemories(generation_size=100)
    first = await memories.recall(_body(0), memobase=memobase)
    await _recall_all(memories, range(1, 150), memobase)  # one rotation: record 0 is in the older generation
    assert await memories.recall(_body(0), memobase=memobase) is first
    await _recall_all(memories, range(1_000, 1_300), memobase)  # not recalled for a whole generation
    assert await memories.recall(_body(0), memobase=memobase) is not first


def test_records_that_hold_something_are_kept() -> None:
    asyncio.run(_records_that_hold_something_are_kept())


async def _records_that_hold_something_are_kept() -> None:
    memobase = kopf.Memo(context="ctx")
    memories = kopf_tuning.LeanMemories(generation_size=100)
    throttled = await memories.recall(_body(0), memobase=memobase)
    throttled.error_throttler.source_of_delays = iter([1.0, 2.0])  # backing off after an error
    throttled.error_throttler.last_used_delay = 1.0
    written = await memories.recall(_body(1), memobase=memobase)
    written.memo["mine"] = "a handler's note"
    patched = await memories.recall(_body(2), memobase=memobase)
    patched.remaining_patch = kopf.Patch({"status": {"phase": "Confirmed"}})
    await _recall_all(memories, range(10, 5_000), memobase)
    assert await memories.recall(_body(0), memobase=memobase) is throttled
    assert await memories.recall(_body(1), memobase=memobase) is written
    assert await memories.recall(_body(2), memobase=memobase) is patched
    assert len(memories) < 2 * 100 + 3


def test_forgetting_a_deleted_object_covers_both_generations() -> None:
    asyncio.run(_forgetting_a_deleted_object_covers_both_generations())


async def _forgetting_a_deleted_object_covers_both_generations() -> None:
    memobase = kopf.Memo(context="ctx")
    memories = kopf_tuning.LeanMemories(generation_size=10)
    await _recall_all(memories, range(15), memobase)  # 0..9 rotated to the older generation
    await memories.forget(_body(3))
    await memories.forget(_body(12))
    assert len(memories) == len(list(memories.iter_all_memories())) == 13
    assert len({id(memory) for memory in memories.iter_all_memories()}) == 13
    assert [m.daemons_memory for m in memories.iter_all_memories()] == list(
        memories.iter_all_daemon_memories()
    )
