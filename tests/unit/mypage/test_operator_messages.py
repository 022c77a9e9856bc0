"""pages.OPERATOR_MESSAGES: the operator's fixed sentences, as `reconcilers.rentals` writes them into a
rental's history, are the ones the page translates (a reworded sentence would silently stay English)."""

from __future__ import annotations

import datetime
from typing import Any

from rental_operator import i18n
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.mypage import pages
from rental_operator.reconcilers import rentals

NOW = datetime.datetime(2027, 3, 1, 9, 0, tzinfo=datetime.UTC)


def _rental(status: dict[str, Any], *, cancelled: bool = False) -> api_rental.Rental:
    return api_rental.Rental.model_validate(
        {
            "metadata": {"name": "kim", "namespace": "shop", "uid": "u-1", "finalizers": [rentals.FINALIZER]},
            "spec": {
                "purifier": "aqua",
                "customer": {"id": "c-1", "phone": "+821012345678", "address": "서울"},
                "cancelled": cancelled,
            },
            "status": status,
        }
    )


def _purifier(*, holding: bool) -> api_purifier.Purifier:
    entry = {"rental": "kim", "uid": "u-1", "operation": "Reserve" if holding else "Release"}
    return api_purifier.Purifier.model_validate(
        {
            "metadata": {"name": "aqua", "namespace": "shop"},
            "spec": {"model": "Aqua", "monthlyFee": 30_000, "stock": 2},
            "status": {"allocated": int(holding), "pending": [entry]},
        }
    )


def _payment(phase: str) -> api_payment.Payment:
    return api_payment.Payment.model_validate(
        {
            "metadata": {"name": "kim-p1", "namespace": "shop", "uid": "p-1"},
            "spec": {
                "rental": "kim",
                "period": 1,
                "amount": 30_000,
                "currency": "KRW",
                "customerId": "c-1",
                "idempotencyKey": "rental-u-1-p1",
            },
            "status": {"phase": phase, "attempt": 1, "attempts": 1},
        }
    )


def _messages(facts: rentals.Facts) -> tuple[rentals.Facts, set[str]]:
    plan = rentals.decide(facts)
    written = {entry.message or "" for entry in plan.status.history} | {plan.status.message or ""}
    rental = facts.rental.model_copy(update={"status": plan.status})
    return rentals.Facts(**{**facts.__dict__, "rental": rental}), written


def test_the_operators_sentences_for_an_application_and_its_cancellation_are_translated() -> None:
    base = rentals.Facts(
        rental=_rental({}),
        purifier=_purifier(holding=True),
        payment=None,
        delivery=None,
        now=NOW,
        deferral_timeout=datetime.timedelta(hours=1),
    )
    facts, said = _messages(base)  # Pending, AwaitingPayment
    facts, confirmed = _messages(rentals.Facts(**{**facts.__dict__, "payment": _payment("Approved")}))
    cancelling = rentals.Facts(
        **{**facts.__dict__, "rental": _rental(facts.rental.status.model_dump(by_alias=True), cancelled=True)}
    )
    cancelling, withdrawn = _messages(cancelling)
    done = rentals.Facts(
        **{**cancelling.__dict__, "payment": _payment("Refunded"), "purifier": _purifier(holding=False)}
    )
    _, cancelled = _messages(done)
    assert {"application received", "paid; delivery started"} <= said | confirmed
    assert "cancelled by the customer; everything was undone" in cancelled
    for message in said | confirmed | withdrawn | cancelled:
        assert message in pages.OPERATOR_MESSAGES, message
        assert i18n.messages("ko").gettext(message) != message, message
