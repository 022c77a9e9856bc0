"""The stock allocator: reserve and release Purifier units under optimistic concurrency.

Per Purifier, one thread at a time computes the new holders (`reconcilers.stock`) from the newest
known object and writes the whole status guarded by its resourceVersion. A conflict means another
writer got there first: read again and recompute. So two processes, or two threads, can never both
take the last unit. Called by the Rental controller (reserve, release) and the Purifier handler.
"""

from __future__ import annotations

import logging
from typing import Any

from rental_operator import kubeapi, metrics
from rental_operator.api import purifier as api_purifier
from rental_operator.controllers import context
from rental_operator.reconcilers import stock

__all__ = ["refresh", "release", "reserve"]

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


def _update(
    ctx: context.Context, namespace: str, name: str, compute: Any
) -> tuple[dict[str, Any] | None, Any]:
    """Apply `compute(purifier) -> (status | None, result)` until the write lands; return (body, result)."""
    with ctx.locks.hold(("purifier", namespace, name)):
        fresh = False
        for _ in range(_ATTEMPTS):
            body = _current(ctx, namespace, name, fresh=fresh)
            if body is None:
                return None, None
            status, result = compute(api_purifier.Purifier.from_body(body))
            if status is None:
                return body, result
            try:
                body = ctx.purifiers.observe(ctx.kube.replace_status(RESOURCE, body, status.to_wire()))
            except kubeapi.Conflict:
                fresh = True
                continue
            return body, result
    raise RuntimeError(f"purifier {namespace}/{name}: status write kept conflicting")


def reserve(
    ctx: context.Context, namespace: str, name: str, rental: str
) -> tuple[dict[str, Any] | None, bool]:
    """Reserve a unit for `rental`: (the purifier after it, or None if there is none; whether it is held)."""

    def compute(obj: api_purifier.Purifier) -> tuple[api_purifier.PurifierStatus | None, bool]:
        status, outcomes = stock.reserve(obj, [rental], now=ctx.clock())
        return status, outcomes[rental] is stock.Outcome.RESERVED

    body, held = _update(ctx, namespace, name, compute)
    return body, bool(held)


def release(ctx: context.Context, namespace: str, name: str, rental: str) -> dict[str, Any] | None:
    """Give `rental`'s unit back; the purifier after it (None if there is no such purifier)."""

    def compute(obj: api_purifier.Purifier) -> tuple[api_purifier.PurifierStatus | None, None]:
        return stock.release(obj, [rental], now=ctx.clock()), None

    body, _ = _update(ctx, namespace, name, compute)
    return body


def refresh(ctx: context.Context, namespace: str, name: str) -> None:
    """Bring counts and conditions in line with the spec (after a stock change, or on first sight)."""
    with metrics.HANDLER_SECONDS.labels("Purifier", "refresh").time():
        _refresh(ctx, namespace, name)


def _refresh(ctx: context.Context, namespace: str, name: str) -> None:

    def compute(obj: api_purifier.Purifier) -> tuple[api_purifier.PurifierStatus | None, None]:
        return stock.release(obj, [], now=ctx.clock()), None

    _update(ctx, namespace, name, compute)
