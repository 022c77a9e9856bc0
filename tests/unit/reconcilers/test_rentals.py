"""reconcilers.rentals: the whole saga as a table of observed situations and the plan each one yields.

Each row gives what `decide` sees (the Rental with its previous status, the Purifier, the Payment, the
Delivery) and everything the plan must say: the actions with their arguments, the phase, every condition
(type, status, reason), the history entries it appends and the Events. Separate tests pin the details a
table row cannot show: the charge itself, deadlines, history numbering and timestamps, the notification
mark, and that stale sibling observations do not move a rental backwards.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from typing import Any

import pytest

from rental_operator.api import delivery as api_delivery
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.reconcilers import rentals

NOW = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
EARLIER = NOW - datetime.timedelta(minutes=10)
CREATED = NOW - datetime.timedelta(hours=1)
TIMEOUT = datetime.timedelta(hours=1)

NAME = "r1"
PURIFIER = "aquapure-300"
PAYMENT = rentals.payment_name(NAME, 1)  # "r1-p1"
DELIVERY = "r1-delivery"
ADDRESS = "12 Teheran-ro, Gangnam-gu, Seoul"
FEE = 89_700


# --- fixtures: camelCase bodies through the models, as the API server would hand them over ------------
def _ts(at: datetime.datetime) -> str:
    return at.isoformat()


def _rental(
    status: dict[str, Any] | None = None,
    *,
    cancelled: bool = False,
    deleting: bool = False,
    finalizer: bool = True,
    months: int = 12,
    generation: int = 1,
    created: datetime.datetime | None = CREATED,
) -> api_rental.Rental:
    metadata: dict[str, Any] = {
        "name": NAME,
        "namespace": "shop",
        "uid": "uid-1",
        "generation": generation,
        "resourceVersion": "10",
        "finalizers": [rentals.FINALIZER] if finalizer else [],
    }
    if created is not None:
        metadata["creationTimestamp"] = _ts(created)
    if deleting:
        metadata["deletionTimestamp"] = _ts(NOW - datetime.timedelta(seconds=1))
    return api_rental.Rental.model_validate(
        {
            "apiVersion": "rental.purifier.io/v1alpha1",
            "kind": "Rental",
            "metadata": metadata,
            "spec": {
                "purifier": PURIFIER,
                "customer": {"id": "cust-7", "name": "Kim", "phone": "+821012345678", "address": ADDRESS},
                "months": months,
                "cancelled": cancelled,
            },
            "status": status or {},
        }
    )


def _purifier(
    *, stock: int = 3, holders: list[str] | None = None, fee: int = FEE, currency: str = "KRW"
) -> api_purifier.Purifier:
    """A Purifier whose journal says exactly who holds a unit: a Reserve entry for each of `holders`,
    and a Release entry for this test's rental when it is not among them (so what the rental itself
    records does not matter)."""
    held = holders or []
    pending = [
        {"rental": name, "uid": "uid-1" if name == NAME else f"uid-{name}", "operation": "Reserve"}
        for name in held
    ]
    if NAME not in held:
        pending.append({"rental": NAME, "uid": "uid-1", "operation": "Release"})
    return api_purifier.Purifier.model_validate(
        {
            "metadata": {"name": PURIFIER, "namespace": "shop", "generation": 1},
            "spec": {"model": "AquaPure 300", "monthlyFee": fee, "currency": currency, "stock": stock},
            "status": {"pending": pending, "allocated": len(held), "available": max(stock - len(held), 0)},
        }
    )


HOLDING = _purifier(holders=["other", NAME])
NOT_HOLDING = _purifier(holders=["other"])


def _payment(
    phase: str | None = None,
    *,
    attempts: int = 1,
    refund: bool = False,
    transaction: str | None = None,
    last_error: str | None = None,
    amount: int = FEE,
) -> api_payment.Payment:
    status: dict[str, Any] = {"attempts": attempts}
    if phase is not None:
        status["phase"] = phase
    if transaction is not None:
        status["transactionId"] = transaction
    if last_error is not None:
        status["lastError"] = last_error
    return api_payment.Payment.model_validate(
        {
            "metadata": {"name": PAYMENT, "namespace": "shop", "uid": "pay-uid"},
            "spec": {
                "rental": NAME,
                "amount": amount,
                "currency": "KRW",
                "customerId": "cust-7",
                "idempotencyKey": "rental-uid-1-p1",
                "period": 1,
                "refund": refund,
            },
            "status": status,
        }
    )


def _delivery(
    phase: str | None = None, *, cancelled: bool = False, tracking: str | None = "TRK-42"
) -> api_delivery.Delivery:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
        if phase != "Pending":
            status["shipmentId"] = "ship-1"
            status["trackingNumber"] = tracking
    return api_delivery.Delivery.model_validate(
        {
            "metadata": {"name": DELIVERY, "namespace": "shop", "uid": "dlv-uid"},
            "spec": {
                "rental": NAME,
                "purifier": PURIFIER,
                "address": ADDRESS,
                "customerId": "cust-7",
                "cancelled": cancelled,
            },
            "status": status,
        }
    )


def _facts(
    rental: api_rental.Rental,
    *,
    purifier: api_purifier.Purifier | None = HOLDING,
    payment: api_payment.Payment | None = None,
    delivery: api_delivery.Delivery | None = None,
    refused: bool = False,
    notified: int = 0,
    now: datetime.datetime = NOW,
    payment_mismatch: str | None = None,
    delivery_mismatch: str | None = None,
) -> rentals.Facts:
    return rentals.Facts(
        rental=rental,
        purifier=purifier,
        payment=payment,
        delivery=delivery,
        now=now,
        deferral_timeout=TIMEOUT,
        reservation_refused=refused,
        notified_seq=notified,
        payment_mismatch=payment_mismatch,
        delivery_mismatch=delivery_mismatch,
    )


# --- previous statuses, as earlier passes of the saga left them --------------------------------------
def _cond(type_: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "earlier",
        "observedGeneration": 1,
        "lastTransitionTime": _ts(EARLIER),
    }


def _history(*entries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"seq": seq, "kind": kind, "phase": phase, "at": _ts(CREATED if seq == 1 else EARLIER)}
        for seq, (kind, phase) in enumerate(entries, start=1)
    ]


RESERVED = _cond("StockReserved", "True", "Reserved")
RELEASED = _cond("StockReserved", "False", "Released")
UNTIL_LATER = NOW + datetime.timedelta(minutes=10)
UNTIL_PASSED = NOW - datetime.timedelta(seconds=1)


# The terms the first pass locked (the Purifier's fee and rules at application).
TERMS = {"monthlyFee": FEE, "currency": "KRW", "periodsTotal": 12, "earlyTerminationPercent": 10}


def _awaiting() -> dict[str, Any]:
    return {
        "phase": "AwaitingPayment",
        "observedGeneration": 1,
        "billing": dict(TERMS),
        "payment": {"name": PAYMENT, "phase": "Pending", "amount": FEE, "currency": "KRW"},
        "conditions": [
            _cond("Paid", "False", "PaymentPending"),
            _cond("Ready", "False", "AwaitingPayment"),
            RESERVED,
        ],
        "history": _history(("Rental", "Pending"), ("Rental", "AwaitingPayment")),
    }


def _deferred(until: datetime.datetime) -> dict[str, Any]:
    return {
        "phase": "PaymentDeferred",
        "observedGeneration": 1,
        "billing": dict(TERMS),
        "deferredUntil": _ts(until),
        "payment": {"name": PAYMENT, "phase": "Deferred", "amount": FEE, "currency": "KRW"},
        "conditions": [
            _cond("Paid", "False", "PaymentDeferred"),
            _cond("Ready", "False", "PaymentDeferred"),
            RESERVED,
        ],
        "history": _history(
            ("Rental", "Pending"), ("Rental", "AwaitingPayment"), ("Rental", "PaymentDeferred")
        ),
    }


def _confirmed(delivery: str | None = None, *, phase: str = "Confirmed") -> dict[str, Any]:
    started = {
        None: ("False", "DeliveryPending"),
        "Pending": ("False", "DeliveryPending"),
        "Shipping": ("True", "Shipping"),
        "Delivered": ("True", "Delivered"),
        # only while cancelling: the shipment was stopped after the rental asked for it
        "Cancelled": ("True", "Shipping"),
    }[delivery]
    entries = [("Rental", "Pending"), ("Rental", "AwaitingPayment"), ("Rental", "Confirmed")]
    if delivery in ("Shipping", "Delivered", "Cancelled"):
        entries.append(("Delivery", "Shipping"))
    if delivery == "Delivered":
        entries.append(("Delivery", "Delivered"))
    if phase == "Cancelling":
        entries.append(("Rental", "Cancelling"))
    if delivery == "Cancelled":
        entries.append(("Delivery", "Cancelled"))
    ready = ("True", "Confirmed") if phase == "Confirmed" else ("False", "Cancelling")
    status: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": 1,
        "payment": {
            "name": PAYMENT,
            "phase": "Approved",
            "amount": FEE,
            "currency": "KRW",
            "transactionId": "tx-1",
        },
        "conditions": [
            _cond("DeliveryStarted", *started),
            _cond("Paid", "True", "PaymentApproved"),
            _cond("Ready", *ready),
            RESERVED,
        ],
        "history": _history(*entries),
    }
    if delivery is not None:
        status["delivery"] = {"name": DELIVERY, "phase": delivery, "trackingNumber": "TRK-42"}
    return status


def _cancelling(delivery: str | None = "Shipping") -> dict[str, Any]:
    return _confirmed(delivery, phase="Cancelling")


def _rejected() -> dict[str, Any]:
    """Rejected after the deferral expired: the unit was released, a refund was asked for."""
    return {
        "phase": "Rejected",
        "observedGeneration": 1,
        "payment": {"name": PAYMENT, "phase": "Deferred", "amount": FEE, "currency": "KRW"},
        "conditions": [
            _cond("Paid", "False", "DeferralExpired"),
            _cond("Ready", "False", "Rejected"),
            RELEASED,
        ],
        "history": _history(
            ("Rental", "Pending"),
            ("Rental", "AwaitingPayment"),
            ("Rental", "PaymentDeferred"),
            ("Rental", "Rejected"),
        ),
    }


def _cancelled() -> dict[str, Any]:
    status = _cancelling("Cancelled")
    status["phase"] = "Cancelled"
    status["conditions"] = [
        _cond("DeliveryStarted", "False", "ShipmentCancelled"),
        _cond("Paid", "False", "Refunded"),
        _cond("Ready", "False", "Cancelled"),
        RELEASED,
    ]
    status["history"] = _history(
        ("Rental", "Pending"),
        ("Rental", "AwaitingPayment"),
        ("Rental", "Confirmed"),
        ("Rental", "Cancelling"),
        ("Rental", "Cancelled"),
    )
    return status


# --- reading a plan -----------------------------------------------------------------------------------
def _conditions(status: api_rental.RentalStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def _appended(facts: rentals.Facts, plan: rentals.Plan) -> list[tuple[str, str]]:
    known = {entry.seq for entry in facts.rental.status.history}
    return [(e.kind, e.phase) for e in plan.status.history if e.seq not in known]


def _events(plan: rentals.Plan) -> list[tuple[str, str]]:
    return [(event.type, event.reason) for event in plan.events]


_PAYMENT_SPEC = api_payment.PaymentSpec(
    rental=NAME,
    period=1,
    amount=FEE,
    currency="KRW",
    customer_id="cust-7",
    idempotency_key="rental-uid-1-p1",
)
_DELIVERY_SPEC = api_delivery.DeliverySpec(
    rental=NAME, purifier=PURIFIER, address=ADDRESS, customer_id="cust-7"
)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    facts: rentals.Facts
    actions: tuple[rentals.Action, ...]
    phase: str | None
    conditions: dict[str, tuple[str, str]]
    history: list[tuple[str, str]]
    events: list[tuple[str, str]]


OK = ("Normal",)
CASES = [
    # --- applying ---
    Case(
        "new rental: finalizer first, then reserve",
        _facts(_rental(finalizer=False), purifier=_purifier()),
        (rentals.AddFinalizer(), rentals.Reserve(PURIFIER)),
        None,
        {},
        [],
        [],
    ),
    Case(
        "new rental with the finalizer already on: reserve only",
        _facts(_rental(), purifier=_purifier()),
        (rentals.Reserve(PURIFIER),),
        None,
        {},
        [],
        [],
    ),
    Case(
        "reserved: charge the fee",
        _facts(_rental()),
        (rentals.CreatePayment(PAYMENT, _PAYMENT_SPEC),),
        "AwaitingPayment",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "AwaitingPayment"),
        },
        [("Rental", "Pending"), ("Rental", "AwaitingPayment")],
        [("Normal", "PaymentRequested"), ("Normal", "AwaitingPayment")],
    ),
    Case(
        "reservation refused: rejected out of stock, no payment",
        _facts(_rental(), purifier=_purifier(stock=1, holders=["other"]), refused=True),
        (),
        "Rejected",
        {"StockReserved": ("False", "OutOfStock"), "Ready": ("False", "Rejected")},
        [("Rental", "Pending"), ("Rental", "Rejected")],
        [("Warning", "Rejected")],
    ),
    Case(
        "reservation refused on a new rental: nothing held, so no finalizer",
        _facts(_rental(finalizer=False), purifier=_purifier(stock=0), refused=True),
        (),
        "Rejected",
        {"StockReserved": ("False", "OutOfStock"), "Ready": ("False", "Rejected")},
        [("Rental", "Pending"), ("Rental", "Rejected")],
        [("Warning", "Rejected")],
    ),
    Case(
        "no such purifier on a new rental: rejected without a finalizer",
        _facts(_rental(finalizer=False), purifier=None),
        (),
        "Rejected",
        {"StockReserved": ("False", "PurifierNotFound"), "Ready": ("False", "Rejected")},
        [("Rental", "Pending"), ("Rental", "Rejected")],
        [("Warning", "Rejected")],
    ),
    Case(
        "a unit held but the finalizer gone (removed by hand): it is put back",
        _facts(_rental(_awaiting(), finalizer=False), payment=_payment("Pending")),
        (rentals.AddFinalizer(),),
        "AwaitingPayment",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "AwaitingPayment"),
        },
        [],
        [],
    ),
    Case(
        "no such purifier: rejected",
        _facts(_rental(), purifier=None),
        (),
        "Rejected",
        {"StockReserved": ("False", "PurifierNotFound"), "Ready": ("False", "Rejected")},
        [("Rental", "Pending"), ("Rental", "Rejected")],
        [("Warning", "Rejected")],
    ),
    # --- paying ---
    Case(
        "payment pending: awaiting payment, nothing new",
        _facts(_rental(_awaiting()), payment=_payment("Pending")),
        (),
        "AwaitingPayment",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "AwaitingPayment"),
        },
        [],
        [],
    ),
    Case(
        "payment created but not answered yet (no phase): awaiting payment",
        _facts(_rental(_awaiting()), payment=_payment(None, attempts=0)),
        (),
        "AwaitingPayment",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "AwaitingPayment"),
        },
        [],
        [],
    ),
    Case(
        "payment deferred: pay later, keep the unit",
        _facts(_rental(_awaiting()), payment=_payment("Deferred", last_error="circuit open")),
        (),
        "PaymentDeferred",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("False", "PaymentDeferred"),
            "Ready": ("False", "PaymentDeferred"),
        },
        [("Rental", "PaymentDeferred")],
        [("Warning", "PaymentDeferred")],
    ),
    Case(
        "still deferred before the deadline: no new transition",
        _facts(_rental(_deferred(UNTIL_LATER)), payment=_payment("Deferred", attempts=3)),
        (),
        "PaymentDeferred",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("False", "PaymentDeferred"),
            "Ready": ("False", "PaymentDeferred"),
        },
        [],
        [],
    ),
    Case(
        "deferral expired: rejected, refund requested, unit released",
        _facts(_rental(_deferred(UNTIL_PASSED)), payment=_payment("Deferred", attempts=3)),
        (rentals.RequestRefund(PAYMENT), rentals.Release(PURIFIER)),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [("Rental", "Rejected")],
        [("Warning", "Rejected"), ("Normal", "RefundRequested"), ("Normal", "StockReleased")],
    ),
    Case(
        "deferral deadline reached exactly: rejected",
        _facts(_rental(_deferred(NOW)), payment=_payment("Deferred", attempts=3)),
        (rentals.RequestRefund(PAYMENT), rentals.Release(PURIFIER)),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [("Rental", "Rejected")],
        [("Warning", "Rejected"), ("Normal", "RefundRequested"), ("Normal", "StockReleased")],
    ),
    Case(
        "declined: rejected, unit released, no refund",
        _facts(_rental(_awaiting()), payment=_payment("Declined", last_error="insufficient funds")),
        (rentals.Release(PURIFIER),),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "PaymentDeclined"),
            "Ready": ("False", "Rejected"),
        },
        [("Rental", "Rejected")],
        [("Warning", "Rejected"), ("Normal", "StockReleased")],
    ),
    Case(
        "payment failed for good: rejected, unit released, no refund",
        _facts(_rental(_awaiting()), payment=_payment("Failed", last_error="400 bad currency")),
        (rentals.Release(PURIFIER),),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "PaymentFailed"),
            "Ready": ("False", "Rejected"),
        },
        [("Rental", "Rejected")],
        [("Warning", "Rejected"), ("Normal", "StockReleased")],
    ),
    Case(
        "deferred payment approved: confirmed, delivery created",
        _facts(_rental(_deferred(UNTIL_LATER)), payment=_payment("Approved", transaction="tx-1")),
        (rentals.CreateDelivery(_DELIVERY_SPEC),),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("False", "DeliveryPending"),
            "Ready": ("True", "Confirmed"),
        },
        [("Rental", "Confirmed")],
        [("Normal", "DeliveryRequested"), ("Normal", "Confirmed")],
    ),
    Case(
        "approved: confirmed, delivery created",
        _facts(_rental(_awaiting()), payment=_payment("Approved", transaction="tx-1")),
        (rentals.CreateDelivery(_DELIVERY_SPEC),),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("False", "DeliveryPending"),
            "Ready": ("True", "Confirmed"),
        },
        [("Rental", "Confirmed")],
        [("Normal", "DeliveryRequested"), ("Normal", "Confirmed")],
    ),
    # --- delivering ---
    Case(
        "delivery created, not shipped yet: no delivery entry",
        _facts(_rental(_confirmed()), payment=_payment("Approved", transaction="tx-1"), delivery=_delivery()),
        (),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("False", "DeliveryPending"),
            "Ready": ("True", "Confirmed"),
        },
        [],
        [],
    ),
    Case(
        "delivery shipping: mirrored, DeliveryStarted",
        _facts(
            _rental(_confirmed("Pending")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        ),
        (),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("True", "Confirmed"),
        },
        [("Delivery", "Shipping")],
        [],
    ),
    Case(
        "delivery delivered",
        _facts(
            _rental(_confirmed("Shipping")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Delivered"),
        ),
        (),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Delivered"),
            "Ready": ("True", "Confirmed"),
        },
        [("Delivery", "Delivered")],
        [],
    ),
    Case(
        "shipment cancelled by the carrier on a confirmed rental",
        _facts(
            _rental(_confirmed("Shipping")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Cancelled"),
        ),
        (),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("False", "ShipmentCancelled"),
            "Ready": ("True", "Confirmed"),
        },
        [("Delivery", "Cancelled")],
        [],
    ),
    # --- cancelling before delivery ---
    Case(
        "cancel while shipping: stop the shipment and refund at once, keep the unit",
        _facts(
            _rental(_confirmed("Shipping"), cancelled=True, generation=2),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        ),
        (rentals.StopDelivery(DELIVERY), rentals.RequestRefund(PAYMENT)),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "DeliveryStopping"), ("Normal", "RefundRequested")],
    ),
    Case(
        "cancel requested before the shipment was created",
        _facts(
            _rental(_confirmed("Pending"), cancelled=True),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Pending"),
        ),
        (rentals.StopDelivery(DELIVERY), rentals.RequestRefund(PAYMENT)),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("False", "DeliveryPending"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "DeliveryStopping"), ("Normal", "RefundRequested")],
    ),
    Case(
        "cancelling, stop and refund under way: wait, no repeated requests",
        _facts(
            _rental(_cancelling("Shipping"), cancelled=True),
            payment=_payment("Refunding", refund=True, transaction="tx-1"),
            delivery=_delivery("Shipping", cancelled=True),
        ),
        (),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [],
        [],
    ),
    Case(
        "cancelling, shipment cancelled: now the unit is released",
        _facts(
            _rental(_cancelling("Shipping"), cancelled=True),
            payment=_payment("Refunding", refund=True, transaction="tx-1"),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (rentals.Release(PURIFIER),),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [("Delivery", "Cancelled")],
        [("Normal", "StockReleased")],
    ),
    Case(
        "cancelling, released and stopped but the refund is not done: still cancelling",
        _facts(
            _rental(_cancelling("Cancelled"), cancelled=True),
            purifier=NOT_HOLDING,
            payment=_payment("Refunding", refund=True, transaction="tx-1"),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [],
        [],
    ),
    Case(
        "cancelling, refunded and stopped but the unit still held: release, not cancelled yet",
        _facts(
            _rental(_cancelling("Cancelled"), cancelled=True),
            payment=_payment("Refunded", refund=True, transaction="tx-1"),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (rentals.Release(PURIFIER),),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [],
        [("Normal", "StockReleased")],
    ),
    Case(
        "cancelling, refunded, stopped and released: cancelled",
        _facts(
            _rental(_cancelling("Cancelled"), cancelled=True),
            purifier=NOT_HOLDING,
            payment=_payment("Refunded", refund=True, transaction="tx-1"),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (),
        "Cancelled",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "Refunded"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelled"),
        },
        [("Rental", "Cancelled")],
        [("Normal", "Cancelled")],
    ),
    Case(
        "cancel while awaiting payment: refund (void) and release at once, no delivery to stop",
        _facts(_rental(_awaiting(), cancelled=True), payment=_payment("Pending", attempts=0)),
        (rentals.RequestRefund(PAYMENT), rentals.Release(PURIFIER)),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "RefundRequested"), ("Normal", "StockReleased")],
    ),
    Case(
        "cancel while deferred: refund requested, unit released",
        _facts(_rental(_deferred(UNTIL_LATER), cancelled=True), payment=_payment("Deferred", attempts=2)),
        (rentals.RequestRefund(PAYMENT), rentals.Release(PURIFIER)),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "PaymentDeferred"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "RefundRequested"), ("Normal", "StockReleased")],
    ),
    Case(
        "cancel after a decline was seen in the same pass: nothing to refund",
        _facts(_rental(_awaiting(), cancelled=True), purifier=NOT_HOLDING, payment=_payment("Declined")),
        (),
        "Cancelled",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "Cancelled"),
        },
        [("Rental", "Cancelling"), ("Rental", "Cancelled")],
        [("Normal", "Cancelling"), ("Normal", "Cancelled")],
    ),
    # --- cancelling after delivery: the return path ---
    Case(
        "cancel after delivery: ask for a return and a refund",
        _facts(
            _rental(_confirmed("Delivered"), cancelled=True),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Delivered"),
        ),
        (rentals.StopDelivery(DELIVERY), rentals.RequestRefund(PAYMENT)),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Delivered"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "DeliveryStopping"), ("Normal", "RefundRequested")],
    ),
    Case(
        "returning: the unit is not back, no release even though refunded",
        _facts(
            _rental(_cancelling("Delivered"), cancelled=True),
            payment=_payment("Refunded", refund=True, transaction="tx-1"),
            delivery=_delivery("Returning", cancelled=True),
        ),
        (),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Delivered"),
            "Ready": ("False", "Cancelling"),
        },
        [("Delivery", "Returning")],
        [],
    ),
    Case(
        "returned: release the unit",
        _facts(
            _rental(_cancelling("Delivered"), cancelled=True),
            payment=_payment("Refunded", refund=True, transaction="tx-1"),
            delivery=_delivery("Returned", cancelled=True),
        ),
        (rentals.Release(PURIFIER),),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Delivered"),
            "Ready": ("False", "Cancelling"),
        },
        [("Delivery", "Returning"), ("Delivery", "Returned")],  # the missed step is told too
        [("Normal", "StockReleased")],
    ),
    # --- deletion runs the same compensation, then lets go of the finalizer ---
    Case(
        "deleted while shipping: same compensation, finalizer kept",
        _facts(
            _rental(_confirmed("Shipping"), deleting=True),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        ),
        (rentals.StopDelivery(DELIVERY), rentals.RequestRefund(PAYMENT)),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "DeliveryStopping"), ("Normal", "RefundRequested")],
    ),
    Case(
        "deleted, stopped and refunded but still held: release, finalizer kept",
        _facts(
            _rental(_cancelling("Cancelled"), deleting=True),
            payment=_payment("Refunded", refund=True),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (rentals.Release(PURIFIER),),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [],
        [("Normal", "StockReleased")],
    ),
    Case(
        "deleted and everything undone: cancelled, finalizer removed",
        _facts(
            _rental(_cancelling("Cancelled"), deleting=True),
            purifier=NOT_HOLDING,
            payment=_payment("Refunded", refund=True),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (rentals.RemoveFinalizer(),),
        "Cancelled",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "Refunded"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelled"),
        },
        [("Rental", "Cancelled")],
        [("Normal", "Cancelled")],
    ),
    Case(
        "deleted while awaiting payment: refund and release, finalizer kept",
        _facts(_rental(_awaiting(), deleting=True), payment=_payment("Pending")),
        (rentals.RequestRefund(PAYMENT), rentals.Release(PURIFIER)),
        "Cancelling",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "PaymentPending"),
            "Ready": ("False", "Cancelling"),
        },
        [("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "RefundRequested"), ("Normal", "StockReleased")],
    ),
    # --- never processed ---
    Case(
        "cancelled before anything happened: cancelled at once, no actions",
        _facts(_rental(cancelled=True, finalizer=False), purifier=_purifier()),
        (),
        "Cancelled",
        {"Ready": ("False", "Cancelled")},
        [("Rental", "Pending"), ("Rental", "Cancelled")],
        [("Normal", "Cancelled")],
    ),
    Case(
        "cancelled before anything happened, purifier missing too",
        _facts(_rental(cancelled=True, finalizer=False), purifier=None),
        (),
        "Cancelled",
        {"Ready": ("False", "Cancelled")},
        [("Rental", "Pending"), ("Rental", "Cancelled")],
        [("Normal", "Cancelled")],
    ),
    Case(
        "deleted before anything happened: cancelled, finalizer removal only",
        _facts(_rental(deleting=True), purifier=_purifier()),
        (rentals.RemoveFinalizer(),),
        "Cancelled",
        {"Ready": ("False", "Cancelled")},
        [("Rental", "Pending"), ("Rental", "Cancelled")],
        [("Normal", "Cancelled")],
    ),
    Case(
        "cancelled after the reservation, before the status was ever written: release",
        _facts(_rental(cancelled=True)),
        (rentals.Release(PURIFIER),),
        "Cancelling",
        {"StockReserved": ("False", "Released"), "Ready": ("False", "Cancelling")},
        [("Rental", "Pending"), ("Rental", "Cancelling")],
        [("Normal", "Cancelling"), ("Normal", "StockReleased")],
    ),
    # --- terminal phases are never left ---
    Case(
        "rejected, then an approval shows up: refund it, stay rejected",
        _facts(_rental(_rejected()), purifier=NOT_HOLDING, payment=_payment("Approved", transaction="tx-9")),
        (rentals.RequestRefund(PAYMENT),),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [],
        [("Normal", "RefundRequested")],
    ),
    Case(
        "rejected, refund of the late approval under way: nothing more",
        _facts(
            _rental(_rejected()),
            purifier=NOT_HOLDING,
            payment=_payment("Refunding", refund=True, transaction="tx-9"),
        ),
        (),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [],
        [],
    ),
    Case(
        "rejected and still holding a unit (release failed earlier): release again",
        _facts(_rental(_rejected()), payment=_payment("Refunded", refund=True)),
        (rentals.Release(PURIFIER),),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [],
        [("Normal", "StockReleased")],
    ),
    Case(
        "rejected, then cancelled by the customer: stays rejected",
        _facts(_rental(_rejected(), cancelled=True), purifier=NOT_HOLDING, payment=_payment("Refunded")),
        (),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [],
        [],
    ),
    Case(
        "rejected and deleted, settled: finalizer removed, still rejected",
        _facts(_rental(_rejected(), deleting=True), purifier=NOT_HOLDING, payment=_payment("Refunded")),
        (rentals.RemoveFinalizer(),),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [],
        [],
    ),
    Case(
        "rejected and deleted, refund not settled: finalizer kept",
        _facts(
            _rental(_rejected(), deleting=True),
            purifier=NOT_HOLDING,
            payment=_payment("Refunding", refund=True),
        ),
        (),
        "Rejected",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "DeferralExpired"),
            "Ready": ("False", "Rejected"),
        },
        [],
        [],
    ),
    Case(
        "rejected because the purifier is missing, then deleted: finalizer removed",
        _facts(
            _rental(
                {
                    "phase": "Rejected",
                    "conditions": [
                        _cond("Ready", "False", "Rejected"),
                        _cond("StockReserved", "False", "PurifierNotFound"),
                    ],
                    "history": _history(("Rental", "Pending"), ("Rental", "Rejected")),
                },
                deleting=True,
            ),
            purifier=None,
        ),
        (rentals.RemoveFinalizer(),),
        "Rejected",
        {"StockReserved": ("False", "PurifierNotFound"), "Ready": ("False", "Rejected")},
        [],
        [],
    ),
    Case(
        "cancelled, then a stale approved payment: ask for the refund again, stay cancelled",
        _facts(
            _rental(_cancelled(), cancelled=True),
            purifier=NOT_HOLDING,
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (rentals.RequestRefund(PAYMENT),),
        "Cancelled",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "Refunded"),
            "DeliveryStarted": ("False", "ShipmentCancelled"),
            "Ready": ("False", "Cancelled"),
        },
        [],
        [("Normal", "RefundRequested")],
    ),
    Case(
        "cancelled and deleted: finalizer removed",
        _facts(
            _rental(_cancelled(), cancelled=True, deleting=True),
            purifier=NOT_HOLDING,
            payment=_payment("Refunded", refund=True),
            delivery=_delivery("Cancelled", cancelled=True),
        ),
        (rentals.RemoveFinalizer(),),
        "Cancelled",
        {
            "StockReserved": ("False", "Released"),
            "Paid": ("False", "Refunded"),
            "DeliveryStarted": ("False", "ShipmentCancelled"),
            "Ready": ("False", "Cancelled"),
        },
        [],
        [],
    ),
    # --- stale sibling observations the code does guard against ---
    Case(
        "confirmed, stale refunding payment without a cancellation: wait, stay confirmed",
        _facts(
            _rental(_confirmed("Shipping")),
            payment=_payment("Refunding", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        ),
        (),
        "Confirmed",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("True", "Confirmed"),
        },
        [],
        [],
    ),
    Case(
        "cancelling, stale approved payment and shipping delivery: ask again, never back to confirmed",
        _facts(
            _rental(_cancelling("Shipping"), cancelled=True),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        ),
        (rentals.StopDelivery(DELIVERY), rentals.RequestRefund(PAYMENT)),
        "Cancelling",
        {
            "StockReserved": ("True", "Reserved"),
            "Paid": ("True", "PaymentApproved"),
            "DeliveryStarted": ("True", "Shipping"),
            "Ready": ("False", "Cancelling"),
        },
        [],
        [("Normal", "DeliveryStopping"), ("Normal", "RefundRequested")],
    ),
]


@pytest.mark.parametrize(
    ("previous", "current", "shipped", "steps"),
    [
        (None, "Shipping", True, ["Shipping"]),
        (None, "Delivered", True, ["Shipping", "Delivered"]),
        ("Shipping", "Delivered", True, ["Delivered"]),
        ("Shipping", "Returned", True, ["Delivered", "Returning", "Returned"]),
        ("Delivered", "Delivered", True, []),
        (None, "Cancelled", True, ["Shipping", "Cancelled"]),
        (None, "Cancelled", False, ["Cancelled"]),
        ("Shipping", "Cancelled", True, ["Cancelled"]),
        (None, "Pending", False, []),
    ],
)
def test_delivery_steps_missed_between_two_looks_are_all_told(
    previous: str | None, current: str, shipped: bool, steps: list[str]
) -> None:
    phase = api_delivery.DeliveryPhase
    told = rentals._delivery_steps(phase(previous) if previous else None, phase(current), shipped=shipped)
    assert [step.value for step in told] == steps


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_saga(case: Case) -> None:
    plan = rentals.decide(case.facts)

    assert plan.actions == case.actions
    assert plan.status.phase == case.phase
    assert _conditions(plan.status) == case.conditions
    assert _appended(case.facts, plan) == case.history
    assert _events(plan) == case.events
    assert plan.status.observed_generation == case.facts.rental.metadata.generation
    payment, delivery = case.facts.payment, case.facts.delivery
    if payment is not None:
        assert plan.status.payment is not None
        assert plan.status.payment.phase == (payment.status.phase or "Pending")
        assert plan.status.payment.name == PAYMENT
    else:
        assert plan.status.payment == case.facts.rental.status.payment
    if delivery is not None:
        assert plan.status.delivery is not None
        assert plan.status.delivery.phase == (delivery.status.phase or "Pending")
        assert plan.status.delivery.tracking_number == delivery.status.tracking_number
    else:
        assert plan.status.delivery == case.facts.rental.status.delivery


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide_does_not_modify_what_it_is_given(case: Case) -> None:
    before = case.facts.rental.model_copy(deep=True)
    rentals.decide(case.facts)
    assert case.facts.rental == before


# --- the charge ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fee", "months", "currency"),
    [(FEE, 12, "KRW"), (39_000, 1, "KRW"), (2_999, 7, "USD"), (1_500, 60, "JPY")],
)
def test_the_first_charge_is_one_months_fee_and_the_terms_are_locked(
    fee: int, months: int, currency: str
) -> None:
    purifier = _purifier(holders=[NAME], fee=fee, currency=currency)
    plan = rentals.decide(_facts(_rental(months=months), purifier=purifier))

    (action,) = plan.actions
    assert action == rentals.CreatePayment(
        PAYMENT,
        api_payment.PaymentSpec(
            rental=NAME,
            period=1,
            amount=fee,
            currency=currency,
            customer_id="cust-7",
            idempotency_key="rental-uid-1-p1",
            refund=False,
        ),
    )
    assert plan.status.billing == api_rental.Billing(
        monthly_fee=fee,
        currency=currency,
        mandatory_months=0,
        early_termination_percent=10,
        periods_total=months,
    )


def test_idempotency_key_is_derived_from_the_rental_uid_and_period_1() -> None:
    assert rentals.idempotency_key(_rental()) == "rental-uid-1-p1"


def test_payment_names_never_collide_and_fit_the_api() -> None:
    assert rentals.payment_name("kim", 2) == "kim-p2"
    assert rentals.fee_payment_name("kim") == "kim-fee"
    # A rental named like another's charge still gets names of its own.
    assert rentals.payment_name("kim-p1", 2) not in {rentals.payment_name("kim", k) for k in range(1, 61)}
    long = "a" * 253
    names = {rentals.payment_name(long, k) for k in range(1, 61)} | {rentals.fee_payment_name(long)}
    assert len(names) == 61
    assert all(len(name) <= 253 for name in names)
    assert rentals.payment_name(long, 1) != rentals.payment_name("a" * 252, 1)


def test_existing_payment_is_not_created_again_and_its_amount_is_mirrored() -> None:
    """A fee change after the application does not touch the charge: the Payment's spec is the amount."""
    facts = _facts(
        _rental(_awaiting()),
        purifier=_purifier(holders=[NAME], fee=FEE * 2),
        payment=_payment("Pending", amount=FEE),
    )
    plan = rentals.decide(facts)
    assert not any(isinstance(action, rentals.CreatePayment) for action in plan.actions)
    assert plan.status.payment == api_rental.PaymentSummary(
        name=PAYMENT, period=1, phase=api_payment.PaymentPhase.PENDING, amount=FEE, currency="KRW"
    )


