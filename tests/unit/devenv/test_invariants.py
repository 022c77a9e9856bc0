"""The chaos runner's invariant checker: a consistent world passes, and each rule fires on its breach.

Every test starts from `_world()`, a hand-made namespace in which every promise holds (a confirmed
and delivered rental, a cancelled one refunded, one rejected out of stock, one deleted and
compensated), breaks exactly one thing, and expects exactly that rule to name exactly that object.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from rental_devenv import invariants

Rule = invariants.Rule
NS = "chaos"
FEE = 360  # one month


def _rental(
    name: str, phase: str, *, reserved: bool, delivery: str | None = None, history: list[str] | None = None
) -> dict[str, Any]:
    entries = [{"seq": i + 1, "kind": k, "phase": p} for i, (k, p) in enumerate(_split(history or []))]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "StockReserved", "status": "True" if reserved else "False"}],
        "history": entries,
        "notifiedSeq": len(entries),
    }
    if phase in ("Confirmed", "Cancelled"):
        status["payment"] = {
            "name": f"{name}-p1",
            "period": 1,
            "phase": "Approved" if phase == "Confirmed" else "Refunded",
            "amount": FEE,
            "currency": "KRW",
            "transactionId": f"pay-{name}",
        }
        status["billing"] = {
            "monthlyFee": FEE,
            "currency": "KRW",
            "periodsTotal": 12,
            "periodsPaid": 1,
            "paidAmount": FEE,
            "refundedAmount": FEE if phase == "Cancelled" else 0,
            **({"ending": "Withdrawal"} if phase == "Cancelled" else {}),
        }
    if delivery is not None:
        status["delivery"] = {"phase": delivery}
    return {
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {"purifier": "aqua", "months": 12},
        "status": status,
    }


def _split(history: list[str]) -> list[tuple[str, str]]:
    return [tuple(item.split(":")) if ":" in item else ("Rental", item) for item in history]


def _owned(kind: str, rental: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": rental,
            "namespace": NS,
            "ownerReferences": [{"kind": "Rental", "name": rental, "uid": f"uid-{rental}"}],
        },
        "kind": kind,
        "spec": {"rental": rental},
    }


def _payment(rental: str, period: int | None = 1, *, attempt: int = 1) -> dict[str, Any]:
    """The Payment of one period (None: the early-termination fee), as the operator names it."""
    payment = _owned("Payment", rental)
    payment["metadata"]["name"] = f"{rental}-p{period}" if period is not None else f"{rental}-fee"
    payment["spec"].update(amount=FEE, currency="KRW", attempt=attempt)
    if period is not None:
        payment["spec"]["period"] = period
    return payment


def _messages(rental: dict[str, Any]) -> list[dict[str, Any]]:
    name = rental["metadata"]["name"]
    return [{"reference": f"{NS}/{name}/{e['seq']}"} for e in rental["status"]["history"]]


def _world() -> invariants.Snapshot:
    confirmed = _rental(
        "r-ok",
        "Confirmed",
        reserved=True,
        delivery="Delivered",
        history=["Pending", "AwaitingPayment", "Confirmed", "Delivery:Shipping", "Delivery:Delivered"],
    )
    cancelled = _rental(
        "r-cancel",
        "Cancelled",
        reserved=False,
        delivery="Cancelled",
        history=["Pending", "AwaitingPayment", "Confirmed", "Delivery:Shipping", "Cancelling", "Cancelled"],
    )
    rejected = _rental("r-full", "Rejected", reserved=False, history=["Pending", "Rejected"])
    rentals = [confirmed, cancelled, rejected]
    return invariants.Snapshot(
        namespace=NS,
        rentals=rentals,
        payments=[_payment("r-ok"), _payment("r-cancel")],
        deliveries=[_owned("Delivery", "r-ok"), _owned("Delivery", "r-cancel")],
        purifiers=[
            {"metadata": {"name": "aqua"}, "spec": {"stock": 1}, "status": {"allocated": 1, "available": 0}}
        ],
        ledger={
            "payments": [
                {
                    "id": "pay-r-ok",
                    "reference": f"{NS}/r-ok",
                    "status": "approved",
                    "amount": FEE,
                    "currency": "KRW",
                },
                {"id": "pay-r-cancel", "reference": f"{NS}/r-cancel", "status": "refunded", "amount": FEE},
                {"id": "pay-r-gone", "reference": f"{NS}/r-gone", "status": "refunded", "amount": FEE},
                # Another namespace's records are not this snapshot's business.
                {"id": "pay-x", "reference": "other/r-ok", "status": "approved", "amount": 1},
            ],
            "shipments": [
                {"id": "s-ok", "reference": f"{NS}/r-ok", "status": "delivered"},
                {"id": "s-cancel", "reference": f"{NS}/r-cancel", "status": "cancelled"},
                {"id": "s-gone", "reference": f"{NS}/r-gone", "status": "returned"},
            ],
            "messages": [m for r in rentals for m in _messages(r)] + [{"reference": "other/r-ok/1"}],
        },
        applied=frozenset({"r-ok", "r-cancel", "r-full", "r-gone"}),
        deleted=frozenset({"r-gone"}),
    )


def _only(snapshot: invariants.Snapshot, rule: Rule, name: str) -> invariants.Violation:
    found = invariants.check(snapshot)
    assert [(v.rule, v.name) for v in found] == [(rule, name)], [str(v) for v in found]
    return found[0]


def _rentals(snapshot: invariants.Snapshot) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in snapshot.rentals}


def _ledger(snapshot: invariants.Snapshot, table: str) -> list[dict[str, Any]]:
    return snapshot.ledger[table]


@pytest.fixture
def world() -> invariants.Snapshot:
    return copy.deepcopy(_world())


def test_a_consistent_world_has_no_violations(world: invariants.Snapshot) -> None:
    assert invariants.check(world) == []
    assert invariants.unsettled(world) == []


def test_a_rental_still_working_is_not_at_rest(world: invariants.Snapshot) -> None:
    _rentals(world)["r-ok"]["status"]["delivery"]["phase"] = "Shipping"
    _ledger(world, "shipments")[0]["status"] = "shipping"
    violation = _only(world, Rule.AT_REST, "r-ok")
    assert "delivery Shipping" in violation.detail
    assert invariants.unsettled(world) == [violation]


def test_a_text_still_owed_is_not_at_rest(world: invariants.Snapshot) -> None:
    _rentals(world)["r-full"]["status"]["notifiedSeq"] = 1
    assert "texted through seq 1 of 2" in _only(world, Rule.AT_REST, "r-full").detail


def test_a_rental_in_a_middle_phase_is_not_at_rest(world: invariants.Snapshot) -> None:
    _rentals(world)["r-full"]["status"]["phase"] = "PaymentDeferred"
    assert "phase PaymentDeferred" in _only(world, Rule.AT_REST, "r-full").detail


def test_a_vanished_rental_is_lost(world: invariants.Snapshot) -> None:
    world = dataclasses.replace(world, applied=world.applied | {"r-vanished"})
    _only(world, Rule.LOST, "r-vanished")


def test_a_second_charge_is_a_double_charge(world: invariants.Snapshot) -> None:
    _ledger(world, "payments").append({"id": "pay-2", "reference": f"{NS}/r-cancel", "status": "refunded"})
    assert "2 charges taken for 1 period(s)" in _only(world, Rule.CHARGED_ONCE, "r-cancel").detail


def test_a_second_record_under_one_attempt_is_a_double_charge(world: invariants.Snapshot) -> None:
    # Declined, so no money moved; but attempt 1 has one key, and one key makes one record.
    _ledger(world, "payments").append({"id": "pay-2", "reference": f"{NS}/r-ok", "status": "declined"})
    assert "2 payment records for 1 attempt key(s)" in _only(world, Rule.CHARGED_ONCE, "r-ok").detail
    world.payments[0]["spec"]["attempt"] = 2  # a retry after a decline has a key of its own
    assert invariants.check(world) == []


def test_two_payments_for_one_period(world: invariants.Snapshot) -> None:
    world.payments.append({**_payment("r-ok"), "metadata": {**_payment("r-ok")["metadata"], "name": "x"}})
    assert "more than one Payment for periods [1]" in _only(world, Rule.CHARGED_ONCE, "r-ok").detail


def _second_month(world: invariants.Snapshot) -> None:
    """r-ok a month later: period 2 charged under its own Payment, period 1's pruned from the history."""
    rental = _rentals(world)["r-ok"]
    rental["status"]["billing"].update(periodsPaid=2, paidAmount=2 * FEE)
    rental["status"]["payment"].update(name="r-ok-p2", period=2, transactionId="pay-r-ok-2")
    world.payments[0] = _payment("r-ok", 2)
    _ledger(world, "payments").append(
        {
            "id": "pay-r-ok-2",
            "reference": f"{NS}/r-ok",
            "status": "approved",
            "amount": FEE,
            "currency": "KRW",
        }
    )


