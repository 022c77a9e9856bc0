"""Routing and the order of checks every request goes through; the whole gateway minus the socket.

`Gateway.handle` takes a `wire.Request` and returns a `wire.Response` (or `wire.Drop`). `server` calls
it from its request threads; unit tests call it directly. For a partner route the order is:

1. faults (`faults.FaultInjector.decide`): drop, 503 or delay, before anything else happens;
2. `Authorization: Bearer <key>` when a key is configured (401 otherwise);
3. for a POST: the Idempotency-Key header (400 if missing), the JSON body, then `idempotency.run_once`
   around the handler in `partners`;
4. the ledger's `NotFoundError` and `lifecycle.TransitionError` become 404 and 409.

Admin routes skip 1 and the Idempotency-Key; `/healthz` skips everything. Every request is counted in
`stats` under its route template.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import time
from collections.abc import Callable, Mapping

from . import admin, declines, faults, idempotency, ledger, lifecycle, partners, stats, wire

__all__ = ["Gateway", "Route"]

Handler = Callable[[wire.Call], wire.Response]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v1/payments/{id}/refund"; also the label in /admin/stats
    handler: Handler
    partner: str | None = None  # None: not a partner endpoint (never faulted, no Idempotency-Key)
    authenticated: bool = True

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def pattern(self) -> re.Pattern[str]:
        segments = (
            f"(?P<{segment[1:-1]}>[^/]+)" if segment.startswith("{") else re.escape(segment)
            for segment in self.template.split("/")
        )
        return re.compile("^" + "/".join(segments) + "$")


class Gateway:
    def __init__(
        self,
        store: ledger.Ledger,
        *,
        api_key: str | None = None,
        fault_settings: faults.FaultSettings | None = None,
        decline_rule: declines.DeclineRule | None = None,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = store
        self.faults = faults.FaultInjector(fault_settings, seed=seed)
        self.stats = stats.Stats()
        self._api_key = api_key or None
        self._sleep = sleep
        rule = decline_rule or declines.DeclineRule()
        partner_api = partners.PartnerApi(store, rule)
        admin_api = admin.AdminApi(
            store, self.faults, self.stats, started_with=self.faults.settings, declining=rule.declining
        )
        self.routes: tuple[Route, ...] = (
            Route("POST", "/v1/payments", partner_api.create_payment, "payments"),
            Route("GET", "/v1/payments/{id}", partner_api.get_payment, "payments"),
            Route("POST", "/v1/payments/{id}/refund", partner_api.refund_payment, "payments"),
            Route("POST", "/v1/shipments", partner_api.create_shipment, "shipping"),
            Route("GET", "/v1/shipments/{id}", partner_api.get_shipment, "shipping"),
            Route("POST", "/v1/shipments/{id}/cancel", partner_api.cancel_shipment, "shipping"),
            Route("POST", "/v1/shipments/{id}/return", partner_api.return_shipment, "shipping"),
            Route("POST", "/v1/messages", partner_api.create_message, "sms"),
            Route("GET", "/admin/faults", admin_api.get_faults),
            Route("PUT", "/admin/faults", admin_api.put_faults),
            Route("GET", "/admin/declines", admin_api.get_declines),
            Route("PUT", "/admin/declines", admin_api.put_declines),
            Route("GET", "/admin/ledger", admin_api.get_ledger),
            Route("GET", "/admin/stats", admin_api.get_stats),
            Route("POST", "/admin/shipments/{id}/deliver", admin_api.deliver_shipment),
            Route("POST", "/admin/reset", admin_api.reset),
            Route("GET", "/healthz", _healthz, authenticated=False),
        )
        self._patterns = tuple((route, route.pattern) for route in self.routes)

    def handle(self, request: wire.Request) -> wire.Response | wire.Drop:
        route, params = self._match(request)
        try:
            if route is None:
                raise self._no_route(request)
            result = self._run(route, params, request)
        except wire.HttpError as error:
            result = error.to_response()
        outcome = "dropped" if isinstance(result, wire.Drop) else str(result.status)
        self.stats.record(
            route.label if route else stats.UNMATCHED, outcome, route.partner if route else None
        )
        return result

    def _match(self, request: wire.Request) -> tuple[Route | None, Mapping[str, str]]:
        for route, pattern in self._patterns:
            found = pattern.match(request.path)
            if found is not None and route.method == request.method:
                return route, found.groupdict()
        return None, {}

    def _no_route(self, request: wire.Request) -> wire.HttpError:
        allowed = sorted(route.method for route, pattern in self._patterns if pattern.match(request.path))
        if allowed:
            return wire.HttpError(
                405, f"{request.method} is not allowed on {request.path}", {"Allow": ", ".join(allowed)}
            )
        return wire.HttpError(404, f"no such endpoint: {request.path}")

    def _run(
        self, route: Route, params: Mapping[str, str], request: wire.Request
    ) -> wire.Response | wire.Drop:
        if route.partner is not None:
            decision = self.faults.decide(route.partner)
            self.stats.record_faults(decision.injected)
            if decision.action is faults.Action.DROP:
                return wire.Drop()
            if decision.delay_seconds > 0:
                self._sleep(decision.delay_seconds)
            if decision.action is faults.Action.FAIL:
                raise wire.HttpError(
                    503, f"{route.partner} is unavailable (injected fault)", {"Retry-After": "1"}
                )
        if route.authenticated:
            self._authenticate(request)
        key = None
        if route.partner is not None and route.method == "POST":
            key = idempotency.require_key(request.header("Idempotency-Key"))
        body = wire.parse_json_object(request.body) if route.method in ("POST", "PUT") else {}
        call = wire.Call(request=request, params=params, body=body)
        try:
            if key is None or route.partner is None:
                return route.handler(call)
            return idempotency.run_once(
                self.ledger,
                scope=route.partner,
                key=key,
                request_fingerprint=idempotency.fingerprint(route.method, request.path, body),
                handler=lambda: route.handler(call),
            )
        except ledger.NotFoundError as error:
            raise wire.HttpError(404, str(error)) from error
        except lifecycle.TransitionError as error:
            raise wire.HttpError(409, str(error)) from error

    def _authenticate(self, request: wire.Request) -> None:
        if self._api_key is None:
            return
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._api_key.encode()
        ):
            raise wire.HttpError(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})


def _healthz(call: wire.Call) -> wire.Response:
    return wire.Response.json(200, {"status": "ok"})