def test_payment_summary_carries_the_transaction_id() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Approved", transaction="tx-77")))
    assert plan.status.payment is not None
    assert plan.status.payment.transaction_id == "tx-77"
    assert plan.status.payment.phase is api_payment.PaymentPhase.APPROVED


def test_payment_without_phase_is_summarised_as_pending() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment(None, attempts=0)))
    assert plan.status.payment is not None
    assert plan.status.payment.phase is api_payment.PaymentPhase.PENDING


def test_decline_reason_reaches_the_condition_message() -> None:
    plan = rentals.decide(
        _facts(_rental(_awaiting()), payment=_payment("Declined", last_error="insufficient funds"))
    )
    paid = next(c for c in plan.status.conditions if c.type == "Paid")
    assert "insufficient funds" in paid.message
    assert "insufficient funds" in (plan.status.message or "")


def test_out_of_stock_names_the_purifier() -> None:
    plan = rentals.decide(_facts(_rental(), purifier=_purifier(stock=0), refused=True))
    assert PURIFIER in (plan.status.message or "")
    (event,) = plan.events
    assert event.type == "Warning"
    assert PURIFIER in event.message


def test_missing_purifier_is_named() -> None:
    plan = rentals.decide(_facts(_rental(), purifier=None))
    reserved = next(c for c in plan.status.conditions if c.type == "StockReserved")
    assert repr(PURIFIER) in reserved.message


