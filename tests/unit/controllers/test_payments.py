"""controllers.payments: the charge and refund calls a Payment needs, and the statuses they write."""

from __future__ import annotations

from typing import Any

import pytest

from rental_operator import kubeapi
from rental_operator.controllers import payments
from rental_operator.partners import errors

RETRY = 5.0  # the world's RENTAL_PAYMENT_RETRY_SECONDS


def _reconcile(world: Any, name: str = "kim-p1") -> None:
    payments.reconcile(world.ctx, "shop", name)


def test_a_new_payment_is_charged_once_under_its_key_and_approved(world: Any, make: Any) -> None:
    world.add(make.payment(key="rental-uid-9-p1", amount=30_000))
    _reconcile(world)

    (request,) = world.payments.charges
    assert request == {
        "amount": 30_000,
        "currency": "KRW",
        "customer_id": "cust-1",
        "reference": "shop/kim",
        "idempotency_key": "rental-uid-9-p1-a1",  # the charge's key, attempt 1
    }
    status = world.kube.status("Payment", "kim-p1")
    assert (status["phase"], status["transactionId"], status["attempts"]) == ("Approved", "tx-1", 1)
    assert status["attempt"] == 1
    assert world.conditions("Payment", "kim-p1")["Paid"] == ("True", "PaymentApproved")
    # the write-ahead (attempts: 1 before the request leaves), then the answer
    assert world.kube.count("replace_status", "Payment") == 2
    assert world.events.reasons("kim-p1") == ["PaymentApproved"]
    assert world.scheduler.waiting == {}


def test_an_approved_payment_is_left_alone(world: Any, make: Any) -> None:
    world.add(make.payment(status={"phase": "Approved", "transactionId": "tx-0", "attempts": 1}))
    _reconcile(world)
    assert world.payments.charges == []
    assert world.kube.count("replace_status", "Payment") == 0


def test_an_open_breaker_defers_without_a_request_or_a_write_ahead(world: Any, make: Any) -> None:
    world.payments.breaker = "open"
    world.add(make.payment())
    _reconcile(world)
    assert world.payments.charges == []
    status = world.kube.status("Payment", "kim-p1")
    assert (status["phase"], status["attempts"]) == ("Deferred", 0)
    assert "circuit breaker open" in status["lastError"]
    assert world.scheduler.delay("Payment", "shop", "kim-p1") == RETRY
    assert world.events.reasons("kim-p1") == ["PaymentDeferred"]


_REFUSED = errors.PartnerUnavailable("refused", partner="payments", kind="connection", outcome_unknown=False)
_TIMEOUT = errors.PartnerUnavailable("timeout", partner="payments", kind="timeout", outcome_unknown=True)
# the partner's failure -> (phase, attempts recorded, retry after)
CHARGE_FAILURES: list[tuple[Exception, tuple[str, int, float | None]]] = [
    (_REFUSED, ("Deferred", 0, RETRY)),  # surely never arrived: not an attempt
    (_TIMEOUT, ("Deferred", 1, RETRY)),
    (errors.BreakerOpen("open", partner="payments", retry_after=60.0), ("Deferred", 1, 60.0)),
    (
        errors.PartnerRejected("429", partner="payments", status_code=429, error="later"),
        ("Deferred", 1, RETRY),
    ),
    (errors.PartnerRejected("422", partner="payments", status_code=422, error="bad"), ("Failed", 1, None)),
    (errors.PartnerProtocolError("garbled", partner="payments", status_code=200), ("Deferred", 1, RETRY)),
]


@pytest.mark.parametrize(("error", "expected"), CHARGE_FAILURES)
def test_each_failure_of_a_charge(
    world: Any, make: Any, error: Exception, expected: tuple[str, int, float | None]
) -> None:
    world.payments.answers = [error]
    world.add(make.payment())
    _reconcile(world)
    status = world.kube.status("Payment", "kim-p1")
    retry = world.scheduler.delay("Payment", "shop", "kim-p1")
    assert (status["phase"], status["attempts"], retry) == expected
    assert status["lastError"] == str(error)


