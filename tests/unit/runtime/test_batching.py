"""Group commit: requests that queue up behind a running commit are committed together, once."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from rental_operator.runtime import batching


@dataclasses.dataclass(eq=False)
class Item(batching.Request):
    value: int = 0
    committed_in: int = -1


def test_a_lone_request_is_committed_by_its_own_caller() -> None:
    commits: list[list[int]] = []
    group: batching.GroupCommit[Item] = batching.GroupCommit()

    def commit(batch: list[Item]) -> None:
        commits.append([item.value for item in batch])

    item = group.submit("k", Item(value=1), commit)
    assert item.done and item.error is None
    assert commits == [[1]]


def test_requests_arriving_during_a_commit_go_into_the_next_one_together() -> None:
    group: batching.GroupCommit[Item] = batching.GroupCommit()
    first_started, release_first = threading.Event(), threading.Event()
    commits: list[list[int]] = []

    def commit(batch: list[Item]) -> None:
        if not commits and not first_started.is_set():
            first_started.set()
            assert release_first.wait(10)
        commits.append([item.value for item in batch])
        for item in batch:
            item.committed_in = len(commits)

    results: list[Item] = []
    first = threading.Thread(target=lambda: results.append(group.submit("k", Item(value=0), commit)))
    first.start()
    assert first_started.wait(10)
    waiting = [
        threading.Thread(target=lambda v=v: results.append(group.submit("k", Item(value=v), commit)))
        for v in range(1, 6)
    ]
    for thread in waiting:
        thread.start()
    # All five are queued behind the running commit before it finishes.
    deadline = threading.Event()
    for _ in range(200):
        if len(group._pending.get("k", [])) == 5:
            break
        deadline.wait(0.01)
    release_first.set()
    for thread in [first, *waiting]:
        thread.join(10)
    assert commits[0] == [0]
    assert sorted(commits[1]) == [1, 2, 3, 4, 5] and len(commits) == 2
    assert all(item.done for item in results) and len(results) == 6


def test_keys_do_not_wait_for_each_other() -> None:
    group: batching.GroupCommit[Item] = batching.GroupCommit()
    seen: list[str] = []
    group.submit("a", Item(), lambda batch: seen.append("a"))
    group.submit("b", Item(), lambda batch: seen.append("b"))
    assert seen == ["a", "b"]


def test_a_failed_commit_fails_every_request_of_its_batch() -> None:
    group: batching.GroupCommit[Item] = batching.GroupCommit()

    def commit(batch: list[Item]) -> None:
        raise RuntimeError("conflict storm")

    with pytest.raises(RuntimeError, match="conflict storm"):
        group.submit("k", Item(), commit)
    # The key is usable again afterwards.
    assert group.submit("k", Item(value=7), lambda batch: None).done
