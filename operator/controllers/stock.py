"""The stock allocator: reserve and release Purifier units under optimistic concurrency.

Per Purifier, one thread at a time computes the new holders (`reconcilers.stock`) from the newest
known object and writes the whole status guarded by its resourceVersion. A conflict means another
writer got there first: read again and recompute. So two processes, or two threads, can never both
take the last unit. Requests that queue up while a write is in flight are committed together by the
next write (group commit), so a burst of applications for one model costs a few writes, not one each.
Called by the Rental controller (reserve, release) and the Purifier handler.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import purifier as api_purifier
from rental_operator.controllers import context
from rental_operator.reconcilers import stock
from rental_operator.runtime import batching

__all__ = ["is_current", "refresh", "release", "reserve"]

logger = logging.getLogger(__name__)
RESOURCE = api_purifier.RESOURCE
_ATTEMPTS = 50


def _current(ctx: context.Context, namespace: str, name: str, *, fresh: bool) -> dict[str, Any] | None:
    body = None if fresh else ctx.purifiers.get(namespace, name)
    if body is None:
        try:
            body = ctx.purifiers.observe(ctx.kube.get(RESOURCE, namespace, name))
        except kubeapi.NotFound:
            return None
    return body


@dataclasses.dataclass(eq=False)
class _Change(batching.Request):
    """One rental's reservation or release, waiting for the next commit on its Purifier."""

    rental: str = ""
    releasing: bool = False
    held: bool = False
    body: dict[str, Any] | None = None


def _commit(ctx: context.Context, namespace: str, name: str, batch: list[_Change]) -> None:
    """Write the whole batch as one status update, re-reading and recomputing on conflict."""
    releases = [c.rental for c in batch if c.releasing]
    reserves = [c.rental for c in batch if not c.releasing]
    fresh = False
    for _ in range(_ATTEMPTS):
        body = _current(ctx, namespace, name, fresh=fresh)
        if body is None:
            for change in batch:
                change.body, change.held = None, False
            return
        obj = api_purifier.Purifier.from_body(body)
        status, outcomes = stock.settle(obj, release=releases, reserve=reserves, now=ctx.clock())
        if status is not None:
            try:
                body = ctx.purifiers.observe(ctx.kube.replace_status(RESOURCE, body, status.to_wire()))
            except kubeapi.Conflict:
                fresh = True
                continue
        for change in batch:
            change.body = body
            change.held = not change.releasing and outcomes[change.rental] is stock.Outcome.RESERVED
        return
    raise RuntimeError(f"purifier {namespace}/{name}: status write kept conflicting")


def _submit(ctx: context.Context, namespace: str, name: str, change: _Change) -> _Change:
    committed: _Change = ctx.stock_changes.submit(
        (namespace, name), change, lambda batch: _commit(ctx, namespace, name, batch)
    )
    return committed


def reserve(
    ctx: context.Context, namespace: str, name: str, rental: str
) -> tuple[dict[str, Any] | None, bool]:
    """Reserve a unit for `rental`: (the purifier after it, or None if there is none; whether it is held)."""
    change = _submit(ctx, namespace, name, _Change(rental=rental))
    return change.body, change.held


def release(ctx: context.Context, namespace: str, name: str, rental: str) -> dict[str, Any] | None:
    """Give `rental`'s unit back; the purifier after it (None if there is no such purifier)."""
    return _submit(ctx, namespace, name, _Change(rental=rental, releasing=True)).body


def is_current(body: dict[str, Any]) -> bool:
    """Whether a Purifier's status already agrees with its spec and holders (nothing to refresh).

    Checked on the raw object, without parsing its holders: every reservation changes the status and
    so comes back as a watch event, and a big Purifier must not be re-validated on each of them.
    """
    status = body.get("status") or {}
    stock_units = (body.get("spec") or {}).get("stock", 0)
    allocated = len(status.get("holders") or [])
    return (
        status.get("observedGeneration") == body["metadata"].get("generation")
        and status.get("allocated") == allocated
        and status.get("available") == max(stock_units - allocated, 0)
    )


def refresh(ctx: context.Context, namespace: str, name: str) -> None:
    """Bring counts and conditions in line with the spec (after a stock change, or on first sight)."""
    with metrics.HANDLER_SECONDS.labels("Purifier", "refresh").time():
        _submit(ctx, namespace, name, _Change(rental="", releasing=True))
