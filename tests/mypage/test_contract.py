"""MyPage on the real control plane shows a rental's monthly contract (issue 14, item 7).

The status is written through the status subresource, as the operator writes it, so the API
server's schema checks it; no operator runs, so nothing rewrites it. MyPage reads it through its
own list and watch and answers from memory.
"""

from __future__ import annotations

from typing import Any

from rental_devenv import testkit

from .conftest import MyPageFactory

# Far in the future and far in the past, so the preview does not depend on today's date.
OPEN = "2099-01-01T00:00:00Z"
CLOSED = "2020-01-15T00:00:00Z"


def _billing(withdrawal_ends_at: str, **changes: Any) -> dict[str, Any]:
    return {
        "monthlyFee": 30_000,
        "currency": "KRW",
        "mandatoryMonths": 12,
        "earlyTerminationPercent": 10,
        "periodsTotal": 36,
        "periodsPaid": 3,
        "paidAmount": 90_000,
        "anchor": "2020-01-01T09:00:00Z",
        "nextChargeAt": "2020-04-01T09:00:00Z",
        "termEndsAt": "2023-01-01T09:00:00Z",
        "withdrawalEndsAt": withdrawal_ends_at,
        **changes,
    }


def _status(phase: str, billing: dict[str, Any]) -> dict[str, Any]:
    return {
        "phase": phase,
        "message": "paid; delivery started",
        "payment": {"name": "p3", "phase": "Approved", "amount": 30_000, "currency": "KRW"},
        "billing": billing,
        "history": [
            {"seq": 1, "kind": "Rental", "phase": "Confirmed", "at": "2020-01-01T09:00:00Z"},
            {
                "seq": 2,
                "kind": "Billing",
                "phase": "Charged",
                "at": "2020-02-01T09:00:02Z",
                "message": "period 2 of 36 paid",
                "period": 2,
                "amount": 30_000,
            },
            {
                "seq": 3,
                "kind": "Billing",
                "phase": "Charged",
                "at": "2020-03-01T09:00:02Z",
                "message": "period 3 of 36 paid",
                "period": 3,
                "amount": 30_000,
            },
        ],
    }


def _write_status(cluster: testkit.Cluster, name: str, status: dict[str, Any]) -> None:
    cluster.custom.patch_namespaced_custom_object_status(
        "rental.purifier.io",
        "v1alpha1",
        cluster.namespace,
        "rentals",
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def test_mypage_shows_the_contract_the_status_carries(
    cluster: testkit.Cluster, mypage_factory: MyPageFactory
) -> None:
    cluster.create(testkit.purifier("aqua", stock=3))
    for name in ("kim-new", "kim-late", "kim-behind"):
        cluster.create(testkit.rental(name, "aqua", customer="kim", months=36))
    _write_status(cluster, "kim-new", _status("Confirmed", _billing(OPEN)))
    _write_status(cluster, "kim-late", _status("Confirmed", _billing(CLOSED)))
    past_due = {"period": 4, "since": "2020-04-01T09:00:05Z", "attempts": 2, "nextAttemptAt": OPEN}
    _write_status(cluster, "kim-behind", _status("PastDue", _billing(CLOSED, pastDue=past_due)))
    mypage = mypage_factory().client

    rentals = {rental["name"]: rental for rental in mypage.rentals("kim")["rentals"]}
    assert set(rentals) == {"kim-new", "kim-late", "kim-behind"}
    new = rentals["kim-new"]
    assert new["billing"] == {
        "monthlyFee": 30_000,
        "currency": "KRW",
        "mandatoryMonths": 12,
        "earlyTerminationPercent": 10,
        "periodsPaid": 3,
        "periodsTotal": 36,
        "paidAmount": 90_000,
        "nextChargeAt": "2020-04-01T09:00:00Z",
        "termEndsAt": "2023-01-01T09:00:00Z",
        "withdrawalEndsAt": OPEN,
        "pastDue": None,
    }
    assert new["charges"] == [
        {"period": 2, "amount": 30_000, "at": "2020-02-01T09:00:02Z"},
        {"period": 3, "amount": 30_000, "at": "2020-03-01T09:00:02Z"},
    ]
    # Within the withdrawal window everything comes back; after it, 10% of 9 unpaid mandatory months.
    assert new["cancellation"] == {"ending": "Withdrawal", "refund": 90_000, "fee": 0}
    assert rentals["kim-late"]["cancellation"] == {"ending": "Termination", "refund": 0, "fee": 27_000}
    behind = rentals["kim-behind"]
    assert behind["phase"] == "PastDue"
    assert behind["billing"]["pastDue"] == past_due
    assert new["payment"] == {"phase": "Approved", "amount": 30_000, "currency": "KRW"}  # kept as before

    page = mypage.page("kim")
    assert "3 of 36 months paid" in page
    assert "If you cancel now: full refund of 90,000 KRW" in page
    assert "If you cancel now: an early-termination fee of 27,000 KRW" in page
    assert "Payment overdue: the charge for month 4 was declined" in page

    # A change through the watch: the contract completes; nothing is left to preview.
    # (A merge patch: null removes the field, as the operator's whole-status write leaves it out.)
    done = _billing(CLOSED, periodsPaid=36, paidAmount=1_080_000, nextChargeAt=None)
    _write_status(cluster, "kim-late", {**_status("Completed", done), "message": "the unit is yours"})

    def completed_rental() -> dict[str, Any] | None:
        rental = mypage.rental("kim", "kim-late")
        return rental if rental is not None and rental["phase"] == "Completed" else None

    completed = testkit.wait_for(completed_rental, timeout=30, what="the completed contract on MyPage")
    assert completed is not None
    assert completed["cancellation"] is None
    assert completed["billing"]["periodsPaid"] == 36
    assert completed["billing"]["nextChargeAt"] is None