def test_a_decline_is_final_and_a_warning(world: Any, make: Any) -> None:
    world.payments.answers = [make.charge("declined", "tx-7", reason="insufficient funds")]
    world.add(make.payment())
    _reconcile(world)
    status = world.kube.status("Payment", "kim-p1")
    assert (status["phase"], status["lastError"]) == ("Declined", "insufficient funds")
    (event,) = world.events.recorded
    assert (event.type, event.reason, event.message) == ("Warning", "PaymentDeclined", "insufficient funds")
    assert world.scheduler.waiting == {}


def test_a_deferred_payment_is_charged_on_the_next_try(world: Any, make: Any) -> None:
    world.payments.answers = [
        errors.PartnerUnavailable("timeout", partner="payments", kind="timeout", outcome_unknown=True)
    ]
    world.add(make.payment())
    _reconcile(world)
    world.scheduler.run("Payment", "shop", "kim-p1")
    status = world.kube.status("Payment", "kim-p1")
    assert (status["phase"], status["attempts"]) == ("Approved", 2)
    assert [c["idempotency_key"] for c in world.payments.charges] == ["rental-uid-x-p1-a1"] * 2


def test_a_refund_of_an_approved_charge(world: Any, make: Any) -> None:
    world.add(make.payment(refund=True, status={"phase": "Approved", "transactionId": "tx-3", "attempts": 1}))
    _reconcile(world)
    ((transaction, key),) = world.payments.refunds
    assert transaction == "tx-3"
    assert key not in ("rental-uid-x-p1", "rental-uid-x-p1-a1")  # derived from the charge's key, not the same
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Refunded"
    assert world.conditions("Payment", "kim-p1")["Refunded"] == ("True", "Refunded")


@pytest.mark.parametrize(
    ("error", "message", "retry"),
    [
        (
            errors.PartnerUnavailable("503", partner="payments", kind="server_error", outcome_unknown=True),
            "503",
            RETRY,
        ),
        (
            errors.PartnerRejected("409", partner="payments", status_code=409, error="no"),
            "refused: 409",
            RETRY * 6,
        ),
    ],
)
def test_a_refund_that_fails_stays_requested(
    world: Any, make: Any, error: Exception, message: str, retry: float
) -> None:
    world.payments.refund_answers = [error]
    world.add(make.payment(refund=True, status={"phase": "Approved", "transactionId": "tx-3", "attempts": 1}))
    _reconcile(world)
    status = world.kube.status("Payment", "kim-p1")
    assert (status["phase"], status["lastError"]) == ("Refunding", message)
    assert world.scheduler.delay("Payment", "shop", "kim-p1") == retry


def test_a_refund_before_any_charge_request_settles_without_a_call(world: Any, make: Any) -> None:
    world.add(make.payment(refund=True, status={"phase": "Deferred", "attempts": 0}))
    _reconcile(world)
    assert world.payments.charges == world.payments.refunds == []
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Refunded"
    assert world.conditions("Payment", "kim-p1")["Paid"] == ("False", "NotCharged")


def test_a_refund_of_an_unknown_outcome_learns_it_first_under_the_same_key(world: Any, make: Any) -> None:
    world.add(make.payment(refund=True, status={"phase": "Deferred", "attempts": 1}))
    _reconcile(world)
    assert [c["idempotency_key"] for c in world.payments.charges] == ["rental-uid-x-p1-a1"]
    assert [r[0] for r in world.payments.refunds] == ["tx-1"]
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Refunded"


def test_a_conflicting_write_ahead_is_decided_again_on_a_fresh_read(world: Any, make: Any) -> None:
    world.add(make.payment())
    world.kube.fail("replace_status", kubeapi.Conflict("modified"))
    _reconcile(world)
    assert len(world.payments.charges) == 1  # no request left before the write-ahead landed
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Approved"
    assert world.kube.count("get", "Payment") == 2  # not in the store at first, then the re-read


def test_a_lost_answer_write_is_retried_later_under_the_same_key(world: Any, make: Any) -> None:
    world.add(make.payment(status={"phase": "Pending", "attempts": 1}))
    world.kube.fail("replace_status", kubeapi.Conflict("modified"))
    _reconcile(world)
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Pending"
    assert world.scheduler.delay("Payment", "shop", "kim-p1") == RETRY
    world.scheduler.run("Payment", "shop", "kim-p1")
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Approved"
    assert [c["idempotency_key"] for c in world.payments.charges] == ["rental-uid-x-p1-a1"] * 2


