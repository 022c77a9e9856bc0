"""Feeding a projection from the API server outside Kopf: list, then watch, per kind and namespace.

The `mypage` command has no Kopf (it must not run handlers that write), so it keeps its projection
current itself, the way client-go's informers do: list every Rental and Purifier once (page by page, so the
whole collection is never held as objects), mark
the projection ready, then watch from the list's resourceVersion with bookmarks. A watch that ends
is reopened from the last version seen; a `410 Gone` (that version was compacted away) lists again,
and the listing replaces what it covers. While a watch is down the projection is marked stale from
that moment, so `asOf` tells customers how old the answer may be. An object the projection cannot
read is skipped there (logged and counted), so neither a listing nor a watch is retried because of
one object, and readiness never waits on it.

Inside the operator, Kopf's own watch events feed the projection (`handlers.watches`); `load_once`
gives it the initial listing that decides readiness there.

One daemon thread per (kind, namespace): the `kubernetes` client is synchronous, and the event loop
stays free for requests. Called by `mypage.standalone` and `handlers.lifecycle`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Final

from rental_operator import kubeapi
from rental_operator.api import meta, purifier, rental
from rental_operator.mypage import projection

__all__ = ["KINDS", "Informer", "load_once"]

logger = logging.getLogger(__name__)

# Purifiers first: the page then never shows a rental without its model name at start-up.
KINDS: Final[tuple[tuple[str, meta.Resource], ...]] = (
    ("Purifier", purifier.RESOURCE),
    ("Rental", rental.RESOURCE),
)


def _scopes(namespaces: Sequence[str]) -> list[tuple[str, meta.Resource, str | None]]:
    spaces: Sequence[str | None] = list(namespaces) or [None]
    return [(kind, resource, space) for kind, resource in KINDS for space in spaces]


def load_once(kube: kubeapi.Kube, view: projection.Projection, namespaces: Sequence[str]) -> None:
    """List every Purifier and Rental into `view` once, then mark it ready (the operator's start-up)."""
    for kind, resource, space in _scopes(namespaces):
        view.replace(kind, space, kube.list_pages(resource, space))
    view.mark_ready()
    logger.info("MyPage loaded %d rentals of %d customers", len(view), view.customers)


class Informer:
    """Keeps `view` current with list-then-watch threads until `stop()`."""

    def __init__(
        self,
        kube: kubeapi.Kube,
        view: projection.Projection,
        namespaces: Sequence[str],
        *,
        watch_timeout_seconds: int = 300,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._kube = kube
        self._view = view
        self._scopes = _scopes(namespaces)
        self._watch_timeout = watch_timeout_seconds
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._unloaded = {self._source(kind, space) for kind, _, space in self._scopes}
        self._streams: dict[str, kubeapi.WatchStream] = {}
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(kind, resource, space),
                name=f"mypage-{self._source(kind, space)}",
                daemon=True,
            )
            for kind, resource, space in self._scopes
        ]

    @staticmethod
    def _source(kind: str, namespace: str | None) -> str:
        return f"{kind}/{namespace or '*'}"

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _loaded(self, source: str) -> None:
        with self._lock:
            self._unloaded.discard(source)
            done = not self._unloaded and not self._view.ready
        if done:
            self._view.mark_ready()
            logger.info("MyPage loaded %d rentals of %d customers", len(self._view), self._view.customers)

    def _run(self, kind: str, resource: meta.Resource, namespace: str | None) -> None:
        source = self._source(kind, namespace)
        version: str | None = None
        delay = self._min_backoff
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._view.replace(kind, namespace, self._kube.list_pages(resource, namespace))
                    self._loaded(source)
                version = self._watch(kind, resource, namespace, source, version)
                delay = self._min_backoff
            except kubeapi.Gone:
                logger.info("MyPage %s: watch expired, listing again", source)
                self._view.set_stale(source)
                version = None
            except Exception as error:
                if self._stopping.is_set():
                    break
                logger.warning("MyPage %s: %s; retrying in %.1fs", source, error, delay)
                self._view.set_stale(source)
                self._stopping.wait(delay)
                delay = min(delay * 2, self._max_backoff)

    def _watch(
        self, kind: str, resource: meta.Resource, namespace: str | None, source: str, version: str
    ) -> str:
        """Follow one watch until the server ends it; the last resourceVersion seen."""
        stream = self._kube.watch(resource, namespace, version, timeout_seconds=self._watch_timeout)
        with self._lock:
            self._streams[source] = stream
        self._view.set_live(source)
        try:
            for event in stream:
                if self._stopping.is_set():
                    break
                obj: dict[str, Any] = event.get("object") or {}
                seen = (obj.get("metadata") or {}).get("resourceVersion")
                if event.get("type") != "BOOKMARK":
                    self._view.apply(kind, event.get("type"), obj)
                if seen:
                    version = str(seen)
        finally:
            with self._lock:
                self._streams.pop(source, None)
            stream.close()
        return version
