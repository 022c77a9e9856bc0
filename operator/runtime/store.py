"""The newest known version of every object of one kind, fed by watch events and by our own writes.

A controller that reads the object it is about to decide on from here instead of the API saves a
request per step; a write it makes is recorded at once, so its next decision does not wait for the
watch to echo it back. "Newest" compares resourceVersions as integers: the API server's etcd storage
issues them from one increasing revision counter, and Kubernetes now documents them as comparable
(KEP-5504) for exactly this use. Reading something stale is safe anyway: every write is guarded by the
resourceVersion it was decided on, so a stale decision fails with a conflict and is made again.
Called by the Kopf event handlers (feeding) and the controllers (reading and feeding).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["Store"]

Key = tuple[str, str]


def _version(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Store:
    def __init__(self) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key_of(obj: dict[str, Any]) -> Key:
        return obj["metadata"]["namespace"], obj["metadata"]["name"]

    def observe(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Record `obj` unless a newer version is known; return the newest version.

        `metadata.managedFields` is dropped: nothing here reads it, and it is often the larger half
        of an object kept for every rental.
        """
        if "managedFields" in obj.get("metadata", {}):
            obj = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
        key = self.key_of(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is not None and _version(known) > _version(obj):
                return known
            self._objects[key] = obj
            return obj

    def forget(self, obj: dict[str, Any]) -> None:
        key = self.key_of(obj)
        with self._lock:
            known = self._objects.get(key)
            if known is not None and _version(known) <= _version(obj):
                del self._objects[key]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def values(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)
