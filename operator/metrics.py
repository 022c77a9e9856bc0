"""Prometheus metrics of the operator (CONTRACT §5), served on RENTAL_METRICS_PORT at /metrics.

Counters and histograms are updated where things happen (a status write that changed a phase, a
payment request, a text message). Gauges that describe the current state of the business (rentals
per phase, pending work, units available) are computed at scrape time from the in-memory stores,
so they are exact, cost nothing between scrapes, and cannot drift from a missed decrement. Label
values are bounded (namespaces, phases, kinds, purifier names): never a rental or customer id.
`rental_pending_work` (rentals not at a resting phase) is the autoscaling signal.
Called by the controllers and wired up by `handlers.lifecycle`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import core, registry

from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import rentals as rental_decisions

__all__ = [
    "BREAKER",
    "HANDLER_SECONDS",
    "NOTIFICATIONS",
    "PAYMENT_REQUESTS",
    "PAYMENT_SECONDS",
    "TRANSITIONS",
    "observe_breaker",
    "observe_payment",
    "register_state_collector",
    "serve",
    "transition",
]

TRANSITIONS = prometheus_client.Counter(
    "rental_phase_transitions",
    "Phase changes written, by kind of object (Rental, Payment, Delivery).",
    ["kind", "from_phase", "to_phase"],
)
PAYMENT_REQUESTS = prometheus_client.Counter(
    "rental_payment_requests",
    "Requests to the payment system (or refused by the open breaker without a request), by outcome.",
    ["operation", "outcome"],
)
PAYMENT_SECONDS = prometheus_client.Histogram(
    "rental_payment_request_duration_seconds",
    "Duration of requests to the payment system.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
BREAKER = prometheus_client.Gauge(
    "rental_payment_breaker_state", "State of the payment circuit breaker: 0 closed, 1 half-open, 2 open."
)
NOTIFICATIONS = prometheus_client.Counter(
    "rental_notifications", "Text messages to customers, by outcome (sent, logged, failed).", ["outcome"]
)
HANDLER_SECONDS = prometheus_client.Histogram(
    "rental_handler_duration_seconds",
    "Duration of one reconciliation, by kind of object and handler.",
    ["kind", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_BREAKER_VALUES = {"closed": 0, "half-open": 1, "open": 2}


def transition(kind: str, before: object, after: object) -> None:
    if before != after and after is not None:
        TRANSITIONS.labels(kind, str(before or "None"), str(after)).inc()


def observe_payment(operation: str, outcome: str, seconds: float) -> None:
    PAYMENT_REQUESTS.labels(operation, outcome).inc()
    if outcome != "breaker_open":
        PAYMENT_SECONDS.observe(seconds)


def observe_breaker(_old: str, new: str) -> None:
    BREAKER.set(_BREAKER_VALUES.get(new, 0))


class _StateCollector(registry.Collector):
    """Gauges computed at scrape time from the stores the controllers keep anyway."""

    def __init__(
        self,
        rentals: Callable[[], list[dict[str, Any]]],
        purifiers: Callable[[], list[dict[str, Any]]],
        scheduled: Callable[[], int],
    ) -> None:
        self._rentals, self._purifiers, self._scheduled = rentals, purifiers, scheduled

    def collect(self) -> Iterator[core.Metric]:
        by_phase: collections.Counter[tuple[str, str]] = collections.Counter()
        pending = 0
        for body in self._rentals():
            status = api_rental.RentalStatus.model_validate(body.get("status") or {})
            by_phase[body["metadata"]["namespace"], str(status.phase or "Pending")] += 1
            if body["metadata"].get("deletionTimestamp") or not rental_decisions.is_resting(status):
                pending += 1
        rentals = core.GaugeMetricFamily(
            "rental_rentals", "Rentals by namespace and phase.", labels=["namespace", "phase"]
        )
        for (namespace, phase), count in sorted(by_phase.items()):
            rentals.add_metric([namespace, phase], count)
        yield rentals
        yield core.GaugeMetricFamily(
            "rental_pending_work",
            "Rentals not yet at a resting phase (the autoscaling signal).",
            value=pending,
        )
        units = core.GaugeMetricFamily(
            "rental_purifier_available_units",
            "Units of a purifier free to rent.",
            labels=["namespace", "purifier"],
        )
        for body in self._purifiers():
            available = (body.get("status") or {}).get("available")
            if available is not None:
                units.add_metric([body["metadata"]["namespace"], body["metadata"]["name"]], float(available))
        yield units
        yield core.GaugeMetricFamily(
            "rental_scheduled_work",
            "Retries, polls and deferred payments waiting in the scheduler.",
            value=self._scheduled(),
        )


_registered: list[_StateCollector] = []


def register_state_collector(
    rentals: Callable[[], list[dict[str, Any]]],
    purifiers: Callable[[], list[dict[str, Any]]],
    scheduled: Callable[[], int],
) -> None:
    """Report the current state from these sources (replacing any earlier registration)."""
    for previous in _registered:
        prometheus_client.REGISTRY.unregister(previous)
    _registered.clear()
    collector = _StateCollector(rentals, purifiers, scheduled)
    prometheus_client.REGISTRY.register(collector)
    _registered.append(collector)


def serve(port: int, address: str) -> None:
    BREAKER.set(0)
    prometheus_client.start_http_server(port, addr=address)
