"""mypage.informer: list, then watch from the list's version; resume, relist on 410, mark stale on errors.

A scripted stand-in for `kubeapi.Kube` plays the API server, so each recovery path runs in
milliseconds; tests/mypage/ runs the informer against the real control plane.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rental_operator import kubeapi
from rental_operator.api import meta
from rental_operator.mypage import informer, projection

RentalFactory = Callable[..., dict[str, Any]]
_END = object()


class _Stream:
    def __init__(self) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            item = self.events.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.closed.set()
        self.events.put(_END)


class FakeKube:
    """Listings and watches handed out in order, per kind; records what was asked."""

    def __init__(self) -> None:
        self.listings: dict[str, queue.Queue[Any]] = {"Rental": queue.Queue(), "Purifier": queue.Queue()}
        self.streams: dict[str, queue.Queue[_Stream | BaseException]] = {
            "Rental": queue.Queue(),
            "Purifier": queue.Queue(),
        }
        self.watched_from: list[tuple[str, str]] = []
        self.listed: list[tuple[str, str | None]] = []

    def list_pages(self, resource: meta.Resource, namespace: str | None) -> Iterator[tuple[list[Any], str]]:
        self.listed.append((resource.kind, namespace))
        listing = self.listings[resource.kind].get(timeout=5)
        if isinstance(listing, BaseException):
            raise listing
        items, version = listing
        # Two pages when there is more than one object: the projection must take the listing whole.
        yield list(items[:1]), version
        if len(items) > 1:
            yield list(items[1:]), version

    def watch(
        self, resource: meta.Resource, namespace: str | None, version: str, *, timeout_seconds: int
    ) -> _Stream:
        self.watched_from.append((resource.kind, version))
        stream = self.streams[resource.kind].get(timeout=5)
        if isinstance(stream, BaseException):
            raise stream
        return stream


def _wait(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def _start(kube: FakeKube, view: projection.Projection) -> informer.Informer:
    feeding = informer.Informer(kube, view, [], min_backoff=0.01, max_backoff=0.02)  # type: ignore[arg-type]
    feeding.start()
    return feeding


def _phases(view: projection.Projection) -> dict[str, str]:
    return {rental.name: rental.phase for rental in view.rentals_of("cust-1")}


def _names(view: projection.Projection, customer: str = "cust-1") -> list[str]:
    return sorted(rental.name for rental in view.rentals_of(customer))


def test_ready_after_both_listings_then_follows_the_watch(kube: FakeKube, rental_body: RentalFactory) -> None:
    view = projection.Projection()
    rentals, purifiers = _Stream(), _Stream()
    kube.streams["Rental"].put(rentals)
    kube.streams["Purifier"].put(purifiers)
    kube.listings["Rental"].put(([rental_body("a", version=5)], "100"))
    feeding = _start(kube, view)
    try:
        time.sleep(0.05)
        assert not view.ready  # the purifiers are not listed yet
        kube.listings["Purifier"].put(([], "100"))
        _wait(lambda: view.ready, "ready")
        assert _names(view) == ["a"]
        rentals.events.put({"type": "ADDED", "object": rental_body("b", version=101)})
        rentals.events.put({"type": "MODIFIED", "object": rental_body("a", version=102, phase="Cancelled")})
        _wait(lambda: _names(view) == ["a", "b"], "b added")
        _wait(lambda: _phases(view)["a"] == "Cancelled", "a modified")
        rentals.events.put({"type": "DELETED", "object": rental_body("b", version=103)})
        _wait(lambda: _names(view) == ["a"], "b deleted")
        assert ("Rental", "100") in kube.watched_from
    finally:
        feeding.stop()
    assert rentals.closed.is_set() and purifiers.closed.is_set()


def test_a_finished_watch_resumes_from_the_last_version_or_bookmark(
    kube: FakeKube, rental_body: RentalFactory
) -> None:
    view = projection.Projection()
    first, second = _Stream(), _Stream()
    kube.listings["Rental"].put(([], "10"))
    kube.listings["Purifier"].put(([], "10"))
    kube.streams["Purifier"].put(_Stream())
    kube.streams["Rental"].put(first)
    kube.streams["Rental"].put(second)
    feeding = _start(kube, view)
    try:
        first.events.put({"type": "ADDED", "object": rental_body("a", version=11)})
        first.events.put({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}})
        first.events.put(_END)  # the server's timeout ends the watch
        _wait(lambda: ("Rental", "15") in kube.watched_from, "a watch from the bookmark")
        second.events.put({"type": "ADDED", "object": rental_body("b", version=16)})
        _wait(lambda: _names(view) == ["a", "b"], "both rentals")
        assert kube.listed.count(("Rental", None)) == 1  # no relisting for a normal end
    finally:
        feeding.stop()


def test_gone_lists_again_and_drops_what_was_deleted_meanwhile(
    kube: FakeKube, rental_body: RentalFactory
) -> None:
    view = projection.Projection()
    first, second = _Stream(), _Stream()
    kube.listings["Purifier"].put(([], "10"))
    kube.streams["Purifier"].put(_Stream())
    kube.listings["Rental"].put(([rental_body("a", version=5), rental_body("b", version=6)], "10"))
    kube.listings["Rental"].put(([rental_body("a", version=5)], "50"))  # b was deleted in the gap
    kube.streams["Rental"].put(first)
    kube.streams["Rental"].put(second)
    feeding = _start(kube, view)
    try:
        _wait(lambda: _names(view) == ["a", "b"], "first listing")
        first.events.put(kubeapi.Gone("too old"))
        _wait(lambda: _names(view) == ["a"], "relisted")
        _wait(lambda: ("Rental", "50") in kube.watched_from, "a watch from the new listing")
    finally:
        feeding.stop()


def test_errors_mark_the_projection_stale_until_the_watch_is_back(
    kube: FakeKube, rental_body: RentalFactory
) -> None:
    view = projection.Projection()
    first, second = _Stream(), _Stream()
    kube.listings["Rental"].put(([], "10"))
    kube.listings["Purifier"].put(([], "10"))
    kube.streams["Purifier"].put(_Stream())
    kube.streams["Rental"].put(first)
    kube.streams["Rental"].put(ConnectionError("refused"))  # the first reconnect fails too
    feeding = _start(kube, view)
    try:
        _wait(lambda: view.ready, "ready")
        first.events.put(ConnectionError("reset"))
        _wait(lambda: kube.watched_from.count(("Rental", "10")) >= 2, "a reconnect attempt")
        stale_since = view.as_of()
        time.sleep(0.05)
        assert view.as_of() == stale_since  # frozen while disconnected
        kube.streams["Rental"].put(second)
        _wait(lambda: view.as_of() > stale_since + 0.04, "live again")
        second.events.put({"type": "ADDED", "object": rental_body("late", version=11)})
        _wait(lambda: _names(view) == ["late"], "events after reconnecting")
    finally:
        feeding.stop()


def test_a_failed_first_listing_is_retried(kube: FakeKube, rental_body: RentalFactory) -> None:
    view = projection.Projection()
    kube.listings["Rental"].put(ConnectionError("apiserver not up yet"))
    kube.listings["Rental"].put(([rental_body("a")], "10"))
    kube.listings["Purifier"].put(([], "10"))
    kube.streams["Rental"].put(_Stream())
    kube.streams["Purifier"].put(_Stream())
    feeding = _start(kube, view)
    try:
        _wait(lambda: view.ready, "ready after a retry")
        assert _names(view) == ["a"]
    finally:
        feeding.stop()


def test_one_watch_per_kind_and_namespace(kube: FakeKube) -> None:
    view = projection.Projection()
    for kind in ("Rental", "Purifier"):
        for _ in range(2):
            kube.listings[kind].put(([], "1"))
            kube.streams[kind].put(_Stream())
    feeding = informer.Informer(kube, view, ["a", "b"])  # type: ignore[arg-type]
    feeding.start()
    try:
        _wait(lambda: view.ready, "ready")
        assert sorted(kube.listed) == [
            ("Purifier", "a"),
            ("Purifier", "b"),
            ("Rental", "a"),
            ("Rental", "b"),
        ]
    finally:
        feeding.stop()


def test_load_once_lists_everything_and_marks_ready(kube: FakeKube, rental_body: RentalFactory) -> None:
    view = projection.Projection()
    kube.listings["Purifier"].put(([], "3"))
    kube.listings["Rental"].put(([rental_body("a")], "3"))
    informer.load_once(kube, view, [])  # type: ignore[arg-type]
    assert view.ready
    assert _names(view) == ["a"]
    assert kube.listed == [("Purifier", None), ("Rental", None)]


def _with(body: dict[str, Any], *, seq: int | None = None, amount: int | None = None) -> dict[str, Any]:
    if seq is not None:
        body["status"]["history"][0]["seq"] = seq
    if amount is not None:
        body["status"]["payment"]["amount"] = amount
    return body


def test_an_object_out_of_range_is_skipped_and_the_others_are_served(
    kube: FakeKube, rental_body: RentalFactory
) -> None:
    """One bad status once kept the listing failing forever and /readyz at 503 for everyone (issue 13)."""
    view = projection.Projection()
    rentals = _Stream()
    kube.listings["Purifier"].put(([], "10"))
    kube.streams["Purifier"].put(_Stream())
    bad = _with(rental_body("bad-seq", customer="cust-2", version=4), seq=2**40)
    kube.listings["Rental"].put(([bad, rental_body("a", version=5)], "10"))
    kube.streams["Rental"].put(rentals)
    feeding = _start(kube, view)
    try:
        _wait(lambda: view.ready, "ready despite the bad rental")
        assert _names(view) == ["a"]
        assert _names(view, "cust-2") == []
        rentals.events.put(
            {"type": "ADDED", "object": _with(rental_body("bad-amount", version=11), amount=2**62)}
        )
        rentals.events.put({"type": "ADDED", "object": rental_body("b", version=12)})
        _wait(lambda: _names(view) == ["a", "b"], "the watch going on past a bad object")
        assert view.ready
        assert kube.listed == [("Purifier", None), ("Rental", None)]  # listed once, no retry loop
        assert kube.watched_from.count(("Rental", "10")) == 1  # the watch was never broken
    finally:
        feeding.stop()