def test_one_charge_per_period_paid(world: invariants.Snapshot) -> None:
    _second_month(world)
    assert invariants.check(world) == []
    _ledger(world, "payments").append(
        {**_ledger(world, "payments")[-1], "id": "pay-r-ok-3", "status": "refunded"}
    )
    assert "3 charges taken for 2 period(s)" in _only(world, Rule.CHARGED_ONCE, "r-ok").detail


def test_a_period_paid_without_its_charge(world: invariants.Snapshot) -> None:
    _second_month(world)
    _ledger(world, "payments")[-1]["status"] = "declined"
    assert (
        "1 approved, unrefunded charges for 2 period(s)" in _only(world, Rule.CONFIRMED_PAID, "r-ok").detail
    )


def test_billing_must_match_the_money_held(world: invariants.Snapshot) -> None:
    _rentals(world)["r-ok"]["status"]["billing"]["paidAmount"] = 2 * FEE
    assert "the ledger holds 360" in _only(world, Rule.CONFIRMED_PAID, "r-ok").detail


def test_a_deleted_rental_charged_twice_in_one_period(world: invariants.Snapshot) -> None:
    _ledger(world, "payments").append({"id": "pay-2", "reference": f"{NS}/r-gone", "status": "declined"})
    assert "2 payment records" in _only(world, Rule.CHARGED_ONCE, "r-gone").detail
    # A run longer than a billing period may have charged a deleted rental once a month.
    assert invariants.check(dataclasses.replace(world, periods_due=2)) == []