def test_a_reservation_is_asked_for_again_until_refused_or_held() -> None:
    """Without the refusal the saga does not guess: it asks the allocator (whose answer is the truth)."""
    plan = rentals.decide(_facts(_rental(), purifier=_purifier(stock=1, holders=["other"])))
    assert plan.actions == (rentals.Reserve(PURIFIER),)
    assert plan.status.phase is None


def test_delivery_spec_carries_the_customer_and_address() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Approved", transaction="t")))
    (action,) = plan.actions
    assert isinstance(action, rentals.CreateDelivery)
    assert action.spec.address == ADDRESS
    assert action.spec.customer_id == "cust-7"
    assert action.spec.purifier == PURIFIER
    assert action.spec.rental == NAME
    assert action.spec.cancelled is False


def test_existing_delivery_is_not_created_again() -> None:
    plan = rentals.decide(
        _facts(
            _rental(_confirmed("Shipping")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        )
    )
    assert plan.actions == ()


# --- pay later ------------------------------------------------------------------------------------------
def test_deferral_sets_the_deadline_and_asks_to_be_woken_then() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Deferred")))
    assert plan.status.deferred_until == NOW + TIMEOUT
    assert plan.requeue_after == TIMEOUT.total_seconds()
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert (NOW + TIMEOUT).isoformat() in ready.message


def test_deferral_keeps_its_first_deadline() -> None:
    plan = rentals.decide(_facts(_rental(_deferred(UNTIL_LATER)), payment=_payment("Deferred")))
    assert plan.status.deferred_until == UNTIL_LATER
    assert plan.requeue_after == pytest.approx((UNTIL_LATER - NOW).total_seconds())


def test_deferral_message_shows_the_payment_error() -> None:
    plan = rentals.decide(
        _facts(_rental(_awaiting()), payment=_payment("Deferred", last_error="503 from payments"))
    )
    paid = next(c for c in plan.status.conditions if c.type == "Paid")
    assert "503 from payments" in paid.message


@pytest.mark.parametrize(
    ("payment", "phase"),
    # A Pending view after a deferral is stale and keeps the deadline: see
    # test_a_stale_pending_payment_does_not_reset_the_deferral_deadline.
    [("Approved", "Confirmed"), ("Declined", "Rejected")],
)
def test_deadline_is_cleared_when_leaving_deferral(payment: str, phase: str) -> None:
    plan = rentals.decide(_facts(_rental(_deferred(UNTIL_LATER)), payment=_payment(payment, transaction="t")))
    assert plan.status.phase == phase
    assert plan.status.deferred_until is None
    # No deferral deadline to wait for; a confirmed contract looks again when month 2 falls due.
    month_2 = datetime.datetime(2025, 7, 1, 9, 0, tzinfo=datetime.UTC)
    assert plan.requeue_after == ((month_2 - NOW).total_seconds() if phase == "Confirmed" else None)


def test_expired_deferral_asks_for_no_wake_up() -> None:
    plan = rentals.decide(_facts(_rental(_deferred(UNTIL_PASSED)), payment=_payment("Deferred")))
    assert plan.requeue_after is None
    assert plan.status.deferred_until is None


@pytest.mark.parametrize("phase", ["Pending", "Declined"])
def test_only_deferral_asks_for_a_wake_up_before_the_contract_runs(phase: str) -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment(phase, transaction="t")))
    assert plan.requeue_after is None


