"""The `/admin/` endpoints: what tests and the demo use to steer and inspect the gateway.

Not part of the contract, and no real provider has them; the operator never calls them. They let a
test provoke failures (`PUT /admin/faults`) and declines (`PUT /admin/declines`), move a parcel along
(`POST /admin/shipments/{id}/deliver`), check effects (`GET /admin/ledger`, `GET /admin/stats`) and
start clean (`POST /admin/reset`). They
are never faulted and need no Idempotency-Key, but they do need the API key when one is configured.
Routed by `app.Gateway`; the gateway's README lists the shapes.
"""

from __future__ import annotations

from . import declines, faults, ledger, stats, wire

__all__ = ["AdminApi"]


class AdminApi:
    def __init__(
        self,
        store: ledger.Ledger,
        injector: faults.FaultInjector,
        counters: stats.Stats,
        *,
        started_with: faults.FaultSettings,
        declining: declines.DeclineList,
    ) -> None:
        self._ledger = store
        self._faults = injector
        self._stats = counters
        self._started_with = started_with
        self._declining = declining

    def get_declines(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, {"customerIds": self._declining.listing()})

    def put_declines(self, call: wire.Call) -> wire.Response:
        """Replace the decline list: `{"customerIds": ["c-1"]}` declines c-1's payments from now on."""
        ids = call.body.get("customerIds")
        unknown = sorted(set(call.body) - {"customerIds"})
        if unknown:
            raise wire.HttpError(400, f'unknown field {unknown[0]!r}: the body is {{"customerIds": [...]}}')
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise wire.HttpError(400, "customerIds must be a list of non-empty strings")
        self._declining.replace(ids)
        return wire.Response.json(200, {"customerIds": self._declining.listing()})

    def get_faults(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, self._faults.settings.to_json())

    def put_faults(self, call: wire.Call) -> wire.Response:
        """Replace the named settings, keep the others: `{"errorRate": 1.0}` changes only the rate."""
        try:
            settings = self._faults.settings.updated(call.body)
        except ValueError as error:
            raise wire.HttpError(400, str(error)) from error
        self._faults.replace(settings)
        return wire.Response.json(200, settings.to_json())

    def get_ledger(self, call: wire.Call) -> wire.Response:
        """Every payment, shipment and message, narrowed by query filters (`?reference=...`)."""
        filters: dict[str, str] = {}
        for name, values in call.request.query.items():
            if len(values) != 1:
                raise wire.HttpError(400, f"filter {name!r} must be given once")
            filters[name] = values[0]
        try:
            listing = self._ledger.listing(filters)
        except ValueError as error:
            raise wire.HttpError(400, str(error)) from error
        return wire.Response.json(200, listing)

    def get_stats(self, call: wire.Call) -> wire.Response:
        snapshot = self._stats.snapshot()
        snapshot["ledger"] = self._ledger.counts()
        return wire.Response.json(200, snapshot)

    def deliver_shipment(self, call: wire.Call) -> wire.Response:
        """The carrier's next step now: shipping -> delivered, or returning -> returned; else 409."""
        return wire.Response.json(200, self._ledger.advance_shipment(call.params["id"]).to_json())

    def reset(self, call: wire.Call) -> wire.Response:
        """Empty ledger and idempotency records, zero counters, faults back to the start-up flags, no
        customer on the decline list."""
        self._ledger.reset()
        self._stats.reset()
        self._faults.replace(self._started_with)
        self._declining.replace(())
        return wire.Response.json(200, {"reset": True, "faults": self._started_with.to_json()})