def test_a_termination_keeps_the_paid_months_and_the_fee(world: invariants.Snapshot) -> None:
    rental = _rentals(world)["r-cancel"]
    rental["status"]["billing"].update(ending="Termination", refundedAmount=0, feeAmount=100)
    _ledger(world, "payments")[1]["status"] = "approved"
    world.payments.append(_payment("r-cancel", None))
    fee = {"id": "pay-fee", "reference": f"{NS}/r-cancel", "status": "approved", "amount": 100}
    _ledger(world, "payments").append(fee)
    assert invariants.check(world) == []
    fee["amount"] = 200
    assert "keeping 560" in _only(world, Rule.NETS_ZERO, "r-cancel").detail


def test_a_confirmed_rental_must_hold_its_charge(world: invariants.Snapshot) -> None:
    _ledger(world, "payments")[0]["status"] = "refunded"
    assert "0 approved" in _only(world, Rule.CONFIRMED_PAID, "r-ok").detail


def test_a_confirmed_rental_charged_another_amount(world: invariants.Snapshot) -> None:
    _ledger(world, "payments")[0]["amount"] = 999
    assert "the ledger charged 999" in _only(world, Rule.CONFIRMED_PAID, "r-ok").detail


def test_a_cancelled_rental_still_charged_does_not_net_to_zero(world: invariants.Snapshot) -> None:
    _ledger(world, "payments")[1]["status"] = "approved"
    assert "Cancelled, yet 360 stays charged" in _only(world, Rule.NETS_ZERO, "r-cancel").detail


def test_a_deleted_rental_still_charged_does_not_net_to_zero(world: invariants.Snapshot) -> None:
    _ledger(world, "payments")[2]["status"] = "approved"
    assert "deleted, yet 360 stays charged" in _only(world, Rule.NETS_ZERO, "r-gone").detail