def test_a_confirmed_contract_wakes_up_when_month_2_falls_due() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Approved", transaction="t")))
    month_2 = datetime.datetime(2025, 7, 1, 9, 0, tzinfo=datetime.UTC)
    assert plan.requeue_after == (month_2 - NOW).total_seconds()


# --- history ------------------------------------------------------------------------------------------
def test_first_transition_records_pending_at_creation_then_the_new_phase_now() -> None:
    plan = rentals.decide(_facts(_rental()))
    assert [(e.seq, e.kind, e.phase, e.at) for e in plan.status.history] == [
        (1, "Rental", "Pending", CREATED),
        (2, "Rental", "AwaitingPayment", NOW),
    ]
    assert plan.status.history[0].message == "application received"


def test_pending_entry_falls_back_to_now_without_a_creation_timestamp() -> None:
    plan = rentals.decide(_facts(_rental(created=None)))
    assert plan.status.history[0].phase == "Pending"
    assert plan.status.history[0].at == NOW


def test_seq_continues_from_the_last_entry() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Approved", transaction="t")))
    assert [e.seq for e in plan.status.history] == [1, 2, 3]
    assert plan.status.history[-1].phase == "Confirmed"
    assert plan.status.history[-1].at == NOW


def test_rental_and_delivery_entries_in_one_pass_are_numbered_in_order() -> None:
    plan = rentals.decide(
        _facts(
            _rental(_confirmed("Shipping"), cancelled=True),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Delivered"),
        )
    )
    assert [(e.seq, e.kind, e.phase) for e in plan.status.history[-2:]] == [
        (5, "Rental", "Cancelling"),
        (6, "Delivery", "Delivered"),
    ]


