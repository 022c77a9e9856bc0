"""Group commit: requests for one key that queue up behind a running commit go in the next one.

Every reservation of a Purifier's units is a read-modify-write of that one object, so a burst of
applications for the same model would otherwise write its status once per rental, one after the
other. Here the first caller commits; callers arriving meanwhile wait on the key, and the next one to
get it commits everything that has queued up in a single write. Results go back to each caller.
Used by the stock allocator.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from rental_operator.runtime import locks

__all__ = ["GroupCommit", "Request"]


@dataclasses.dataclass(eq=False)
class Request:
    done: bool = dataclasses.field(default=False, init=False)
    error: BaseException | None = dataclasses.field(default=None, init=False)


R = TypeVar("R", bound=Request)


class GroupCommit(Generic[R]):
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pending: dict[Hashable, list[R]] = {}
        self._locks = locks.KeyedLocks()

    def submit(self, key: Hashable, request: R, commit: Callable[[list[R]], None]) -> R:
        """Queue `request` under `key` and return it once committed (by us or by another caller).

        `commit(batch)` must fill in each request's result; it is called with the requests in the
        order they arrived. If it raises, every request of the batch carries (and re-raises) the error.
        """
        with self._guard:
            self._pending.setdefault(key, []).append(request)
        with self._locks.hold(key):
            if not request.done:
                with self._guard:
                    batch = self._pending.pop(key, [])
                try:
                    commit(batch)
                except BaseException as error:
                    for queued in batch:
                        queued.error = error
                    raise
                finally:
                    for queued in batch:
                        queued.done = True
        if request.error is not None:
            raise request.error
        return request
