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
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, tuple[float, Callable[[], None]]] = {}
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

    def call_later(self, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        due = time.monotonic() + max(delay, 0.0)
        with self._wakeup:
            known = self._due.get(key)
            if known is not None and known[0] <= due:
                return
            self._due[key] = (due, callback)
            heapq.heappush(self._heap, (due, next(self._counter), key))
            self._wakeup.notify()

    def pending(self) -> int:
        with self._wakeup:
            return len(self._due)

    def _run(self) -> None:
        while True:
            self._slots.acquire()
            with self._wakeup:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wakeup.wait(timeout)
                if self._stopping:
                    self._slots.release()
                    return
                due, _, key = heapq.heappop(self._heap)
                entry = self._due.get(key)
                if entry is None or entry[0] != due:
                    self._slots.release()
                    continue  # superseded by an earlier request, which already ran or will
                del self._due[key]
                callback = entry[1]
            self._pool.submit(self._call, key, callback)

    def _call(self, key: Hashable, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            logger.exception("scheduled work for %s failed", key)
        finally:
            self._slots.release()