def test_history_is_bounded_and_seq_keeps_counting() -> None:
    status = _awaiting()
    status["history"] = [
        {"seq": seq, "kind": "Rental", "phase": "AwaitingPayment", "at": _ts(EARLIER)}
        for seq in range(11, 11 + api_rental.HISTORY_LIMIT)
    ]
    plan = rentals.decide(_facts(_rental(status), payment=_payment("Approved", transaction="t")))
    seqs = [e.seq for e in plan.status.history]
    assert len(seqs) == api_rental.HISTORY_LIMIT
    assert seqs[-1] == 11 + api_rental.HISTORY_LIMIT
    assert seqs[0] == 12  # the oldest went
    assert seqs == sorted(seqs)


def test_no_entry_when_the_phase_stays() -> None:
    facts = _facts(_rental(_awaiting()), payment=_payment("Pending"))
    assert rentals.decide(facts).status.history == facts.rental.status.history


def test_delivery_entry_message_and_time() -> None:
    plan = rentals.decide(
        _facts(
            _rental(_confirmed("Pending")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping", tracking="TRK-9"),
        )
    )
    entry = plan.status.history[-1]
    assert (entry.kind, entry.phase, entry.at, entry.message) == (
        "Delivery",
        "Shipping",
        NOW,
        "delivery shipping",
    )
    assert plan.status.delivery == api_rental.DeliverySummary(
        name=DELIVERY, phase=api_delivery.DeliveryPhase.SHIPPING, tracking_number="TRK-9"
    )


def test_delivery_started_message_carries_the_tracking_number() -> None:
    plan = rentals.decide(
        _facts(
            _rental(_confirmed("Pending")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping", tracking="TRK-9"),
        )
    )
    started = next(c for c in plan.status.conditions if c.type == "DeliveryStarted")
    assert "TRK-9" in started.message


def test_phase_event_messages_match_the_history() -> None:
    plan = rentals.decide(_facts(_rental(), purifier=None))
    (event,) = plan.events
    assert event.message == plan.status.history[-1].message == plan.status.message


def test_cancellation_message_says_why() -> None:
    cancelled = rentals.decide(_facts(_rental(_awaiting(), cancelled=True), payment=_payment("Pending")))
    deleted = rentals.decide(_facts(_rental(_awaiting(), deleting=True), payment=_payment("Pending")))
    assert "cancelled by the customer" in (cancelled.status.message or "")
    assert "rental deleted" in (deleted.status.message or "")


# --- conditions as the rental sees them ---------------------------------------------------------------
def test_condition_times_move_only_on_a_flip() -> None:
    """AwaitingPayment -> Rejected: Ready stays False (time kept), StockReserved flips (time moves)."""
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Declined")))
    times = {c.type: c.last_transition_time for c in plan.status.conditions}
    assert times["Ready"] == EARLIER
    assert times["Paid"] == EARLIER
    assert times["StockReserved"] == NOW


def test_conditions_carry_the_generation_decided_for() -> None:
    plan = rentals.decide(
        _facts(
            _rental(_confirmed("Shipping"), cancelled=True, generation=2),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Shipping"),
        )
    )
    assert plan.status.observed_generation == 2
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert ready.observed_generation == 2


# --- resting and steady states ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("phase", "delivery", "resting"),
    [
        (None, None, False),
        ("Pending", None, False),
        ("AwaitingPayment", None, False),
        ("PaymentDeferred", None, False),
        ("Cancelling", "Shipping", False),
        ("Confirmed", None, False),
        ("Confirmed", "Pending", False),
        ("Confirmed", "Shipping", False),
        ("Confirmed", "Returning", False),
        ("Confirmed", "Delivered", True),
        ("Confirmed", "Cancelled", True),
        ("Confirmed", "Returned", True),
        ("Cancelled", None, True),
        ("Cancelled", "Cancelled", True),
        ("Rejected", None, True),
    ],
)
def test_is_resting(phase: str | None, delivery: str | None, resting: bool) -> None:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if delivery is not None:
        status["delivery"] = {"name": DELIVERY, "phase": delivery}
    assert rentals.is_resting(api_rental.RentalStatus.model_validate(status)) is resting


def test_resting_phases() -> None:
    assert {p.value for p in rentals.RESTING_PHASES} == {
        "Confirmed",
        "PastDue",
        "Cancelled",
        "Rejected",
        "Completed",
    }


def _settle(facts: rentals.Facts) -> rentals.Facts:
    """The facts after the plan's status was written."""
    plan = rentals.decide(facts)
    return dataclasses.replace(facts, rental=facts.rental.model_copy(update={"status": plan.status}))


STEADY = {
    "awaiting payment": _facts(_rental(_awaiting()), payment=_payment("Pending")),
    "deferred": _facts(_rental(_awaiting()), payment=_payment("Deferred")),
    "shipping": _facts(
        _rental(_confirmed("Pending")),
        payment=_payment("Approved", transaction="tx-1"),
        delivery=_delivery("Shipping"),
    ),
    "rejected": _facts(_rental(_awaiting()), purifier=NOT_HOLDING, payment=_payment("Declined")),
    "cancelled": _facts(
        _rental(_cancelling("Cancelled"), cancelled=True),
        purifier=NOT_HOLDING,
        payment=_payment("Refunded", refund=True),
        delivery=_delivery("Cancelled", cancelled=True),
    ),
}


@pytest.mark.parametrize("facts", STEADY.values(), ids=STEADY.keys())
def test_deciding_again_on_the_written_status_changes_nothing(facts: rentals.Facts) -> None:
    settled = _settle(facts)
    plan = rentals.decide(settled)
    assert plan.status == settled.rental.status
    assert plan.actions == ()
    assert plan.events == ()


# --- the notification mark ----------------------------------------------------------------------------
def test_mark_rides_along_with_a_status_that_changes_anyway() -> None:
    plan = rentals.decide(
        _facts(_rental(_awaiting()), payment=_payment("Approved", transaction="t"), notified=2)
    )
    assert plan.status.notified_seq == 2


def test_mark_alone_does_not_cause_a_write() -> None:
    settled = _settle(STEADY["awaiting payment"])
    plan = rentals.decide(dataclasses.replace(settled, notified_seq=2))
    assert plan.status.notified_seq is None
    assert plan.status == settled.rental.status


@pytest.mark.parametrize("steady", ["rejected", "cancelled"])
def test_resting_rental_gets_its_mark_written(steady: str) -> None:
    settled = _settle(STEADY[steady])
    last = settled.rental.status.history[-1].seq
    plan = rentals.decide(dataclasses.replace(settled, notified_seq=last))
    assert plan.status.notified_seq == last


def test_resting_confirmed_rental_gets_its_mark_written() -> None:
    settled = _settle(
        _facts(
            _rental(_confirmed("Shipping")),
            payment=_payment("Approved", transaction="tx-1"),
            delivery=_delivery("Delivered"),
        )
    )
    assert rentals.is_resting(settled.rental.status)
    plan = rentals.decide(dataclasses.replace(settled, notified_seq=6))
    assert plan.status.notified_seq == 6


def test_mark_never_goes_down() -> None:
    status = _awaiting()
    status["notifiedSeq"] = 5
    plan = rentals.decide(_facts(_rental(status), payment=_payment("Approved", transaction="t"), notified=3))
    assert plan.status.notified_seq == 5


def test_no_mark_when_nothing_was_sent() -> None:
    plan = rentals.decide(_facts(_rental(_awaiting()), payment=_payment("Approved", transaction="t")))
    assert plan.status.notified_seq is None


# --- stale observations of a sibling ------------------------------------------------------------------
# A rental is decided from cached siblings; one of them may lag behind what the rental already recorded
# (a Payment not listed yet after a restart, an old watch event). Such a view may delay a step or repeat
# an idempotent action, but must never move the rental, or its summaries, backwards.
STALE_PAYMENTS = {
    "pending": _payment("Pending"),
    "deferred": _payment("Deferred", last_error="circuit open"),
    "not in the cache yet": None,
}


@pytest.mark.parametrize("payment", STALE_PAYMENTS.values(), ids=STALE_PAYMENTS.keys())
def test_stale_payment_does_not_move_a_confirmed_rental_back(payment: api_payment.Payment | None) -> None:
    facts = _facts(_rental(_confirmed("Shipping")), payment=payment, delivery=_delivery("Shipping"))
    plan = rentals.decide(facts)
    assert plan.status.phase == "Confirmed"
    assert _conditions(plan.status) == _conditions(facts.rental.status)
    assert plan.status.payment == facts.rental.status.payment
    assert plan.status.deferred_until is None
    assert _appended(facts, plan) == []
    assert plan.events == ()
    # at most the (idempotent) creation of the Payment it could not see
    assert all(isinstance(action, rentals.CreatePayment) for action in plan.actions)
    if payment is not None:
        assert plan.actions == ()


def test_stale_payment_does_not_move_the_payment_summary_back() -> None:
    status = _cancelling("Cancelled")
    status["payment"]["phase"] = "Refunded"
    facts = _facts(
        _rental(status, cancelled=True),
        purifier=NOT_HOLDING,
        payment=_payment("Approved", transaction="tx-1"),
        delivery=_delivery("Cancelled", cancelled=True),
    )
    plan = rentals.decide(facts)
    assert plan.status.payment is not None
    assert plan.status.payment.phase is api_payment.PaymentPhase.REFUNDED
    assert plan.actions == (rentals.RequestRefund(PAYMENT),)  # asking again is harmless
    assert plan.status.phase == "Cancelling"


STALE_DELIVERIES = {
    "confirmed, shipping after delivered": (
        _confirmed("Delivered"),
        _payment("Approved", transaction="tx-1"),
        _delivery("Shipping"),
    ),
    "confirmed, pending after shipping": (
        _confirmed("Shipping"),
        _payment("Approved", transaction="tx-1"),
        _delivery("Pending"),
    ),
    "cancelled, shipping after cancelled": (
        _cancelled(),
        _payment("Refunded", refund=True),
        _delivery("Shipping", cancelled=True),
    ),
}


@pytest.mark.parametrize(
    ("status", "payment", "delivery"), STALE_DELIVERIES.values(), ids=STALE_DELIVERIES.keys()
)
def test_stale_delivery_does_not_move_the_delivery_summary_back(
    status: dict[str, Any], payment: api_payment.Payment, delivery: api_delivery.Delivery
) -> None:
    """Otherwise a second 'Shipping' history entry would text the customer a second time."""
    rental = _rental(status, cancelled=status["phase"] == "Cancelled")
    facts = _facts(rental, purifier=NOT_HOLDING, payment=payment, delivery=delivery)
    plan = rentals.decide(facts)
    assert plan.status.delivery == rental.status.delivery
    assert _appended(facts, plan) == []
    assert plan.status.phase == status["phase"]


# --- the purifier going away ---------------------------------------------------------------------------
def test_purifier_deleted_while_paying_does_not_reject() -> None:
    facts = _facts(_rental(_awaiting()), purifier=None, payment=_payment("Pending"))
    plan = rentals.decide(facts)
    assert plan.status.phase == "AwaitingPayment"
    assert plan.actions == ()
    assert _appended(facts, plan) == []


def test_purifier_deleted_before_approval_still_confirms_and_delivers() -> None:
    facts = _facts(_rental(_awaiting()), purifier=None, payment=_payment("Approved", transaction="tx-1"))
    plan = rentals.decide(facts)
    assert plan.status.phase == "Confirmed"
    assert plan.actions == (rentals.CreateDelivery(_DELIVERY_SPEC),)


def test_purifier_deleted_then_cancelled_finishes_without_a_release() -> None:
    facts = _facts(
        _rental(_cancelling("Cancelled"), cancelled=True),
        purifier=None,
        payment=_payment("Refunded", refund=True),
        delivery=_delivery("Cancelled", cancelled=True),
    )
    plan = rentals.decide(facts)
    assert plan.actions == ()
    assert plan.status.phase == "Cancelled"


def test_an_in_force_rental_is_not_rejected_when_its_purifier_and_payment_are_unseen() -> None:
    facts = _facts(
        _rental(_confirmed("Shipping")), purifier=None, payment=None, delivery=_delivery("Shipping")
    )
    plan = rentals.decide(facts)
    assert plan.status.phase == "Confirmed"
    assert not any(isinstance(action, rentals.StopDelivery) for action in plan.actions)


def test_a_stale_pending_payment_does_not_reset_the_deferral_deadline() -> None:
    facts = _facts(_rental(_deferred(UNTIL_LATER)), payment=_payment("Pending"))
    plan = rentals.decide(facts)
    assert plan.status.deferred_until == UNTIL_LATER
    assert _appended(facts, plan) == []


@pytest.mark.parametrize("case", ["confirmed, shipping after delivered", "confirmed, pending after shipping"])
def test_stale_delivery_does_not_move_delivery_started_back(case: str) -> None:
    status, payment, delivery = STALE_DELIVERIES[case]
    facts = _facts(_rental(status), payment=payment, delivery=delivery)
    plan = rentals.decide(facts)

    def started(status: api_rental.RentalStatus) -> tuple[str, str, datetime.datetime]:
        (found,) = [c for c in status.conditions if c.type == "DeliveryStarted"]
        return found.status.value, found.reason, found.last_transition_time

    assert started(plan.status) == started(facts.rental.status)


@pytest.mark.parametrize("payment_phase", ["Deferred", "Refunding", "Refunded", "Approved", "Pending"])
def test_a_refund_asked_by_a_lost_rejection_finishes_the_rejection(payment_phase: str) -> None:
    """The deferral expired, the refund was asked, and the Rejected write was lost in a crash (found by
    the chaos runner): the next pass rejects, whatever the payment did meanwhile; it never waits for a
    view to catch up, and never confirms or ships a rental whose fee is being given back."""
    payment = _payment(payment_phase, refund=True, transaction="tx-1", attempts=2)
    facts = _facts(_rental(_deferred(UNTIL_LATER)), purifier=HOLDING, payment=payment)
    plan = rentals.decide(facts)
    assert plan.status.phase == "Rejected"
    assert _conditions(plan.status)["Paid"] == ("False", "DeferralExpired")
    assert rentals.Release(PURIFIER) in plan.actions
    assert not any(isinstance(a, rentals.CreateDelivery | rentals.RequestRefund) for a in plan.actions)


def test_a_refund_on_a_cancelled_rental_is_still_a_cancellation() -> None:
    facts = _facts(
        _rental(_deferred(UNTIL_LATER), cancelled=True),
        purifier=HOLDING,
        payment=_payment("Refunding", refund=True, transaction="tx-1", attempts=2),
    )
    assert rentals.decide(facts).status.phase == "Cancelling"


# --- strangers under the rental's sibling names (issue 13, finding 6) ----------------------------------
OWNER = {"apiVersion": "rental.purifier.io/v1alpha1", "kind": "Rental", "name": NAME, "uid": "uid-1"}


@pytest.mark.parametrize(
    ("references", "uid"),
    [
        ([], None),
        ([{**OWNER, "controller": True}], "uid-1"),
        ([{**OWNER, "controller": False}], None),  # an owner, but not the controller
        ([OWNER], None),
        ([{**OWNER, "kind": "Purifier", "controller": True}], None),
        ([{**OWNER, "apiVersion": "example.com/v1", "controller": True}], None),
        ([{**OWNER, "uid": "other"}, {**OWNER, "uid": "uid-9", "controller": True}], "uid-9"),
        ([{**OWNER, "apiVersion": "rental.purifier.io/v1", "controller": True}], "uid-1"),  # any version
    ],
)
def test_controller_uid_is_the_controlling_rental(references: list[dict[str, Any]], uid: str | None) -> None:
    assert rentals.controller_uid(references) == uid


def test_the_rentals_own_payment_matches() -> None:
    assert rentals.payment_mismatch(_rental(), HOLDING, _payment("Approved"), "uid-1") is None


@pytest.mark.parametrize(
    ("owner", "payment", "named"),
    [
        (None, _payment("Approved"), "no Rental owns it"),
        ("uid-old", _payment("Approved"), "another Rental (uid uid-old)"),
        ("uid-1", _payment("Approved", amount=FEE * 3), f"spec.amount is {FEE * 3}, expected {FEE}"),
    ],
)
def test_a_stranger_payment_is_told_apart(
    owner: str | None, payment: api_payment.Payment, named: str
) -> None:
    mismatch = rentals.payment_mismatch(_rental(), HOLDING, payment, owner)
    assert mismatch is not None
    assert named in mismatch
    assert repr(PAYMENT) in mismatch


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customerId", "cust-8"),
        ("idempotencyKey", "rental-uid-old"),
        ("rental", "r2"),
        ("currency", "USD"),
    ],
)
def test_a_payment_asking_for_another_charge_is_not_the_rentals(field: str, value: str) -> None:
    body = _payment("Approved").model_dump(by_alias=True)
    body["spec"][field] = value
    payment = api_payment.Payment.model_validate(body)
    mismatch = rentals.payment_mismatch(_rental(), HOLDING, payment, "uid-1")
    assert mismatch is not None
    assert f"spec.{field} is {value!r}" in mismatch


