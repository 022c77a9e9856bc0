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

import concurrent.futures
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
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="requeue")
        # A due call is handed to the pool only when a worker is free: until then it stays in `_due`,
        # where later requests for the same key merge into it instead of queueing a second pass.
        self._slots = threading.Semaphore(workers)
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

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

    def _run(self) -> None:
        while True:
            self._slots.acquire()
            with self._wakeup:
                while not self._stopping and (lane := self._next_due(time.monotonic())) is None:
                    heads = [queued[0][0] for queued in self._lanes if queued]
                    self._wakeup.wait(min(heads) - time.monotonic() if heads else None)
                if self._stopping or lane is None:
                    self._slots.release()
                    return
                due, _, key = heapq.heappop(lane)
                entry = self._due.get(key)
                if entry is None or entry[0] != due or self._lanes[entry[1]] is not lane:
                    self._slots.release()
                    continue  # superseded by an earlier request, which already ran or will
                del self._due[key]
                callback = entry[2]
            self._pool.submit(self._call, key, callback)

    def _call(self, key: Hashable, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            logger.exception("scheduled work for %s failed", key)
        finally:
            self._slots.release()
