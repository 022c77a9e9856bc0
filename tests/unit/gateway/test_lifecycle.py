"""The transition rules of payments and shipments, one status at a time."""

from __future__ import annotations

import pytest

from rental_gateway import lifecycle

P = lifecycle.PaymentStatus
S = lifecycle.ShipmentStatus


def test_refund_moves_an_approved_payment_and_repeats_harmlessly() -> None:
    assert lifecycle.refund(P.APPROVED) is P.REFUNDED
    assert lifecycle.refund(P.REFUNDED) is P.REFUNDED


def test_a_declined_payment_cannot_be_refunded() -> None:
    with pytest.raises(lifecycle.TransitionError, match="declined"):
        lifecycle.refund(P.DECLINED)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(S.SHIPPING, S.CANCELLED), (S.CANCELLED, S.CANCELLED)],
)
def test_cancel_is_allowed_only_before_delivery(status: S, expected: S) -> None:
    assert lifecycle.cancel(status) is expected


@pytest.mark.parametrize("status", [S.DELIVERED, S.RETURNING, S.RETURNED])
def test_cancel_after_delivery_is_refused(status: S) -> None:
    with pytest.raises(lifecycle.TransitionError):
        lifecycle.cancel(status)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(S.DELIVERED, S.RETURNING), (S.RETURNING, S.RETURNING), (S.RETURNED, S.RETURNED)],
)
def test_return_is_allowed_only_after_delivery(status: S, expected: S) -> None:
    assert lifecycle.request_return(status) is expected


@pytest.mark.parametrize("status", [S.SHIPPING, S.CANCELLED])
def test_return_before_delivery_is_refused(status: S) -> None:
    with pytest.raises(lifecycle.TransitionError, match="only a delivered shipment"):
        lifecycle.request_return(status)


def test_the_carrier_advances_shipping_and_returning_only() -> None:
    assert lifecycle.advance(S.SHIPPING) is S.DELIVERED
    assert lifecycle.advance(S.RETURNING) is S.RETURNED
    for resting in (S.DELIVERED, S.CANCELLED, S.RETURNED):
        with pytest.raises(lifecycle.TransitionError):
            lifecycle.advance(resting)
