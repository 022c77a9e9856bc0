"""metrics: the billing gauges computed at scrape time (CONTRACT §5) and the charge counter's kinds."""

from __future__ import annotations

import datetime
from typing import Any

import prometheus_client
import pytest

from rental_operator import metrics

NOW = datetime.datetime(2027, 3, 1, 9, 0, tzinfo=datetime.UTC)


def _rental(name: str, phase: str, billing: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "delivery": {"name": name, "phase": "Delivered"}}
    if billing is not None:
        status["billing"] = {"currency": "KRW", "periodsTotal": 36, **billing}
    return {"metadata": {"name": name, "namespace": "shop"}, "status": status}


def _gauges(*rentals: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = prometheus_client.CollectorRegistry()
    summaries = [metrics.rental_summary(body) for body in rentals]
    registry.register(metrics.StateCollector(lambda: summaries, list, lambda: 0, clock=NOW.timestamp))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_recurring_revenue_counts_the_rentals_in_force_by_currency() -> None:
    gauges = _gauges(
        _rental("a", "Confirmed", {"monthlyFee": 33_000}),
        _rental(
            "b",
            "PastDue",
            {"monthlyFee": 27_000, "pastDue": {"period": 3, "since": "2027-02-28T09:00:00Z", "attempts": 1}},
        ),
        _rental("c", "Completed", {"monthlyFee": 50_000}),
        _rental("d", "Cancelled", {"monthlyFee": 50_000}),
        _rental("e", "Confirmed", {"monthlyFee": 1_999, "currency": "USD"}),
        _rental("f", "AwaitingPayment", {"monthlyFee": 70_000}),
    )
    assert gauges["rental_monthly_recurring_revenue", (("currency", "KRW"),)] == 60_000
    assert gauges["rental_monthly_recurring_revenue", (("currency", "USD"),)] == 1_999
    assert gauges["rental_past_due", ()] == 1


def test_the_billing_lag_is_the_oldest_owed_charge_behind_its_time() -> None:
    hour = datetime.timedelta(hours=1)
    gauges = _gauges(
        _rental("a", "Confirmed", {"monthlyFee": 1, "nextChargeAt": (NOW - 2 * hour).isoformat()}),
        _rental("b", "Confirmed", {"monthlyFee": 1, "nextChargeAt": (NOW + 9 * hour).isoformat()}),
        # Past due: owed from its next attempt, not from the due date (dunning waits on purpose).
        _rental(
            "c",
            "PastDue",
            {
                "monthlyFee": 1,
                "nextChargeAt": (NOW - 50 * hour).isoformat(),
                "pastDue": {
                    "period": 2,
                    "since": (NOW - 50 * hour).isoformat(),
                    "attempts": 1,
                    "nextAttemptAt": (NOW + hour).isoformat(),
                },
            },
        ),
    )
    assert gauges["rental_billing_lag_seconds", ()] == pytest.approx(7200)


def test_no_lag_when_nothing_is_owed() -> None:
    assert _gauges(_rental("a", "Confirmed", {"monthlyFee": 1}))["rental_billing_lag_seconds", ()] == 0


@pytest.mark.parametrize(
    ("period", "attempt", "kind"),
    [(1, 1, "first"), (2, 1, "recurring"), (2, 3, "retry"), (1, 2, "retry"), (None, 1, "fee")],
)
def test_charge_kinds(period: int | None, attempt: int, kind: str) -> None:
    assert metrics.charge_kind(period, attempt) == kind
