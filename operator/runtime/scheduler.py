"""Run a callback for a key after a delay: retries with backoff, deferred-payment retries, polling.

Kopf's timers would do this per object, but they put a finalizer on every object they match (a write
per object and another per deletion); this keeps the schedule in memory instead. Losing it on a
restart is fine: on start every object is listed again and reconciled, which re-creates its schedule.
The earliest request per key wins, so a burst of retries for one object collapses into one call.
Watch events are handed over here too (with no delay): the Kopf handler returns at once, a flood of
events waits as one small entry per object rather than as a handler call each with its body, and the
events for an object that arrive while it waits for a worker cost nothing more.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["Scheduler"]

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, *, workers: int = 8) -> None:
        # Two lanes, each a heap of (due, order, key): among the calls that are due, the first lane's
        # go first. New work (a rental just applied) takes the second lane, so during a burst the
        # rentals already under way finish before more are started: results come out steadily
        # instead of all at the end, and fewer rentals are half done at any moment.
        self._lanes: tuple[list[tuple[float, int, Hashable]], ...] = ([], [])
        self._due: dict[Hashable, tuple[float, int, Callable[[], None]]] = {}
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._stopping = False
        # Each worker takes the next due call itself when it is free: a call stays in `_due` until then,
        # where later requests for the same key merge into it instead of queueing a second pass. (A
        # single dispatcher thread handing calls to a pool needed the GIL once per call, and under
        # load waited for it each time: it capped the operator at about 15 rentals per second.)
        self._threads = [
            threading.Thread(target=self._work, name=f"worker-{n}", daemon=True) for n in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        deadline = time.monotonic() + 5
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=max(deadline - time.monotonic(), 0))

    def call_later(
        self, key: Hashable, delay: float, callback: Callable[[], None], *, new_work: bool = False
    ) -> None:
        """Call `callback` after `delay` seconds; a request for a key already waiting merges into it
        (the earlier time wins, and the first lane if either request asked for it)."""
        due = time.monotonic() + max(delay, 0.0)
        lane = 1 if new_work else 0
        with self._wakeup:
            known = self._due.get(key)
            if known is not None:
                if known[0] <= due and known[1] <= lane:
                    return
                due, lane = min(due, known[0]), min(lane, known[1])
            self._due[key] = (due, lane, callback)
            heapq.heappush(self._lanes[lane], (due, next(self._counter), key))
            self._wakeup.notify()

    def pending(self) -> int:
        with self._wakeup:
            return len(self._due)

    def _next_due(self, now: float) -> list[tuple[float, int, Hashable]] | None:
        """The lane whose head should run now (the first lane before the second), if any."""
        for lane in self._lanes:
            if lane and lane[0][0] <= now:
                return lane
        return None

    def _take(self) -> tuple[Hashable, Callable[[], None]] | None:
        """Wait for the next due call and take it (None once stopping)."""
        with self._wakeup:
            while not self._stopping:
                lane = self._next_due(time.monotonic())
                if lane is None:
                    heads = [queued[0][0] for queued in self._lanes if queued]
                    self._wakeup.wait(min(heads) - time.monotonic() if heads else None)
                    continue
                due, _, key = heapq.heappop(lane)
                entry = self._due.get(key)
                if entry is None or entry[0] != due or self._lanes[entry[1]] is not lane:
                    continue  # superseded by an earlier request, which already ran or will
                del self._due[key]
                if self._next_due(time.monotonic()) is not None:
                    self._wakeup.notify()  # more is due: wake another worker for it
                return key, entry[2]
        return None

    def _work(self) -> None:
        while (taken := self._take()) is not None:
            key, callback = taken
            try:
                callback()
            except Exception:
                logger.exception("scheduled work for %s failed", key)
