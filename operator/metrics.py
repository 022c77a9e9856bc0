"""Prometheus metrics of the operator (CONTRACT §5), served on RENTAL_METRICS_PORT at /metrics.

Counters and histograms are updated where things happen (a status write that changed a phase, a
payment request, a text message). Gauges that describe the current state of the business (rentals
per phase, pending work, units available) are computed at scrape time from the in-memory stores,
so they are exact, cost nothing between scrapes, and cannot drift from a missed decrement. Label
values are bounded (namespaces, phases, kinds, purifier names): never a rental or customer id.
`rental_pending_work` (rentals not at a resting phase) is the autoscaling signal.
Beyond CONTRACT §5: `rental_build_info{version}` (which release is running, for dashboards that span
an upgrade) and `rental_payment_breaker_transitions_total{to_state}` (a breaker that flaps between
scrapes shows here even when the state gauge looks steady).
Called by the controllers and wired up by `handlers.lifecycle`.
"""

from __future__ import annotations

import collections
import importlib.metadata
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import prometheus_client
from prometheus_client import core, registry

from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import rentals as rental_decisions

__all__ = [
    "BILLING_CHARGES",
    "BREAKER",
    "BREAKER_TRANSITIONS",
    "BUILD_INFO",
    "HANDLER_SECONDS",
    "NOTIFICATIONS",
    "PAYMENT_REQUESTS",
    "PAYMENT_SECONDS",
    "TRANSITIONS",
    "RentalSummary",
    "StateCollector",
    "charge_kind",
    "observe_breaker",
    "observe_charge",
    "observe_payment",
    "register_state_collector",
    "rental_summary",
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
BREAKER_TRANSITIONS = prometheus_client.Counter(
    "rental_payment_breaker_transitions",
    "Changes of the payment circuit breaker's state, by the state entered (closed, half-open, open).",
    ["to_state"],
)
BUILD_INFO = prometheus_client.Info("rental_build", "The release of the operator serving these metrics.")
BILLING_CHARGES = prometheus_client.Counter(
    "rental_billing_charges",
    "Charges answered by the payment system, by kind (first, recurring, retry, fee) and outcome "
    "(approved, declined, failed).",
    ["kind", "outcome"],
)
_BREAKER_VALUES = {"closed": 0, "half-open": 1, "open": 2}


def transition(kind: str, before: object, after: object) -> None:
    if before != after and after is not None:
        TRANSITIONS.labels(kind, str(before or "None"), str(after)).inc()


def observe_payment(operation: str, outcome: str, seconds: float) -> None:
    PAYMENT_REQUESTS.labels(operation, outcome).inc()
    if outcome != "breaker_open":
        PAYMENT_SECONDS.observe(seconds)


def observe_breaker(old: str, new: str) -> None:
    BREAKER.set(_BREAKER_VALUES.get(new, 0))
    if new != old and new in _BREAKER_VALUES:
        BREAKER_TRANSITIONS.labels(new).inc()


def charge_kind(period: int | None, attempt: int) -> str:
    """The kind of a charge for `rental_billing_charges_total`: first, recurring, retry or fee."""
    if period is None:
        return "fee"
    if attempt > 1:
        return "retry"
    return "first" if period == 1 else "recurring"


def observe_charge(period: int | None, attempt: int, outcome: str) -> None:
    BILLING_CHARGES.labels(charge_kind(period, attempt), outcome).inc()


_IN_FORCE = frozenset({api_rental.RentalPhase.CONFIRMED.value, api_rental.RentalPhase.PAST_DUE.value})


class RentalSummary(NamedTuple):
    """What the gauges need of one Rental, kept beside it in the store (no parsing per scrape)."""

    namespace: str
    phase: str
    pending: bool  # not at a resting phase, or being deleted: work is left
    # The contract, while in force: its currency and monthly fee (recurring revenue), and when the
    # oldest charge it owes was due (Unix seconds; None when nothing is due), for the billing lag.
    currency: str | None = None
    monthly_fee: int = 0
    owed_since: float | None = None


def rental_summary(body: dict[str, Any]) -> RentalSummary:
    raw = body.get("status") or {}
    status = api_rental.RentalStatus.model_validate(
        {key: raw[key] for key in ("phase", "delivery", "billing") if raw.get(key) is not None}
    )
    deleting = bool(body["metadata"].get("deletionTimestamp"))
    phase = str(status.phase or "Pending")
    contract = status.billing
    if contract is None or phase not in _IN_FORCE:
        return RentalSummary(
            body["metadata"]["namespace"], phase, deleting or not rental_decisions.is_resting(status)
        )
    # A past-due charge is owed from its next attempt (dunning waits on purpose); any other from its
    # due date.
    owed = contract.past_due.next_attempt_at if contract.past_due is not None else contract.next_charge_at
    return RentalSummary(
        body["metadata"]["namespace"],
        phase,
        deleting or not rental_decisions.is_resting(status),
        contract.currency,
        contract.monthly_fee,
        owed.timestamp() if owed is not None else None,
    )


class StateCollector(registry.Collector):
    """Gauges computed at scrape time from the stores the controllers keep anyway."""

    def __init__(
        self,
        rentals: Callable[[], list[RentalSummary]],
        purifiers: Callable[[], list[dict[str, Any]]],
        scheduled: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rentals, self._purifiers, self._scheduled = rentals, purifiers, scheduled
        self._clock = clock

    def collect(self) -> Iterator[core.Metric]:
        by_phase: collections.Counter[tuple[str, str]] = collections.Counter()
        revenue: collections.Counter[str] = collections.Counter()
        pending = past_due = 0
        oldest: float | None = None
        for summary in self._rentals():
            by_phase[summary.namespace, summary.phase] += 1
            pending += summary.pending
            if summary.currency is not None:
                revenue[summary.currency] += summary.monthly_fee
            past_due += summary.phase == api_rental.RentalPhase.PAST_DUE.value
            if summary.owed_since is not None and (oldest is None or summary.owed_since < oldest):
                oldest = summary.owed_since
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
            "rental_past_due", "Rentals in force whose monthly charge was declined.", value=past_due
        )
        mrr = core.GaugeMetricFamily(
            "rental_monthly_recurring_revenue",
            "Monthly fees of the rentals in force, in minor units, by currency.",
            labels=["currency"],
        )
        for currency, amount in sorted(revenue.items()):
            mrr.add_metric([currency], amount)
        yield mrr
        yield core.GaugeMetricFamily(
            "rental_billing_lag_seconds",
            "How far the oldest due, uncharged period (or dunning retry) is behind its time; 0 when none.",
            value=max(0.0, self._clock() - oldest) if oldest is not None else 0.0,
        )
        yield core.GaugeMetricFamily(
            "rental_scheduled_work",
            "Retries, polls and deferred payments waiting in the scheduler.",
            value=self._scheduled(),
        )


_registered: list[StateCollector] = []


def register_state_collector(
    rentals: Callable[[], list[RentalSummary]],
    purifiers: Callable[[], list[dict[str, Any]]],
    scheduled: Callable[[], int],
) -> None:
    """Report the current state from these sources (replacing any earlier registration)."""
    for previous in _registered:
        prometheus_client.REGISTRY.unregister(previous)
    _registered.clear()
    collector = StateCollector(rentals, purifiers, scheduled)
    prometheus_client.REGISTRY.register(collector)
    _registered.append(collector)


def serve(port: int, address: str) -> None:
    BREAKER.set(0)
    try:
        version = importlib.metadata.version("purifier-rental-operator")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree without install
        version = "unknown"
    BUILD_INFO.info({"version": version})
    prometheus_client.start_http_server(port, addr=address)