def test_a_second_shipment(world: invariants.Snapshot) -> None:
    _ledger(world, "shipments").append({"id": "s-2", "reference": f"{NS}/r-ok", "status": "delivered"})
    _only(world, Rule.SHIPPED_ONCE, "r-ok")


def test_a_confirmed_rental_without_a_shipment(world: invariants.Snapshot) -> None:
    del _ledger(world, "shipments")[0]
    assert "no shipment" in _only(world, Rule.SHIPPED_ONCE, "r-ok").detail


def test_the_carrier_and_the_rental_disagree(world: invariants.Snapshot) -> None:
    _ledger(world, "shipments")[0]["status"] = "cancelled"
    assert "the carrier shows cancelled" in _only(world, Rule.SHIPPED_ONCE, "r-ok").detail


@pytest.mark.parametrize(("index", "name"), [(1, "r-cancel"), (2, "r-gone")])
def test_an_undone_rental_with_a_shipment_under_way(
    world: invariants.Snapshot, index: int, name: str
) -> None:
    _ledger(world, "shipments")[index]["status"] = "delivered"
    _only(world, Rule.SHIPMENT_STOPPED, name)


def test_allocated_must_count_the_rentals_holding_a_unit(world: invariants.Snapshot) -> None:
    world.purifiers[0]["status"].update(allocated=0, available=1)
    assert "1 rentals hold a unit" in _only(world, Rule.STOCK_COUNT, "aqua").detail


def test_available_plus_allocated_is_stock(world: invariants.Snapshot) -> None:
    world.purifiers[0]["status"]["available"] = 1
    assert "!= stock 1" in _only(world, Rule.STOCK_SUM, "aqua").detail


def test_an_overcommitted_purifier_has_nothing_available(world: invariants.Snapshot) -> None:
    world.purifiers[0]["spec"]["stock"] = 0
    world.purifiers[0]["status"]["available"] = 1
    _only(world, Rule.STOCK_SUM, "aqua")
    world.purifiers[0]["status"]["available"] = 0
    assert invariants.check(world) == []  # lowering stock below allocated is allowed (Overcommitted)


def test_a_purifier_without_counts(world: invariants.Snapshot) -> None:
    world.purifiers[0]["status"] = {}
    _only(world, Rule.STOCK_SUM, "aqua")


def test_a_cancelled_rental_holding_a_unit_leaks_stock(world: invariants.Snapshot) -> None:
    _rentals(world)["r-cancel"]["status"]["conditions"][0]["status"] = "True"
    world.purifiers[0]["status"].update(allocated=2, available=0)
    assert "Cancelled, yet StockReserved is True" in _only(world, Rule.STOCK_HOLDER, "r-cancel").detail


def test_a_confirmed_rental_without_a_unit_is_oversold(world: invariants.Snapshot) -> None:
    _rentals(world)["r-ok"]["status"]["conditions"][0]["status"] = "False"
    world.purifiers[0]["status"].update(allocated=0, available=1)
    _only(world, Rule.STOCK_HOLDER, "r-ok")


def test_the_same_text_twice_under_one_reference(world: invariants.Snapshot) -> None:
    _ledger(world, "messages").append({"reference": f"{NS}/r-full/2"})
    assert f"2 messages under reference {NS}/r-full/2" in _only(world, Rule.SMS_ONCE, "r-full").detail


def test_the_same_transition_recorded_twice(world: invariants.Snapshot) -> None:
    rental = _rentals(world)["r-full"]
    rental["status"]["history"].append({"seq": 3, "kind": "Rental", "phase": "Rejected"})
    rental["status"]["notifiedSeq"] = 3
    _ledger(world, "messages").append({"reference": f"{NS}/r-full/3"})
    assert "Rental Rejected recorded (and texted) 2 times" in _only(world, Rule.SMS_ONCE, "r-full").detail


