"""One lock per object key, so two threads never decide for the same object at the same time.

A Rental is reconciled from its own events and from its Payment's and Delivery's; without a lock the
two would race to the same decision and one would fail on the resourceVersion guard. The lock only
saves that wasted round trip within one process; correctness across processes rests on the guard.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable, Iterator

__all__ = ["KeyedLocks"]


class KeyedLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]  # no unbounded growth with the number of objects ever seen
                else:
                    self._locks[key] = (lock, users - 1)