def test_the_price_recorded_by_the_rental_wins_over_a_changed_fee() -> None:
    """The fee may change after the charge was made: the rental's own Payment stays its own."""
    repriced = _purifier(holders=[NAME], fee=FEE * 2)
    assert rentals.payment_mismatch(_rental(_awaiting()), repriced, _payment("Pending"), "uid-1") is None
    assert rentals.payment_mismatch(_rental(), repriced, _payment("Pending"), "uid-1") is not None
    # with neither a record nor a Purifier, the price cannot be checked (the rest still is)
    assert rentals.payment_mismatch(_rental(), None, _payment("Pending"), "uid-1") is None


def test_the_rentals_own_delivery_matches_even_after_an_address_change() -> None:
    body = _delivery("Shipping").model_dump(by_alias=True)
    body["spec"]["address"] = "somewhere else"
    delivery = api_delivery.Delivery.model_validate(body)
    assert rentals.delivery_mismatch(_rental(), delivery, "uid-1") is None


@pytest.mark.parametrize(
    ("owner", "field", "named"),
    [
        (None, None, "no Rental owns it"),
        ("uid-old", None, "another Rental (uid uid-old)"),
        ("uid-1", "purifier", "spec.purifier is 'x'"),
        ("uid-1", "customerId", "spec.customerId is 'x'"),
        ("uid-1", "rental", "spec.rental is 'x'"),
    ],
)
def test_a_stranger_delivery_is_told_apart(owner: str | None, field: str | None, named: str) -> None:
    body = _delivery("Delivered").model_dump(by_alias=True)
    if field:
        body["spec"][field] = "x"
    mismatch = rentals.delivery_mismatch(_rental(), api_delivery.Delivery.model_validate(body), owner)
    assert mismatch is not None
    assert named in mismatch