def _monthly_history(rental: dict[str, Any], entries: list[tuple[str, str, int | None]]) -> None:
    """Append history entries (kind, phase, period) to a rental, texted."""
    for kind, phase, period in entries:
        seq = len(rental["status"]["history"]) + 1
        entry: dict[str, Any] = {"seq": seq, "kind": kind, "phase": phase}
        if period is not None:
            entry["period"] = period
        rental["status"]["history"].append(entry)
    rental["status"]["notifiedSeq"] = len(rental["status"]["history"])


def _texted(world: invariants.Snapshot, rental: dict[str, Any]) -> None:
    known = {m["reference"] for m in _ledger(world, "messages")}
    _ledger(world, "messages").extend(m for m in _messages(rental) if m["reference"] not in known)


def test_a_monthly_contract_repeats_some_entries(world: invariants.Snapshot) -> None:
    rental = _rentals(world)["r-ok"]
    _monthly_history(
        rental,
        [
            ("Billing", "Charged", 2),
            ("Billing", "ChargeDeclined", 3),
            ("Rental", "PastDue", None),
            ("Billing", "ChargeDeclined", 3),  # the next attempt declined too
            ("Billing", "Charged", 3),
            ("Rental", "Confirmed", None),  # back in good standing
            ("Billing", "ChargeDeclined", 4),
            ("Rental", "PastDue", None),  # late again, a month later
        ],
    )
    _texted(world, rental)
    assert [v for v in invariants.check(world) if v.rule in (Rule.SMS_ONCE, Rule.SMS_SENT)] == []


@pytest.mark.parametrize(
    ("entries", "detail"),
    [
        ([("Billing", "Charged", 2), ("Billing", "Charged", 2)], "Billing Charged for period 2 recorded"),
        ([("Rental", "PastDue", None), ("Rental", "PastDue", None)], "Rental PastDue (in a row) recorded"),
        ([("Rental", "Confirmed", None)], "Rental Confirmed (in a row) recorded"),
    ],
    ids=["period-charged-twice", "past-due-twice-in-a-row", "confirmed-twice-in-a-row"],
)
def test_a_monthly_entry_recorded_twice(
    world: invariants.Snapshot, entries: list[tuple[str, str, int | None]], detail: str
) -> None:
    rental = _rentals(world)["r-ok"]
    rental["status"]["history"] = [e for e in rental["status"]["history"] if e["kind"] != "Delivery"]
    _monthly_history(rental, entries)
    _texted(world, rental)
    violation = next(v for v in invariants.check(world) if v.rule is Rule.SMS_ONCE)
    assert violation.name == "r-ok" and detail in violation.detail, violation


def test_a_transition_never_texted(world: invariants.Snapshot) -> None:
    _ledger(world, "messages").remove({"reference": f"{NS}/r-ok/3"})
    assert "seq [3]" in _only(world, Rule.SMS_SENT, "r-ok").detail


def test_a_payment_whose_rental_is_gone_is_an_orphan(world: invariants.Snapshot) -> None:
    world.deliveries.append(_owned("Delivery", "r-gone"))
    assert "r-gone" in _only(world, Rule.ORPHAN, "r-gone").detail
    assert [v.kind for v in invariants.unsettled(world)] == ["Delivery"]


def test_a_payment_without_an_owner_is_an_orphan(world: invariants.Snapshot) -> None:
    del world.payments[0]["metadata"]["ownerReferences"]
    _only(world, Rule.ORPHAN, "r-ok-p1")


def test_an_object_stuck_in_deletion_leaves_a_finalizer(world: invariants.Snapshot) -> None:
    rental = _rentals(world)["r-cancel"]
    rental["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["x/y"])
    violation = _only(world, Rule.FINALIZER, "r-cancel")
    assert "['x/y']" in violation.detail
    assert invariants.unsettled(world) == [violation]


def test_a_deleted_rental_that_came_back_is_reported(world: invariants.Snapshot) -> None:
    world = dataclasses.replace(world, deleted=world.deleted | {"r-full"})
    _only(world, Rule.LOST, "r-full")


def test_violations_print_object_rule_and_detail() -> None:
    violation = invariants.Violation("Rental", "r1", Rule.NETS_ZERO, "Cancelled, yet 5 stays charged")
    assert str(violation) == "Rental r1: nets-to-zero: Cancelled, yet 5 stays charged"