def test_a_failed_pass_is_retried_later(world: Any, make: Any) -> None:
    world.add(make.payment())
    world.kube.fail("replace_status", RuntimeError("API server went away"))
    _reconcile(world)
    assert world.payments.charges == []  # the write-ahead failed: no request left
    assert world.scheduler.delay("Payment", "shop", "kim-p1") == RETRY
    world.scheduler.run("Payment", "shop", "kim-p1")
    assert world.kube.status("Payment", "kim-p1")["phase"] == "Approved"


def test_a_payment_that_does_not_exist_is_nothing_to_do(world: Any) -> None:
    _reconcile(world, "nobody-p1")
    assert world.scheduler.waiting == {}


def test_a_changed_status_reconciles_the_owning_rental_at_once(world: Any, make: Any) -> None:
    world.add(make.purifier())
    world.add(make.rental())
    world.add(make.payment())
    _reconcile(world)  # the payment named after the rental changed: the rental is looked at
    assert ("get", "Rental", "kim") in world.kube.calls


# --- the monthly contract: a declined charge retried under a key of its own ---------------------------------
DECLINED = {"phase": "Declined", "attempt": 1, "attempts": 1, "lastError": "insufficient funds"}


def test_a_declined_monthly_charge_is_not_charged_again_until_the_rental_asks(world: Any, make: Any) -> None:
    world.add(make.payment(period=2, status=DECLINED))
    _reconcile(world, "kim-p2")
    assert world.payments.charges == []
    assert world.kube.count("replace_status", "Payment") == 0


def test_a_new_attempt_at_a_monthly_charge_is_sent_under_its_own_key_and_approved(
    world: Any, make: Any
) -> None:
    world.add(make.payment(period=2, attempt=2, status=DECLINED))
    _reconcile(world, "kim-p2")

    assert [c["idempotency_key"] for c in world.payments.charges] == ["rental-uid-x-p2-a2"]
    status = world.kube.status("Payment", "kim-p2")
    assert (status["phase"], status["attempt"], status["attempts"]) == ("Approved", 2, 1)
    assert "lastError" not in status
    # the new attempt's write-ahead (Pending, attempt 2), then the answer
    assert world.kube.count("replace_status", "Payment") == 2
    assert world.events.reasons("kim-p2") == ["PaymentApproved"]


def test_a_new_attempt_whose_answer_is_lost_is_asked_again_under_the_same_attempts_key(
    world: Any, make: Any
) -> None:
    world.payments.answers = [_TIMEOUT]
    world.add(make.payment(period=2, attempt=2, status=DECLINED))
    _reconcile(world, "kim-p2")
    assert world.kube.status("Payment", "kim-p2")["phase"] == "Deferred"
    world.scheduler.run("Payment", "shop", "kim-p2")
    assert [c["idempotency_key"] for c in world.payments.charges] == ["rental-uid-x-p2-a2"] * 2
    status = world.kube.status("Payment", "kim-p2")
    assert (status["phase"], status["attempt"], status["attempts"]) == ("Approved", 2, 2)


def test_a_new_attempt_deferred_by_the_open_breaker_is_sent_under_its_own_key(world: Any, make: Any) -> None:
    # the payment system keeps attempt 1's decline under its key
    world.payments.answered["rental-uid-x-p2-a1"] = make.charge(
        "declined", "tx-0", reason="insufficient funds"
    )
    world.payments.breaker = "open"
    world.add(make.payment(period=2, attempt=2, status=DECLINED))
    _reconcile(world, "kim-p2")
    assert world.payments.charges == []
    world.payments.breaker = "closed"
    world.scheduler.run("Payment", "shop", "kim-p2")
    assert [c["idempotency_key"] for c in world.payments.charges] == ["rental-uid-x-p2-a2"]
    assert world.kube.status("Payment", "kim-p2")["phase"] == "Approved"
