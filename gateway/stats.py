"""Request counters by route and outcome, for tests that assert on calls the operator did or did not make.

"No payment request was made while the breaker was open" cannot be seen in the ledger (a request that
was refused or failed leaves no row), so every request is counted here by its route template (e.g.
`POST /v1/payments/{id}/refund`) and outcome (the status code, or `dropped`). `app.Gateway` records,
`GET /admin/stats` reads, `POST /admin/reset` clears. Counters live in memory only: a restarted
gateway starts from zero, like any process metric.
"""

from __future__ import annotations

import collections
import threading

__all__ = ["UNMATCHED", "Stats"]

UNMATCHED = "unmatched"


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, collections.Counter[str]] = {}
        self._partners: collections.Counter[str] = collections.Counter()
        self._faults: collections.Counter[str] = collections.Counter()

    def record_faults(self, injected: tuple[str, ...]) -> None:
        """Count the faults injected into one request, by kind (`faults.Decision.injected`)."""
        with self._lock:
            self._faults.update(injected)

    def record(self, route: str, outcome: str, partner: str | None = None) -> None:
        with self._lock:
            self._routes.setdefault(route, collections.Counter())[outcome] += 1
            if partner is not None:
                self._partners[partner] += 1

    def count(self, route: str, outcome: str | None = None) -> int:
        with self._lock:
            counter = self._routes.get(route, collections.Counter())
            return counter.total() if outcome is None else counter[outcome]

    def snapshot(self) -> dict[str, object]:
        """`{"routes": {route: {outcome: n}}, "partners": {partner: n}, "faults": {kind: n}, "total": n}`."""
        with self._lock:
            return {
                "routes": {
                    route: dict(sorted(outcomes.items())) for route, outcomes in sorted(self._routes.items())
                },
                "partners": dict(sorted(self._partners.items())),
                "faults": dict(sorted(self._faults.items())),
                "total": sum(outcomes.total() for outcomes in self._routes.values()),
            }

    def reset(self) -> None:
        with self._lock:
            self._routes.clear()
            self._partners.clear()
            self._faults.clear()