STRANGER = "Payment 'r1' is not this rental's: no Rental owns it; ..."


def test_a_new_rental_facing_a_stranger_payment_reserves_and_confirms_nothing() -> None:
    """The finding: an approved leftover of the same name used to confirm and ship a rental that held no
    unit. Now nothing is reserved or created; the rental reports the stranger and looks again later."""
    facts = _facts(_rental(finalizer=False), purifier=NOT_HOLDING, payment_mismatch=STRANGER)
    plan = rentals.decide(facts)
    assert plan.actions == ()
    assert plan.status.phase is None
    assert plan.status.payment is None
    assert _conditions(plan.status) == {
        "Paid": ("False", "PaymentMismatch"),
        "Ready": ("False", "PaymentMismatch"),
    }
    assert plan.status.message == STRANGER
    assert _events(plan) == [("Warning", "PaymentMismatch")]
    assert plan.requeue_after == rentals.MISMATCH_RECHECK_SECONDS


def test_a_stranger_is_reported_once_not_on_every_look() -> None:
    first = rentals.decide(_facts(_rental(finalizer=False), purifier=NOT_HOLDING, payment_mismatch=STRANGER))
    again = _rental(first.status.model_dump(by_alias=True, mode="json"), finalizer=False)
    plan = rentals.decide(_facts(again, purifier=NOT_HOLDING, payment_mismatch=STRANGER))
    assert plan.events == ()
    assert plan.status == first.status
    assert plan.requeue_after == rentals.MISMATCH_RECHECK_SECONDS


