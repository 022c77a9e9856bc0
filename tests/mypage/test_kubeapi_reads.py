"""kubeapi's reads for MyPage against the real API server: paged listings, watches, closing a watch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rental_devenv import testkit
from rental_operator import kubeapi
from rental_operator.api import rental


@pytest.fixture
def kube(kubeconfig: Path) -> kubeapi.Kube:
    return kubeapi.Kube(kubeapi.load_client(str(kubeconfig)))


def test_a_paged_listing_is_one_snapshot(
    cluster: testkit.Cluster, kube: kubeapi.Kube, namespace: str
) -> None:
    for index in range(5):
        cluster.create(testkit.rental(f"r{index}", "aqua", customer=f"c{index}"))
    pages = list(kube.list_pages(rental.RESOURCE, namespace, page_size=2))
    assert [len(items) for items, _ in pages] == [2, 2, 1]
    assert len({version for _, version in pages}) == 1
    names = sorted(item["metadata"]["name"] for items, _ in pages for item in items)
    assert names == [f"r{index}" for index in range(5)]


def test_a_watch_from_the_listing_sees_changes_and_closes_from_another_thread(
    cluster: testkit.Cluster, kube: kubeapi.Kube, namespace: str
) -> None:
    [(_, version)] = list(kube.list_pages(rental.RESOURCE, namespace))
    stream = kube.watch(rental.RESOURCE, namespace, version, timeout_seconds=60)
    seen: list[tuple[str, str]] = []
    ended = threading.Event()

    def follow() -> None:
        try:
            for event in stream:
                seen.append((event["type"], event["object"]["metadata"].get("name", "")))
        except Exception:  # closing may surface as a read error: that is the point
            pass
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    cluster.create(testkit.rental("late", "aqua"))
    testkit.wait_for(lambda: ("ADDED", "late") in seen, timeout=10, what="the ADDED event")
    started = time.monotonic()
    stream.close()
    assert ended.wait(5), "closing the watch did not end the reading thread"
    assert time.monotonic() - started < 5


def test_a_compacted_version_is_gone(kube: kubeapi.Kube, namespace: str) -> None:
    with pytest.raises(kubeapi.Gone):
        for _ in kube.watch(rental.RESOURCE, namespace, "1", timeout_seconds=5):
            pass
