"""The text message a customer gets for each transition of their rental or its delivery.

One message per `status.history` entry; the entry's seq makes the idempotency key, so a message
resent after a restart is recognised by the SMS provider and not delivered twice. Texts are plain
(SMS has no markup to inject into), short, and truncated by the sender where the channel needs it.
"""

from __future__ import annotations

from rental_operator.api import rental as api_rental

__all__ = ["format_amount", "idempotency_key", "pending", "text"]

# Minor units per currency unit for the currencies a purifier is likely priced in (ISO 4217).
_EXPONENTS = {
    **dict.fromkeys(("KRW", "JPY", "VND", "CLP", "ISK", "PYG", "UGX", "XAF", "XOF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_SIGN = "[PureRental]"


def format_amount(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "the fee"
    exponent = _EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{amount:,} {currency}"
    return f"{amount / 10**exponent:,.{exponent}f} {currency}"


def idempotency_key(rental: api_rental.Rental, entry: api_rental.HistoryEntry) -> str:
    return f"sms-{rental.metadata.uid}-{entry.seq}"


def pending(rental: api_rental.Rental, sent_through: int) -> list[api_rental.HistoryEntry]:
    """History entries not yet texted: after the larger of the persisted mark and `sent_through`."""
    mark = max(rental.status.notified_seq or 0, sent_through)
    return [entry for entry in rental.status.history if entry.seq > mark]


def text(rental: api_rental.Rental, entry: api_rental.HistoryEntry, model: str | None) -> str:
    who = rental.spec.customer.name or "customer"
    what = model or rental.spec.purifier
    payment = rental.status.payment
    amount = format_amount(payment.amount if payment else None, payment.currency if payment else None)
    ref = f"(ref {rental.metadata.name})"
    if entry.kind == "Delivery":
        delivery = rental.status.delivery
        tracking = delivery.tracking_number if delivery and delivery.tracking_number else "pending"
        body = {
            "Shipping": f"your {what} is on its way. Tracking number: {tracking}.",
            "Delivered": f"your {what} has been delivered. Enjoy clean water!",
            "Cancelled": f"the delivery of your {what} was cancelled.",
            "Returning": f"we are collecting your {what}. Tracking number: {tracking}.",
            "Returned": f"we received your returned {what}. Thank you.",
        }.get(entry.phase, f"your delivery is now {entry.phase}.")
    else:
        body = {
            "Pending": f"we received your application to rent {what} for {rental.spec.months} months.",
            "AwaitingPayment": f"a {what} is reserved for you; we are charging {amount}.",
            "PaymentDeferred": (
                f"our payment system is busy. Your {what} stays reserved and {amount} will be charged "
                "automatically shortly."
            ),
            "Confirmed": f"payment of {amount} received. Your rental of {what} is confirmed.",
            "Cancelling": "we are cancelling your rental as requested.",
            "Cancelled": f"your rental of {what} is cancelled. Anything charged has been refunded.",
            "Rejected": f"sorry, we could not accept your rental of {what}: {entry.message or 'see MyPage'}.",
        }.get(entry.phase, f"your rental is now {entry.phase}.")
    return f"{_SIGN} {who}, {body} {ref}"