def test_once_the_stranger_is_gone_the_rental_goes_on() -> None:
    blocked = rentals.decide(
        _facts(_rental(finalizer=False), purifier=NOT_HOLDING, payment_mismatch=STRANGER)
    )
    rental = _rental(blocked.status.model_dump(by_alias=True, mode="json"), finalizer=False)
    plan = rentals.decide(_facts(rental, purifier=NOT_HOLDING))
    assert plan.actions == (rentals.AddFinalizer(), rentals.Reserve(PURIFIER))


def test_a_held_unit_stays_held_while_a_stranger_blocks_the_payment() -> None:
    """Found after the reservation (the stranger came back from the Payment's create): no charge, no
    release; the unit waits with the rental, and a cancellation gives it back."""
    plan = rentals.decide(_facts(_rental(_awaiting()), purifier=HOLDING, payment_mismatch=STRANGER))
    assert plan.actions == ()
    assert plan.status.phase == "AwaitingPayment"
    assert _conditions(plan.status)["Paid"] == ("False", "PaymentMismatch")
    assert _conditions(plan.status)["StockReserved"] == ("True", "Reserved")


def test_cancelling_beside_a_stranger_refunds_nothing_of_it() -> None:
    facts = _facts(_rental(_awaiting(), cancelled=True), purifier=HOLDING, payment_mismatch=STRANGER)
    plan = rentals.decide(facts)
    assert not any(isinstance(a, rentals.RequestRefund) for a in plan.actions)
    assert rentals.Release(PURIFIER) in plan.actions


def test_a_paid_rental_facing_a_stranger_delivery_ships_nothing() -> None:
    stranger = "Delivery 'r1' is not this rental's: it belongs to another Rental (uid uid-old); ..."
    facts = _facts(
        _rental(_awaiting()), payment=_payment("Approved", transaction="tx-1"), delivery_mismatch=stranger
    )
    plan = rentals.decide(facts)
    assert plan.actions == ()
    assert plan.status.phase == "Confirmed"
    assert plan.status.delivery is None
    assert _conditions(plan.status)["DeliveryStarted"] == ("False", "DeliveryMismatch")
    assert plan.status.message == stranger
    assert ("Warning", "DeliveryMismatch") in _events(plan)
    assert plan.requeue_after == rentals.MISMATCH_RECHECK_SECONDS
    # gone: the rental's own shipment is created
    settled = _rental(plan.status.model_dump(by_alias=True, mode="json"))
    (action,) = rentals.decide(_facts(settled, payment=_payment("Approved", transaction="tx-1"))).actions
    assert isinstance(action, rentals.CreateDelivery)


def test_the_rental_label_is_the_name_or_a_valid_digest_of_a_long_one() -> None:
    assert rentals.rental_label("kim") == "kim"
    assert rentals.rental_label("a" * 63) == "a" * 63
    long_names = ["a" * 64, "b." * 100 + "c", "x" * 200 + "-y"]
    labels = {rentals.rental_label(name) for name in long_names}
    assert len(labels) == 3
    for label in labels:
        assert len(label) <= 63
        assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", label), label
