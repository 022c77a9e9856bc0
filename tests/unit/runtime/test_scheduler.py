"""runtime.scheduler: callbacks run after their delay, the earliest request per key wins, failures are
logged and do not stop it. Delays are short and every wait is bounded."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rental_operator.runtime import scheduler

WAIT = 5.0  # upper bound for anything expected to happen
QUIET = 0.3  # how long to watch for something that must not happen


@pytest.fixture
def sched() -> Iterator[scheduler.Scheduler]:
    running = scheduler.Scheduler(workers=4)
    running.start()
    yield running
    running.stop()


class Calls:
    """Records which callbacks ran and when, with bounded waits for them."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.times: dict[str, float] = {}
        self._changed = threading.Condition()

    def make(self, name: str) -> Callable[[], None]:
        def run() -> None:
            with self._changed:
                self.names.append(name)
                self.times[name] = time.monotonic()
                self._changed.notify_all()

        return run

    def wait_for(self, count: int, timeout: float = WAIT) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.names) >= count, timeout)
            return list(self.names)


def test_callback_runs_after_its_delay(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    start = time.monotonic()
    sched.call_later("k", 0.1, calls.make("a"))
    assert calls.wait_for(1) == ["a"]
    assert calls.times["a"] - start >= 0.09
    assert sched.pending() == 0


def test_nothing_runs_before_it_is_due(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    sched.call_later("k", 2.0, calls.make("a"))
    time.sleep(QUIET)
    assert calls.names == []
    assert sched.pending() == 1


@pytest.mark.parametrize("delay", [0.0, -5.0])
def test_zero_or_negative_delay_runs_at_once(sched: scheduler.Scheduler, delay: float) -> None:
    calls = Calls()
    sched.call_later("k", delay, calls.make("a"))
    assert calls.wait_for(1, timeout=2.0) == ["a"]


def test_an_earlier_request_replaces_a_later_one(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    sched.call_later("k", 0.5, calls.make("late"))
    sched.call_later("k", 0.05, calls.make("early"))
    assert sched.pending() == 1
    assert calls.wait_for(1) == ["early"]
    time.sleep(0.5 + QUIET)
    assert calls.names == ["early"]


def test_a_later_request_does_not_replace_an_earlier_one(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    sched.call_later("k", 0.05, calls.make("early"))
    sched.call_later("k", 0.3, calls.make("late"))
    assert sched.pending() == 1
    assert calls.wait_for(1) == ["early"]
    time.sleep(0.3 + QUIET)
    assert calls.names == ["early"]


def test_a_burst_of_retries_collapses_into_one_call(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    for i in range(50):
        sched.call_later("k", 0.1 + i * 0.001, calls.make(f"retry-{i}"))
    assert calls.wait_for(1) == ["retry-0"]
    time.sleep(QUIET)
    assert calls.names == ["retry-0"]


def test_keys_are_independent(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    sched.call_later(("rental", "shop", "r1"), 0.1, calls.make("r1"))
    sched.call_later(("rental", "shop", "r2"), 0.02, calls.make("r2"))
    sched.call_later(("payment", "shop", "r1"), 0.05, calls.make("p1"))
    assert sched.pending() == 3
    assert calls.wait_for(3) == ["r2", "p1", "r1"]


def test_a_key_can_be_scheduled_again_after_it_ran(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    sched.call_later("k", 0.0, calls.make("first"))
    assert calls.wait_for(1) == ["first"]
    sched.call_later("k", 0.5, calls.make("second"))  # not swallowed by the first, already done
    assert calls.wait_for(2) == ["first", "second"]


def test_a_failing_callback_is_logged_and_the_scheduler_goes_on(
    sched: scheduler.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    calls = Calls()

    def boom() -> None:
        raise RuntimeError("kaput")

    with caplog.at_level(logging.ERROR, logger=scheduler.__name__):
        sched.call_later("bad", 0.0, boom)
        sched.call_later("good", 0.1, calls.make("good"))
        assert calls.wait_for(1) == ["good"]
        sched.call_later("bad", 0.0, calls.make("bad again"))  # the failed key is usable again
        assert calls.wait_for(2) == ["good", "bad again"]
    failures = [r for r in caplog.records if "scheduled work for" in r.getMessage()]
    assert len(failures) == 1
    assert "bad" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


def test_a_slow_callback_does_not_hold_up_others(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    release = threading.Event()

    def slow() -> None:
        release.wait(WAIT)
        calls.make("slow")()

    sched.call_later("slow", 0.0, slow)
    sched.call_later("fast", 0.05, calls.make("fast"))
    assert calls.wait_for(1) == ["fast"]
    release.set()
    assert calls.wait_for(2) == ["fast", "slow"]


def test_stop_ends_the_workers_and_drops_what_is_not_due() -> None:
    running = scheduler.Scheduler(workers=2)
    running.start()
    calls = Calls()
    running.call_later("k", 0.3, calls.make("never"))
    running.stop()
    assert not any(thread.is_alive() for thread in running._threads)
    time.sleep(0.3 + QUIET)
    assert calls.names == []


def test_work_scheduled_before_start_runs_once_started() -> None:
    running = scheduler.Scheduler(workers=1)
    calls = Calls()
    running.call_later("k", 0.0, calls.make("queued"))
    try:
        running.start()
        assert calls.wait_for(1) == ["queued"]
    finally:
        running.stop()


def _single_worker_held() -> tuple[scheduler.Scheduler, threading.Event]:
    """A scheduler whose only worker is busy until the returned event is set."""
    running = scheduler.Scheduler(workers=1)
    running.start()
    release, busy = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(WAIT)

    running.call_later("hold", 0, hold)
    assert busy.wait(WAIT)
    return running, release


def test_work_under_way_goes_before_new_work_that_is_due() -> None:
    running, release = _single_worker_held()
    try:
        calls = Calls()
        running.call_later("new-1", 0, calls.make("new-1"), new_work=True)
        running.call_later("new-2", 0, calls.make("new-2"), new_work=True)
        time.sleep(0.05)
        running.call_later("under-way", 0, calls.make("under-way"))  # asked last, due last
        release.set()
        assert calls.wait_for(3) == ["under-way", "new-1", "new-2"]
    finally:
        release.set()
        running.stop()


def test_new_work_asked_again_as_work_under_way_runs_once_in_the_first_lane() -> None:
    running, release = _single_worker_held()
    try:
        calls = Calls()
        running.call_later("a", 0, calls.make("a"), new_work=True)
        running.call_later("b", 0, calls.make("b"), new_work=True)
        running.call_later("b", 0, calls.make("b"))  # an event for b: it is under way now
        release.set()
        assert calls.wait_for(2) == ["b", "a"]
        time.sleep(QUIET)
        assert calls.names == ["b", "a"]
        assert running.pending() == 0
    finally:
        release.set()
        running.stop()


def test_a_later_time_does_not_hold_back_new_work_in_the_second_lane(sched: scheduler.Scheduler) -> None:
    calls = Calls()
    sched.call_later("retry", 1.0, calls.make("retry"))
    sched.call_later("new", 0, calls.make("new"), new_work=True)
    assert calls.wait_for(1, timeout=0.8) == ["new"]  # the first lane's head is not due yet
    assert calls.wait_for(2) == ["new", "retry"]
