"""runtime.locks: one holder per key at a time, different keys in parallel, no lock left behind."""

from __future__ import annotations

import threading
import time

import pytest

from rental_operator.runtime import locks

JOIN = 10.0


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"


def test_one_holder_per_key() -> None:
    keyed = locks.KeyedLocks()
    inside = 0
    most = 0
    counter = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most, counter
        for _ in range(20):
            with keyed.hold(("rental", "shop", "r1")):
                with guard:
                    inside += 1
                    most = max(most, inside)
                value = counter
                time.sleep(0.0005)  # a read-modify-write that races without the lock
                counter = value + 1
                with guard:
                    inside -= 1

    _run([threading.Thread(target=work) for _ in range(8)])
    assert most == 1
    assert counter == 8 * 20


def test_different_keys_do_not_wait_for_each_other() -> None:
    keyed = locks.KeyedLocks()
    both_inside = threading.Barrier(2, timeout=5)
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            with keyed.hold(key):
                both_inside.wait()  # only passes if both hold their lock at the same time
        except BaseException as error:
            errors.append(error)

    _run([threading.Thread(target=work, args=(key,)) for key in ("a", "b")])
    assert errors == []


def test_a_waiting_thread_gets_the_lock_when_it_is_released() -> None:
    keyed = locks.KeyedLocks()
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with keyed.hold("k"):
            order.append("first in")
            entered.set()
            release.wait(JOIN)
            order.append("first out")

    def second() -> None:
        entered.wait(JOIN)
        with keyed.hold("k"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    entered.wait(JOIN)
    time.sleep(0.05)
    assert order == ["first in"]  # the second is waiting
    release.set()
    for thread in threads:
        thread.join(timeout=JOIN)
    assert order == ["first in", "first out", "second in"]


def test_no_lock_entries_are_left_behind() -> None:
    keyed = locks.KeyedLocks()

    def work(worker: int) -> None:
        for i in range(50):
            with keyed.hold(("rental", "shop", f"r{(worker + i) % 5}")):
                pass

    _run([threading.Thread(target=work, args=(n,)) for n in range(6)])
    assert keyed._locks == {}


def test_entry_exists_only_while_held() -> None:
    keyed = locks.KeyedLocks()
    with keyed.hold("k"):
        assert set(keyed._locks) == {"k"}
    assert keyed._locks == {}


def test_an_exception_releases_the_lock_and_the_entry() -> None:
    keyed = locks.KeyedLocks()
    with pytest.raises(RuntimeError, match="boom"), keyed.hold("k"):
        raise RuntimeError("boom")
    assert keyed._locks == {}
    acquired = threading.Event()

    def again() -> None:
        with keyed.hold("k"):
            acquired.set()

    _run([threading.Thread(target=again)])
    assert acquired.is_set()
