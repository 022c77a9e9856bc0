"""pages.OPERATOR_MESSAGES: the operator's fixed sentences, as `reconcilers.rentals` writes them into a
rental's history, are the ones the page translates (a reworded sentence would silently stay English)."""

from __future__ import annotations

import datetime
import html
import re
from typing import Any

from rental_operator import i18n
from rental_operator.api import payment as api_payment
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.mypage import pages, projection
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


def _korean(message: str) -> str:
    """A rental whose status says `message`, rendered on the Korean page: the card's message line."""
    view = projection.Projection()
    view.apply(
        "Rental",
        None,
        {
            "kind": "Rental",
            "metadata": {"name": "kim", "namespace": "shop", "resourceVersion": "1"},
            "spec": {"purifier": "aqua", "customer": {"id": "c-1"}},
            "status": {"phase": "Rejected", "message": message},
        },
    )
    view.mark_ready()
    page = pages.render("c-1", view.rentals_of("c-1"), as_of=0, now=0, language="ko")
    found = re.search(r'<p class="message">(.*?)</p>', page)
    assert found, page
    return html.unescape(found.group(1))


def _rejected(
    purifier: api_purifier.Purifier | None, payment: api_payment.Payment | None, *, refused: bool = False
) -> str:
    facts = rentals.Facts(
        rental=_rental({}),
        purifier=purifier,
        payment=payment,
        delivery=None,
        now=NOW,
        deferral_timeout=datetime.timedelta(hours=1),
        reservation_refused=refused,
    )
    return rentals.decide(facts).status.message or ""


def _refused(phase: str, error: str) -> api_payment.Payment:
    payment = _payment(phase)
    return payment.model_copy(update={"status": payment.status.model_copy(update={"last_error": error})})


def test_the_operators_sentences_with_values_are_shown_in_korean_with_the_values_as_written() -> None:
    cases = {
        _rejected(None, None): "aqua 정수기를 찾을 수 없습니다",
        _rejected(_purifier(holding=False), None, refused=True): "aqua 정수기는 모두 렌탈 중입니다",
        _rejected(_purifier(holding=True), _refused("Declined", "card expired")): (
            "결제가 승인되지 않았습니다(사유: card expired)"
        ),
        _rejected(_purifier(holding=True), _refused("Failed", "invalid card number")): (
            "결제를 처리하지 못했습니다(사유: invalid card number)"
        ),
    }
    for written, korean in cases.items():
        assert any(pattern.fullmatch(written) for pattern, _ in pages.OPERATOR_PATTERNS), written
        assert _korean(written) == korean, written


def test_the_fee_in_a_termination_is_shown_as_won() -> None:
    written = rentals._cancelling_message(
        "cancelled by the customer",
        api_rental.Ending.TERMINATION,
        api_rental.Billing.model_validate(
            {
                "monthlyFee": 30_000,
                "currency": "KRW",
                "periodsTotal": 36,
                "mandatoryMonths": 36,
                "earlyTerminationPercent": 10,
                "feeAmount": 152_660,
            }
        ),
    )
    assert _korean(written) == (
        "청약철회 기간이 지난 뒤 고객님의 요청으로 렌탈을 해지합니다. "
        "청구를 멈추고 제품을 회수하며, 위약금(152,660원)을 청구합니다"
    )


def test_a_value_that_says_nothing_leaves_the_message_as_written() -> None:
    # A partner's reason of only invisible characters: no "(사유: )" with nothing in it.
    assert _korean("payment declined: \u200b") == "payment declined:"
    assert _korean("payment declined: <b>no</b>") == "결제가 승인되지 않았습니다(사유: <b>no</b>)"


def test_the_fixed_sentences_of_an_ending_are_translated() -> None:
    terms = api_rental.Billing.model_validate(
        {
            "monthlyFee": 30_000,
            "currency": "KRW",
            "periodsTotal": 36,
            "mandatoryMonths": 0,
            "earlyTerminationPercent": 0,
        }
    )
    written = [
        rentals._DEFERRAL_EXPIRED,
        rentals._cancelling_message("cancelled by the customer", api_rental.Ending.TERMINATION, terms),
        rentals._cancelling_message(
            "the monthly charge stayed unpaid after every retry", api_rental.Ending.NON_PAYMENT, terms
        ),
    ]
    for message in written:
        assert message in pages.OPERATOR_MESSAGES, message
        assert _korean(message) == i18n.messages("ko").gettext(message) != message
