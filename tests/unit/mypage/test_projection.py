"""mypage.projection: watch events in, a customer's rentals out; newer wins, deletions stick."""

from __future__ import annotations

import copy
import datetime
import gc
import logging
import re
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import prometheus_client
import pytest

from rental_operator.mypage import projection

RentalFactory = Callable[..., dict[str, Any]]
PurifierFactory = Callable[..., dict[str, Any]]


def _seconds(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text).timestamp())


def _ready(*objects: dict[str, Any]) -> projection.Projection:
    view = projection.Projection()
    for obj in objects:
        view.apply(obj["kind"], None, obj)
    view.mark_ready()
    return view


def test_a_rental_shows_every_field_the_page_needs(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    view = _ready(purifier_body(), rental_body())
    [rental] = view.rentals_of("cust-1")
    assert rental.namespace == "shop"
    assert rental.name == "r1"
    assert rental.purifier == "aqua-300"
    assert rental.model == "AquaPure 300"
    assert rental.phase == "Confirmed"
    assert rental.message == "paid; delivery started"
    assert (rental.payment_phase, rental.amount, rental.currency) == ("Approved", 360_000, "KRW")
    assert (rental.delivery_phase, rental.tracking_number) == ("Delivered", "TRK-1")
    assert [(h.seq, h.kind, h.phase, h.message) for h in rental.history] == [
        (1, "Rental", "Pending", "application received"),
        (2, "Rental", "AwaitingPayment", "a unit is reserved; taking payment"),
        (3, "Rental", "Confirmed", "paid; delivery started"),
        (4, "Delivery", "Shipping", "delivery shipping"),
        (5, "Delivery", "Delivered", "delivery delivered"),
    ]
    assert rental.history[0].at == _seconds("2026-11-01T09:00:00Z")
    # updatedAt is the newest history entry.
    assert rental.updated_at == _seconds("2026-11-01T10:30:00Z")


def test_a_rental_without_status_is_pending_and_dated_by_its_creation(rental_body: RentalFactory) -> None:
    view = _ready(rental_body(phase=None, created="2026-11-02T00:00:00Z"))
    [rental] = view.rentals_of("cust-1")
    assert rental.phase == projection.DEFAULT_PHASE == "Pending"
    assert rental.payment_phase is None and rental.amount is None
    assert rental.delivery_phase is None and rental.tracking_number is None
    assert rental.history == ()
    assert rental.updated_at == _seconds("2026-11-02T00:00:00Z")


def test_unknown_customer_has_no_rentals(rental_body: RentalFactory) -> None:
    assert _ready(rental_body()).rentals_of("nobody") == []


def test_customers_see_only_their_own_rentals_across_namespaces(rental_body: RentalFactory) -> None:
    view = _ready(
        rental_body("a", customer="c1"),
        rental_body("b", customer="c2"),
        rental_body("a", customer="c1", namespace="other"),
    )
    assert sorted((r.namespace, r.name) for r in view.rentals_of("c1")) == [("other", "a"), ("shop", "a")]
    assert [(r.namespace, r.name) for r in view.rentals_of("c2")] == [("shop", "b")]
    assert len(view) == 3
    assert view.customers == 2


def test_newest_change_comes_first(rental_body: RentalFactory) -> None:
    view = _ready(rental_body("old", history=2), rental_body("new", history=5))
    assert [r.name for r in view.rentals_of("cust-1")] == ["new", "old"]


def test_a_newer_version_replaces_and_an_older_one_is_ignored(rental_body: RentalFactory) -> None:
    view = _ready(rental_body(version=10, phase="AwaitingPayment", history=2))
    view.apply("Rental", "MODIFIED", rental_body(version=12, phase="Confirmed"))
    view.apply("Rental", "MODIFIED", rental_body(version=11, phase="Cancelling"))  # late, stale
    [rental] = view.rentals_of("cust-1")
    assert rental.phase == "Confirmed"
    assert len(view) == 1


def test_deletion_removes_the_rental(rental_body: RentalFactory) -> None:
    view = _ready(rental_body(version=10))
    view.apply("Rental", "DELETED", rental_body(version=13))
    assert view.rentals_of("cust-1") == []
    assert len(view) == 0
    assert view.customers == 0


def test_a_stale_deletion_does_not_remove_a_newer_rental(rental_body: RentalFactory) -> None:
    # A rental deleted and created again under the same name: the old deletion must not drop the new.
    view = _ready(rental_body(version=20))
    view.apply("Rental", "DELETED", rental_body(version=15))
    assert len(view.rentals_of("cust-1")) == 1


def test_a_deletion_seen_while_loading_keeps_the_older_listing_from_reviving_it(
    rental_body: RentalFactory,
) -> None:
    view = projection.Projection()
    view.apply("Rental", "DELETED", rental_body(version=30))  # Kopf's event, before the listing lands
    view.replace("Rental", None, [([rental_body(version=25)], "29")])
    view.mark_ready()
    assert view.rentals_of("cust-1") == []


def test_a_changed_customer_moves_the_rental(rental_body: RentalFactory) -> None:
    view = _ready(rental_body(customer="c1", version=1))
    view.apply("Rental", "MODIFIED", rental_body(customer="c2", version=2))
    assert view.rentals_of("c1") == []
    assert [r.name for r in view.rentals_of("c2")] == ["r1"]
    assert len(view) == 1


def test_a_listing_replaces_what_it_covers_but_keeps_newer_events(rental_body: RentalFactory) -> None:
    view = _ready(
        rental_body("gone", version=5),
        rental_body("kept", version=6),
        rental_body("elsewhere", namespace="other", version=7),
        rental_body("created-after-the-list", version=50),
    )
    assert view.replace("Rental", "shop", [([rental_body("kept", version=6)], "40")]) == "40"
    names = sorted((r.namespace, r.name) for r in view.rentals_of("cust-1"))
    assert names == [("other", "elsewhere"), ("shop", "created-after-the-list"), ("shop", "kept")]


def test_the_model_name_follows_the_purifier(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    view = _ready(rental_body())
    assert view.rentals_of("cust-1")[0].model is None  # purifier not seen yet: still shown
    view.apply("Purifier", "ADDED", purifier_body(version=5))
    view.apply("Purifier", "MODIFIED", purifier_body(model="AquaPure 300 (2027)", version=6))
    assert view.rentals_of("cust-1")[0].model == "AquaPure 300 (2027)"
    view.apply("Purifier", "DELETED", purifier_body(version=7))
    assert view.rentals_of("cust-1")[0].model is None


def test_a_purifier_listing_drops_what_is_gone(
    rental_body: RentalFactory, purifier_body: PurifierFactory
) -> None:
    view = projection.Projection()
    view.replace("Purifier", None, [([purifier_body("a")], "10"), ([purifier_body("b")], "10")])
    view.replace("Purifier", None, [([purifier_body("a")], "20")])
    view.apply("Rental", None, rental_body(purifier="b"))
    view.mark_ready()
    assert view.rentals_of("cust-1")[0].model is None


def test_objects_without_customer_or_purifier_are_skipped(rental_body: RentalFactory) -> None:
    broken = rental_body()
    del broken["spec"]["customer"]
    view = _ready(broken)
    assert len(view) == 0


def _out_of_range(body: dict[str, Any], field: str, value: int) -> dict[str, Any]:
    body = copy.deepcopy(body)
    if field == "seq":
        body["status"]["history"][2]["seq"] = value
    elif field == "amount":
        body["status"]["payment"]["amount"] = value
    else:
        body["metadata"]["resourceVersion"] = str(value)
    return body


def _skipped(reason: str = "out_of_range") -> float:
    labels = {"kind": "Rental", "reason": reason}
    return prometheus_client.REGISTRY.get_sample_value("rental_mypage_skipped_objects_total", labels) or 0.0


# Numbers the schema admits (seq and amount are only `>= 0`) that the projection cannot keep.
OUT_OF_RANGE = [
    ("seq", 2**40, "status.history[2].seq"),
    ("seq", 2**32, "status.history[2].seq"),
    ("seq", -1, "status.history[2].seq"),
    ("amount", 2**62, "status.payment.amount"),
    ("amount", -5, "status.payment.amount"),
    ("resourceVersion", 2**64, "metadata.resourceVersion"),
]


@pytest.mark.parametrize(("field", "value", "named"), OUT_OF_RANGE)
def test_an_out_of_range_number_skips_that_rental_only(
    rental_body: RentalFactory, caplog: pytest.LogCaptureFixture, field: str, value: int, named: str
) -> None:
    before = _skipped()
    bad = _out_of_range(rental_body("bad", customer="cust-2"), field, value)
    with caplog.at_level(logging.WARNING, logger="rental_operator.mypage.projection"):
        listed = projection.Projection()
        listed.replace("Rental", None, [([rental_body("a"), bad, rental_body("b")], "100")])
        listed.mark_ready()
    assert sorted(rental.name for rental in listed.rentals_of("cust-1")) == ["a", "b"]
    assert listed.rentals_of("cust-2") == []
    assert f"Rental shop/bad: {named} is {value}, out of range" in caplog.text
    assert _skipped() == before + 1


def test_a_rental_whose_new_version_is_out_of_range_is_no_longer_shown(rental_body: RentalFactory) -> None:
    view = _ready(rental_body("r1", version=10))
    assert (
        view.apply("Rental", "MODIFIED", _out_of_range(rental_body("r1", version=11), "seq", 2**40)) is False
    )
    assert view.rentals_of("cust-1") == []
    assert len(view) == 0
    # The next readable version is shown again.
    assert view.apply("Rental", "MODIFIED", rental_body("r1", version=12)) is True
    assert [rental.name for rental in view.rentals_of("cust-1")] == ["r1"]


def test_largest_numbers_that_fit_are_kept(rental_body: RentalFactory) -> None:
    body = _out_of_range(_out_of_range(rental_body(), "seq", 2**32 - 1), "amount", 2**53 - 1)
    [rental] = _ready(_out_of_range(body, "resourceVersion", 2**63 - 1)).rentals_of("cust-1")
    assert rental.history[2].seq == 2**32 - 1
    assert rental.amount == 2**53 - 1


@pytest.mark.parametrize(
    "broken",
    [
        {"kind": "Rental", "metadata": {"name": "no-namespace"}},
        {"kind": "Rental", "metadata": {"namespace": "shop", "name": "x"}, "spec": ["not", "a", "map"]},
        {"status": {"history": 5}},
        {"status": {"payment": "approved"}},
    ],
)
def test_a_malformed_object_is_skipped_not_raised(rental_body: RentalFactory, broken: dict[str, Any]) -> None:
    if "metadata" not in broken:
        broken = {**rental_body("x", customer="cust-1"), **broken}
    before = _skipped("malformed")
    view = projection.Projection()
    view.replace("Rental", None, [([broken, rental_body("a")], "100")])
    assert [rental.name for rental in view.rentals_of("cust-1")] == ["a"]
    assert _skipped("malformed") == before + 1


def test_unreadable_timestamps_show_as_unknown(rental_body: RentalFactory) -> None:
    body = rental_body(history=1, created="yesterday")
    body["status"]["history"][0]["at"] = "not a time"
    [rental] = _ready(body).rentals_of("cust-1")
    assert rental.history[0].at == 0
    assert rental.updated_at == 0


def test_ready_only_once_marked(rental_body: RentalFactory) -> None:
    view = projection.Projection()
    view.apply("Rental", None, rental_body())
    assert not view.ready
    assert not view.wait_ready(0)
    view.mark_ready()
    assert view.ready


def test_as_of_is_now_while_live_and_frozen_while_stale() -> None:
    now = [1000.0]
    view = projection.Projection(clock=lambda: now[0])
    assert view.as_of() == 1000.0
    view.set_stale("Rental/*")
    now[0] = 1010.0
    view.set_stale("Purifier/*")
    now[0] = 1050.0
    assert view.as_of() == 1000.0  # the oldest outage bounds what we know
    view.set_live("Rental/*")
    assert view.as_of() == 1010.0
    view.set_live("Purifier/*")
    assert view.as_of() == 1050.0


def test_readers_see_consistent_tuples_while_a_writer_churns(rental_body: RentalFactory) -> None:
    view = _ready(*(rental_body(f"r{i}", version=i + 1) for i in range(5)))
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        version = 100
        while not stop.is_set():
            version += 1
            view.apply("Rental", "MODIFIED", rental_body("r0", version=version, phase="Confirmed"))
            view.apply("Rental", "ADDED", rental_body("extra", version=version))
            view.apply("Rental", "DELETED", rental_body("extra", version=version))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(2000):
            names = [r.name for r in view.rentals_of("cust-1")]
            if not {"r0", "r1", "r2", "r3", "r4"} <= set(names):
                errors.append(AssertionError(names))
    finally:
        stop.set()
        writer.join()
    assert errors == []


def test_memory_per_rental_stays_small(rental_body: RentalFactory, billing_body: Callable[..., Any]) -> None:
    # The guard behind the 50 MB per 100,000 rentals target (bench/mypage.py measures the real figure),
    # for rentals with their contract and two monthly receipts.
    count = 20_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        view = projection.Projection()
        for index in range(count):
            view.apply(
                "Rental",
                None,
                rental_body(
                    f"rental-{index:06d}",
                    customer=f"customer-{index % 4000:05d}",
                    purifier=f"model-{index % 10}",
                    version=index + 1,
                    tracking=f"TRK{index:09d}",
                    billing=billing_body(),
                    receipts=2,
                ),
            )
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(view) == count
    assert used / count < 500, f"{used / count:.0f} bytes per rental"


def test_records_cost_the_garbage_collector_nothing(rental_body: RentalFactory) -> None:
    # Full collections walk every tracked object: 100,000 tracked records made each one a long pause.
    view = projection.Projection()
    gc.collect()
    before = len(gc.get_objects())
    for index in range(5000):
        view.apply("Rental", None, rental_body(f"r{index}", customer=f"c{index % 1000}", version=index + 1))
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    assert len(view) == 5000


# --- the monthly contract ----------------------------------------------------------------------------------
BillingFactory = Callable[..., dict[str, Any]]


def test_a_contract_in_force_shows_its_terms_account_and_receipts(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    [rental] = _ready(rental_body(billing=billing_body(), receipts=2)).rentals_of("cust-1")
    assert rental.billing == projection.Billing(
        monthly_fee=30_000,
        currency="KRW",
        mandatory_months=12,
        early_termination_percent=10,
        periods_total=36,
        periods_paid=3,
        paid_amount=90_000,
        next_charge_at=_seconds("2027-02-01T09:00:03+00:00"),
        term_ends_at=_seconds("2029-11-01T09:00:03+00:00"),
        withdrawal_ends_at=_seconds("2026-11-15T10:30:00+00:00"),
        past_due=None,
    )
    assert rental.charges == (
        projection.Charge(2, 30_000, _seconds("2026-12-01T09:00:05+00:00")),
        projection.Charge(3, 30_000, _seconds("2027-01-01T09:00:04+00:00")),
    )
    # The receipts stay in the history too, as the operator wrote them.
    assert [(h.seq, h.kind, h.phase) for h in rental.history[-2:]] == [
        (6, "Billing", "Charged"),
        (7, "Billing", "Charged"),
    ]
    assert rental.updated_at == _seconds("2027-01-01T09:00:04+00:00")


def test_a_past_due_contract_shows_the_declined_charge(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    late = {
        "period": 4,
        "since": "2027-02-01T09:00:05Z",
        "attempts": 2,
        "nextAttemptAt": "2027-02-04T09:00:03Z",
    }
    body = rental_body(phase="PastDue", billing=billing_body(pastDue=late))
    [rental] = _ready(body).rentals_of("cust-1")
    assert rental.billing is not None
    assert rental.billing.past_due == projection.PastDue(
        4, _seconds("2027-02-01T09:00:05+00:00"), 2, _seconds("2027-02-04T09:00:03+00:00")
    )
    exhausted = rental_body(phase="PastDue", billing=billing_body(pastDue={**late, "nextAttemptAt": None}))
    [rental] = _ready(exhausted).rentals_of("cust-1")
    assert rental.billing is not None and rental.billing.past_due is not None
    assert rental.billing.past_due.next_attempt_at is None


def test_a_rental_without_a_contract_has_none(rental_body: RentalFactory) -> None:
    [rental] = _ready(rental_body(receipts=0)).rentals_of("cust-1")
    assert rental.billing is None
    assert rental.charges == ()
    assert projection.cancellation(rental, 0) is None


def test_absent_dates_and_counts_read_as_absent_and_zero(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    # Just applied: the terms are locked, nothing is paid or scheduled yet.
    fresh = billing_body(
        periodsPaid=None, paidAmount=None, nextChargeAt=None, termEndsAt=None, withdrawalEndsAt=None
    )
    [rental] = _ready(rental_body(phase="AwaitingPayment", billing=fresh)).rentals_of("cust-1")
    assert rental.billing is not None
    assert (rental.billing.periods_paid, rental.billing.paid_amount) == (0, 0)
    assert rental.billing.next_charge_at is rental.billing.term_ends_at is rental.billing.withdrawal_ends_at
    assert rental.billing.next_charge_at is None


def test_a_receipt_without_period_or_amount_shows_them_as_unknown(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    body = rental_body(billing=billing_body(), receipts=2)
    del body["status"]["history"][5]["period"], body["status"]["history"][6]["amount"]
    [rental] = _ready(body).rentals_of("cust-1")
    assert [(charge.period, charge.amount) for charge in rental.charges] == [(None, 30_000), (3, None)]


def test_a_contract_without_a_fee_is_shown_as_none(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    [rental] = _ready(rental_body(billing=billing_body(monthlyFee=None))).rentals_of("cust-1")
    assert rental.billing is None


DAY = 86400
WITHDRAWAL_ENDS = _seconds("2026-11-15T10:30:00+00:00")


@pytest.mark.parametrize(
    ("phase", "changes", "now", "expected"),
    [
        # Within the withdrawal window: everything paid comes back.
        ("Confirmed", {}, WITHDRAWAL_ENDS - 1, projection.Cancellation("Withdrawal", 90_000, 0)),
        # Not delivered yet: no window has started, a cancellation is a withdrawal.
        (
            "Confirmed",
            {"withdrawalEndsAt": None, "periodsPaid": 1, "paidAmount": 30_000},
            WITHDRAWAL_ENDS + 100 * DAY,
            projection.Cancellation("Withdrawal", 30_000, 0),
        ),
        # The window's end itself is past it; inside the mandatory period the fee is 10% of the
        # 9 unpaid mandatory months: 30,000 x 9 x 10% = 27,000.
        ("Confirmed", {}, WITHDRAWAL_ENDS, projection.Cancellation("Termination", 0, 27_000)),
        ("PastDue", {}, WITHDRAWAL_ENDS + 80 * DAY, projection.Cancellation("Termination", 0, 27_000)),
        # Rounded down to a whole minor unit: 999 x 11 x 7% = 769.23.
        (
            "Confirmed",
            {"monthlyFee": 999, "periodsPaid": 1, "earlyTerminationPercent": 7},
            WITHDRAWAL_ENDS + DAY,
            projection.Cancellation("Termination", 0, 769),
        ),
        # After the mandatory period: nothing back, nothing owed.
        (
            "Confirmed",
            {"periodsPaid": 12, "paidAmount": 360_000},
            WITHDRAWAL_ENDS + 330 * DAY,
            projection.Cancellation("Termination", 0, 0),
        ),
        (
            "Confirmed",
            {"mandatoryMonths": 0},
            WITHDRAWAL_ENDS + DAY,
            projection.Cancellation("Termination", 0, 0),
        ),
        # Not in force: nothing to preview.
        ("Completed", {"periodsPaid": 36}, WITHDRAWAL_ENDS + DAY, None),
        ("Cancelled", {}, WITHDRAWAL_ENDS - 1, None),
        ("Cancelling", {}, WITHDRAWAL_ENDS - 1, None),
        ("AwaitingPayment", {"periodsPaid": 0, "paidAmount": 0}, WITHDRAWAL_ENDS - 1, None),
    ],
)
def test_the_cancellation_preview_follows_the_window_and_the_mandatory_period(
    rental_body: RentalFactory,
    billing_body: BillingFactory,
    *,
    phase: str,
    changes: dict[str, Any],
    now: int,
    expected: projection.Cancellation | None,
) -> None:
    [rental] = _ready(rental_body(phase=phase, billing=billing_body(**changes))).rentals_of("cust-1")
    assert projection.cancellation(rental, now) == expected


def _hostile(body: dict[str, Any], path: str, value: int) -> dict[str, Any]:
    """`body` with the status field at dotted `path` (history entries by index) set to `value`."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body["status"]
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return body


# Numbers of the contract the projection cannot keep, named as the warning names them.
CONTRACT_OUT_OF_RANGE = [
    ("billing.periodsPaid", 10**12),
    ("billing.periodsPaid", -1),
    ("billing.periodsTotal", 61),
    ("billing.mandatoryMonths", 61),
    ("billing.earlyTerminationPercent", 101),
    ("billing.monthlyFee", 2**53),
    ("billing.paidAmount", 2**62),
    ("billing.pastDue.period", 61),
    ("billing.pastDue.attempts", 101),
    ("history.5.amount", 2**62),
    ("history.6.period", 10**12),
]


@pytest.mark.parametrize(("path", "value"), CONTRACT_OUT_OF_RANGE)
def test_an_out_of_range_contract_number_skips_that_rental_only(
    rental_body: RentalFactory,
    billing_body: BillingFactory,
    caplog: pytest.LogCaptureFixture,
    path: str,
    value: int,
) -> None:
    late = {"period": 4, "since": "2027-02-01T09:00:05Z", "attempts": 2}
    good = rental_body(
        "bad", customer="cust-2", phase="PastDue", billing=billing_body(pastDue=late), receipts=2
    )
    before = _skipped()
    with caplog.at_level(logging.WARNING, logger="rental_operator.mypage.projection"):
        view = projection.Projection()
        view.replace("Rental", None, [([rental_body("a"), _hostile(good, path, value)], "100")])
        view.mark_ready()
    assert [rental.name for rental in view.rentals_of("cust-1")] == ["a"]
    assert view.rentals_of("cust-2") == []
    named = "status." + re.sub(r"\.(\d+)\.", r"[\1].", path)
    assert f"Rental shop/bad: {named} is {value}, out of range" in caplog.text
    assert _skipped() == before + 1


def test_the_largest_contract_numbers_that_fit_are_kept(
    rental_body: RentalFactory, billing_body: BillingFactory
) -> None:
    largest = billing_body(
        monthlyFee=2**53 - 1,
        paidAmount=2**53 - 1,
        periodsTotal=60,
        periodsPaid=60,
        mandatoryMonths=60,
        earlyTerminationPercent=100,
        pastDue={"period": 60, "since": "2106-02-07T06:28:15Z", "attempts": 100},
    )
    body = _hostile(rental_body(billing=largest, receipts=1), "history.5.amount", 2**53 - 1)
    [rental] = _ready(body).rentals_of("cust-1")
    assert rental.billing is not None and rental.billing.past_due is not None
    assert (rental.billing.monthly_fee, rental.billing.paid_amount) == (2**53 - 1, 2**53 - 1)
    assert (rental.billing.periods_total, rental.billing.periods_paid, rental.billing.mandatory_months) == (
        60,
        60,
        60,
    )
    assert rental.billing.early_termination_percent == 100
    assert rental.billing.past_due == projection.PastDue(60, 2**32 - 1, 100, None)
    assert rental.charges[0].amount == 2**53 - 1


@pytest.mark.parametrize("billing", ["monthly", ["a"], {"monthlyFee": 1, "pastDue": "soon"}])
def test_a_malformed_contract_is_skipped_not_raised(rental_body: RentalFactory, billing: Any) -> None:
    before = _skipped("malformed")
    view = projection.Projection()
    view.replace("Rental", None, [([rental_body("x", billing=billing), rental_body("a")], "100")])
    assert [rental.name for rental in view.rentals_of("cust-1")] == ["a"]
    assert _skipped("malformed") == before + 1


@pytest.mark.parametrize(
    "seqs",
    [
        [1, 2, 3, 4, 5],  # as the operator numbers them
        [41, 42, 43, 44, 45],  # the oldest cut off: consecutive from 41
        [1, 2, 4, 5, 6],  # a gap
        [5, 4, 3, 2, 1],  # out of order
        [2**32 - 5, 2**32 - 4, 2**32 - 3, 2**32 - 2, 2**32 - 1],  # consecutive up to the largest seq kept
    ],
)
def test_history_seqs_come_back_as_written(rental_body: RentalFactory, seqs: list[int]) -> None:
    # Consecutive seqs are packed as the first and a count; any others, one by one. Both read back alike.
    body = rental_body()
    for entry, seq in zip(body["status"]["history"], seqs, strict=True):
        entry["seq"] = seq
    [rental] = _ready(body).rentals_of("cust-1")
    assert [h.seq for h in rental.history] == seqs
    assert [h.phase for h in rental.history] == [e["phase"] for e in body["status"]["history"]]
    assert [h.at for h in rental.history] == [_seconds(e["at"]) for e in body["status"]["history"]]
    assert [h.message for h in rental.history] == [e["message"] for e in body["status"]["history"]]


def test_consecutive_seqs_take_four_bytes_less_per_entry(rental_body: RentalFactory) -> None:
    consecutive, gapped = rental_body("r1"), rental_body("r2")
    gapped["status"]["history"][-1]["seq"] += 1
    view = _ready(consecutive, gapped)
    # The packed numbers themselves: what the bench's bytes per rental come from.
    packed = {record[projection._NAME]: record[projection._PACKED] for record in view._by_customer["cust-1"]}
    entries = len(consecutive["status"]["history"])
    assert len(packed["r2"]) - len(packed["r1"]) == 4 * entries - 4
