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
"""

from __future__ import annotations

import logging
import types
from typing import Any

import kopf
import orjson
from kopf._cogs.clients import api  # private: Kopf offers no setting for its decoder

__all__ = ["NoDiffBase", "decode_watch_line", "parse_watch_streams_with_orjson", "streams_initial_lists"]

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
