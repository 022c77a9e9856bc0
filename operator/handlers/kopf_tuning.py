"""Costs of Kopf's per-event work that this operator does not need to pay.

Measured with py-spy during a burst of 500 rentals (every rental brings about 13 watch events):

- Change detection: Kopf's default diff base deep-copies every object's body on every event to
  compute the diff that only `on.create`/`on.update`/`on.field` handlers read; 5% of the operator's
  CPU. This operator registers only `on.event` handlers, so `NoDiffBase` gives Kopf no essence and it
  sees no diff (a unit test asserts there are no change handlers, so adding one fails loudly).
- Parsing watch events: Kopf decodes each line of a watch stream with the standard `json` module,
  14% of the operator's CPU once the saga's own requests had moved to libcurl. orjson parses the same
  JSON into the same dicts and lists several times faster, and shares the repeated keys' strings;
  `decode_watch_line` also drops each object's managedFields, which nothing here reads.
  Kopf has no setting for its decoder, so `parse_watch_streams_with_orjson` replaces the `json` name
  its API module uses (only `loads` is called there); it refuses, and logs, when that module no longer
  looks as expected, so a Kopf upgrade falls back to the standard decoder instead of breaking.
- The initial listing: on Kubernetes 1.34+ (`streams_initial_lists`) Kopf asks for the initial
  objects on the watch stream itself, so they too are decoded a line at a time, without their
  managedFields, instead of in pages of 500 parsed whole. Kopf turns every listed object into a task
  holding its body faster than it handles them; smaller bodies are a smaller start-up peak, which
  the process's memory keeps long after.
- Per-object memories: Kopf keeps a record of every object it has seen until the object is deleted
  (a copy of the memo, an error throttler, daemon and indexing records: about 0.9 KB each, 26 MiB
  for the 30,000 objects of 10,000 rentals). `LeanMemories` keeps a record only while it holds
  something: see there.
"""

from __future__ import annotations

import dataclasses
import logging
import types
from typing import Any

import kopf
import orjson
from kopf._cogs.clients import api  # private: Kopf offers no setting for its decoder
from kopf._core.reactor import inventory  # private, but a documented argument of kopf.operator()

__all__ = [
    "LeanMemories",
    "NoDiffBase",
    "decode_watch_line",
    "parse_watch_streams_with_orjson",
    "streams_initial_lists",
]

logger = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf's change detection turned off: the operator registers only `on.event` handlers."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def decode_watch_line(line: str | bytes) -> Any:
    """One watch event, parsed by orjson, without the object's `metadata.managedFields`.

    managedFields is about 45% of a Rental's JSON and nothing here reads it (Kopf writes nothing for
    `on.event` handlers, the store drops it, MyPage ignores it); dropped at once, an event waiting in
    Kopf's per-object queue holds a body half the size.
    """
    event = orjson.loads(line)
    if isinstance(event, dict):
        obj = event.get("object")
        metadata = obj.get("metadata") if isinstance(obj, dict) else None
        if isinstance(metadata, dict):
            metadata.pop("managedFields", None)
    return event


ORJSON_DECODER: types.SimpleNamespace = types.SimpleNamespace(loads=decode_watch_line)


def streams_initial_lists(server_version: dict[str, Any]) -> bool:
    """Whether the API server streams a watch's initial list (`sendInitialEvents`, Kubernetes 1.34+).

    Streamed, the initial objects come through the watch stream (so through `decode_watch_line`)
    instead of pages of JSON parsed whole by aiohttp's standard decoder.
    """
    major = str(server_version.get("major", "")).rstrip("+")
    minor = str(server_version.get("minor", "")).rstrip("+")
    return major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= (1, 34)


def parse_watch_streams_with_orjson() -> bool:
    """Make Kopf's watch streams decode with orjson; False (and a log line) if Kopf changed."""
    current = getattr(api, "json", None)
    if current is ORJSON_DECODER:
        return True
    if not (isinstance(current, types.ModuleType) and current.__name__ == "json"):
        logger.info("Kopf's watch decoding left as it is: its API module changed (%r)", current)
        return False
    api.json = ORJSON_DECODER  # type: ignore[assignment,attr-defined]
    return True


class LeanMemories(inventory.ResourceMemories):
    """Kopf's per-object memories, kept only while they hold something.

    What a record holds and why this operator needs almost none of it: the per-object memo copy is
    only read (the handlers keep their state in the stores); there are no daemons, timers, indices,
    resume or change handlers (a unit test of `NoDiffBase` asserts it), so no daemon records, no
    progress, no patch carried over and no "handled once" flag that anything reads. What is left is
    the error throttler: after an error outside the handlers Kopf backs off, longer each time, and
    that sequence must survive between events. So a record counts as empty when everything in it is
    as a new record would have it, and empty records are dropped by generations: a record not
    recalled during a whole generation (`generation_size` recalls of new or dropped objects) is
    dropped if empty and kept otherwise. An object's next event simply gets a new, equal record.

    The cost of dropping: a record dropped while its object is still being processed, then marked by
    an error, loses that mark, so the object's next error starts the back-off from its first delay.
    """

    def __init__(self, *, generation_size: int = 2048) -> None:
        super().__init__()
        self._generation_size = generation_size
        self._previous: dict[str, inventory.ResourceMemory] = {}
        self._kept_at_rotation = 0

    def __len__(self) -> int:
        return len(self._items) + len(self._previous)

    def iter_all_memories(self) -> Any:
        yield from self._previous.values()
        yield from self._items.values()

    def iter_all_daemon_memories(self) -> Any:
        for memory in self.iter_all_memories():
            yield memory.daemons_memory

    async def recall(
        self,
        raw_body: kopf.RawBody,
        *,
        memobase: Any = None,
        noticed_by_listing: bool = False,
        ephemeral: bool = False,
    ) -> inventory.ResourceMemory:
        key = self._build_key(raw_body)
        earlier = self._previous.pop(key, None)
        if earlier is not None:
            self._items[key] = earlier
        memory = await super().recall(
            raw_body, memobase=memobase, noticed_by_listing=noticed_by_listing, ephemeral=ephemeral
        )
        if len(self._items) >= self._kept_at_rotation + self._generation_size:
            self._rotate(memobase)
        return memory

    async def forget(self, raw_body: kopf.RawBody) -> None:
        self._previous.pop(self._build_key(raw_body), None)
        await super().forget(raw_body)

    def _rotate(self, memobase: Any) -> None:
        kept = {key: memory for key, memory in self._previous.items() if not _empty(memory, memobase)}
        self._previous, self._items = self._items, kept
        self._kept_at_rotation = len(kept)


def _empty(memory: inventory.ResourceMemory, memobase: Any) -> bool:
    """Whether `memory` holds nothing a new record would not: dropping it loses nothing."""
    daemons = memory.daemons_memory
    for field in dataclasses.fields(memory):
        value = getattr(memory, field.name)
        if field.name == "memo":
            if memobase is None or value != memobase:
                return False
        elif field.name == "daemons_memory":
            if daemons.live_fresh_body is not None or daemons.forever_stopped or daemons.running_daemons:
                return False
        elif field.name in ("noticed_by_listing", "fully_handled_once"):
            continue  # read only for resume handlers, which this operator has none of
        elif field.default_factory is not dataclasses.MISSING:
            if value != field.default_factory():
                return False
        elif value != field.default:
            return False
    return True
