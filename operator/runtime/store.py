"""The newest known version of every object of one kind, fed by watch events and by our own writes.

A controller that reads the object it is about to decide on from here instead of the API saves a
request per step; a write it makes is recorded at once, so its next decision does not wait for the
watch to echo it back. "Newest" compares resourceVersions as integers: the API server's etcd storage
issues them from one increasing revision counter, and Kubernetes now documents them as comparable
(KEP-5504) for exactly this use. Reading something stale is safe anyway: every write is guarded by the
resourceVersion it was decided on, so a stale decision fails with a conflict and is made again.

Objects are kept packed (compact JSON, deflated, `managedFields` dropped), not as dicts: an operator
with ten thousand rentals present keeps thirty thousand objects, and a parsed Rental took 9.8 KB where
its JSON takes 2.0 KB and deflated 0.8 KB (measured on benchmark rentals). Reading unpacks a private
copy in tens of microseconds, far below the API round trip it saves.
What is read about every object at once (the metrics gauges) is kept beside it as a small summary
computed when the object is recorded, so a scrape does not unpack anything.
Called by the Kopf event handlers (feeding) and the controllers (reading and feeding).
"""

from __future__ import annotations

import sys
import threading
import zlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

__all__ = ["Store"]

Key = tuple[str, str]
S = TypeVar("S")


def _version(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _no_summary(obj: dict[str, Any]) -> None:
    return None


class Store(Generic[S]):
    def __init__(
        self,
        summarize: Callable[[dict[str, Any]], S] = _no_summary,  # type: ignore[assignment]
        *,
        zdict: bytes = b"",
    ) -> None:
        """`zdict`: a typical object of the kind as JSON, zlib's preset dictionary for packing.

        Deflate can then refer back into it from the first byte: the keys, condition types, history
        messages and the rest every object of the kind repeats cost a few bytes instead of being
        spelt out once per object.
        """
        self._objects: dict[Key, tuple[int, bytes, S]] = {}
        self._summarize = summarize
        self._zdict = zdict
        self._lock = threading.Lock()

    @staticmethod
    def key_of(obj: dict[str, Any]) -> Key:
        # One string per namespace, not one per object: each decoded body brings its own copy, and a
        # key lives as long as its object (2 MB for 30,000 objects in one namespace).
        return sys.intern(obj["metadata"]["namespace"]), obj["metadata"]["name"]

    def observe(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Record `obj` unless a newer version is known; return the newest version.

        `metadata.managedFields` is dropped: nothing here reads it, and it is often the larger half
        of an object kept for every rental.
        """
        if "managedFields" in obj.get("metadata", {}):
            obj = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
        key, version = self.key_of(obj), _version(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is not None and known[0] > version:
                return self._unpack(known[1])
        packed = self._pack(obj)
        summary = self._summarize(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is not None and known[0] > version:
                return self._unpack(known[1])  # a newer one came in meanwhile
            self._objects[key] = (version, packed, summary)
        return obj

    def forget(self, obj: dict[str, Any]) -> None:
        key = self.key_of(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is not None and known[0] <= _version(obj):
                del self._objects[key]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A private copy of the newest known version (the caller may change it freely)."""
        with self._lock:
            known = self._objects.get((namespace, name))
        return self._unpack(known[1]) if known is not None else None

    def values(self) -> list[dict[str, Any]]:
        with self._lock:
            packed = [known[1] for known in self._objects.values()]
        return [self._unpack(p) for p in packed]

    def summaries(self) -> list[S]:
        """The summary of every object, as computed when it was recorded."""
        with self._lock:
            return [known[2] for known in self._objects.values()]

    def _pack(self, obj: dict[str, Any]) -> bytes:
        # Level 1: most of the gain, least CPU. An empty dictionary packs exactly as zlib.compress.
        packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, self._zdict)
        return packer.compress(orjson.dumps(obj)) + packer.flush()

    def _unpack(self, packed: bytes) -> dict[str, Any]:
        unpacker = zlib.decompressobj(zlib.MAX_WBITS, self._zdict)
        obj: dict[str, Any] = orjson.loads(unpacker.decompress(packed) + unpacker.flush())
        return obj

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)
