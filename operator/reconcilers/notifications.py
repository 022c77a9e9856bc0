"""The text message a customer gets for each transition of their rental or its delivery.

One message per `status.history` entry; the entry's seq makes the idempotency key, so a message
resent after a restart is recognised by the SMS provider and not delivered twice.

Texts are plain: SMS has no markup, so `<script>` in a name is just those characters and needs no
escaping. What does need care is that names, models and messages are written by customers and
administrators and may hold anything Unicode allows. Every such value goes through `plain` before
it is put in a text (docs/hostile-input.md has the rules):

- control characters (C0, C1, DEL), line and paragraph separators become spaces, and runs of
  whitespace one space, so a text is always one line and no terminal or phone interprets it;
- invisible format characters are dropped, bidirectional overrides and marks included (they could
  make the rest of the message display reversed), except the joiners and tag characters that emoji
  and scripts need; lone surrogates and noncharacters are dropped (they cannot be encoded);
- each value is capped (`NAME_LIMIT`, ...) in code points, cut between user-perceived characters
  (`clusters`), never inside an emoji sequence, a flag or a decomposed Hangul syllable, with `...`
  (ASCII, so a GSM-7 text stays GSM-7), and the whole text at `TEXT_LIMIT` code points.

The sender's channel limit (SMS segments, counted in GSM-7 septets or UTF-16 units) is applied on
top by `controllers.notifier` with `partners.sms.truncate_for_sms`, which cuts with `clusters` too.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Iterator
from typing import Final

from rental_operator.api import money
from rental_operator.api import rental as api_rental

__all__ = [
    "MESSAGE_LIMIT",
    "MODEL_LIMIT",
    "NAME_LIMIT",
    "TEXT_LIMIT",
    "clusters",
    "format_amount",
    "idempotency_key",
    "pending",
    "plain",
    "text",
]

# Caps in code points for what users write, chosen so a text keeps its own words whatever they wrote:
# a name as long as anyone's, a model name, a reason, and the rental's name (a DNS name, up to 253).
NAME_LIMIT: Final = 40
MODEL_LIMIT: Final = 60
MESSAGE_LIMIT: Final = 120
TRACKING_LIMIT: Final = 40
# Three concatenated GSM-7 segments: the most the notifier ever sends (it cuts UCS-2 texts shorter).
TEXT_LIMIT: Final = 459
_ELLIPSIS: Final = "..."

_ZWJ: Final = "\u200d"
_KEPT_FORMAT: Final = frozenset({_ZWJ, "\u200c"})  # joiners: emoji sequences, Indic and Persian script

_SIGN = "[PureRental]"


def format_amount(amount: int | None, currency: str | None) -> str:
    """The amount a text names: `36,000 XPF`, `19.99 USD`, the figure MyPage shows (`api.money`)."""
    if amount is None or currency is None:
        return "the fee"
    return money.format_amount(amount, currency)


def idempotency_key(rental: api_rental.Rental, entry: api_rental.HistoryEntry) -> str:
    return f"sms-{rental.metadata.uid}-{entry.seq}"


def pending(rental: api_rental.Rental, sent_through: int) -> list[api_rental.HistoryEntry]:
    """History entries not yet texted: after the larger of the persisted mark and `sent_through`."""
    mark = max(rental.status.notified_seq or 0, sent_through)
    return [entry for entry in rental.status.history if entry.seq > mark]


def text(rental: api_rental.Rental, entry: api_rental.HistoryEntry, model: str | None) -> str:
    """The message for `entry`: one line, at most `TEXT_LIMIT` code points, every user value `plain`."""
    who = plain(rental.spec.customer.name or "", NAME_LIMIT) or "customer"
    what = plain(model or "", MODEL_LIMIT) or plain(rental.spec.purifier, MODEL_LIMIT)
    payment = rental.status.payment
    amount = format_amount(payment.amount if payment else None, payment.currency if payment else None)
    ref = f"(ref {plain(rental.metadata.name or '', 253)})"
    reason = plain(entry.message or "", MESSAGE_LIMIT) or "see MyPage"
    if entry.kind == "Billing":
        body = _billing_text(rental, entry, what, reason)
    elif entry.kind == "Delivery":
        delivery = rental.status.delivery
        tracking = plain(delivery.tracking_number or "", TRACKING_LIMIT) if delivery else ""
        tracking = tracking or "pending"
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
            "PastDue": f"your monthly payment for {what} is overdue; we will try again.",
            "Cancelling": f"we are ending your rental of {what}: {reason}.",
            "Cancelled": f"your rental of {what} has ended: {reason}.",
            "Completed": f"your rental term is complete and the {what} is now yours. Thank you!",
            "Rejected": f"sorry, we could not accept your rental of {what}: {reason}.",
        }.get(entry.phase, f"your rental is now {plain(entry.phase, 32)}.")
    return plain(f"{_SIGN} {who}, {body} {ref}", TEXT_LIMIT)


def _date(at: datetime.datetime | None) -> str:
    return at.date().isoformat() if at is not None else "soon"


def _billing_text(rental: api_rental.Rental, entry: api_rental.HistoryEntry, what: str, reason: str) -> str:
    """A receipt, a declined charge with what happens next, the term's end coming, or a fee."""
    currency = rental.status.billing.currency if rental.status.billing else None
    amount = format_amount(entry.amount, currency)
    period = (
        f"month {entry.period} of {rental.status.billing.periods_total}"
        if (entry.period and rental.status.billing)
        else "this month"
    )
    match entry.phase:
        case "Charged":
            return f"we received {amount} for {period} of your {what} rental. Thank you."
        case "ChargeDeclined":
            if entry.due_at is None:
                return (
                    f"the payment of {amount} for {period} was declined ({reason}); it will not be retried."
                )
            return (
                f"the payment of {amount} for {period} was declined ({reason}). We will try again on "
                f"{_date(entry.due_at)}; please check your payment method."
            )
        case "TermEnding":
            return f"your last monthly payment is made. On {_date(entry.due_at)} the {what} becomes yours."
        case "FeeCharged":
            return f"an early-termination fee of {amount} was charged for your {what} rental."
    return f"your rental's billing: {plain(entry.phase, 32)}."


def plain(value: str, limit: int) -> str:
    """`value` made safe for a one-line plain text and at most `limit` code points long (see above)."""
    if limit < len(_ELLIPSIS):
        raise ValueError(f"limit must be at least {len(_ELLIPSIS)}")
    kept: list[str] = []
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" or category in ("Zl", "Zp", "Zs"):
            kept.append(" ")
        elif category == "Cf" and char not in _KEPT_FORMAT and not 0xE0020 <= ord(char) <= 0xE007F:
            continue  # bidi overrides and marks, zero-width spaces, BOM, soft hyphen, ...
        elif category == "Cs" or _is_noncharacter(char):
            continue
        else:
            kept.append(char)
    cleaned = " ".join("".join(kept).split())
    if len(cleaned) <= limit:
        return cleaned
    head: list[str] = []
    used = 0
    budget = limit - len(_ELLIPSIS)
    for cluster in clusters(cleaned):
        if used + len(cluster) > budget:
            break
        head.append(cluster)
        used += len(cluster)
    return "".join(head).rstrip() + _ELLIPSIS


def _is_noncharacter(char: str) -> bool:
    code = ord(char)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def clusters(value: str) -> Iterator[str]:
    """User-perceived characters, approximately (UAX #29 without its tables): enough not to split one.

    Joins combining marks, variation selectors, emoji modifiers and ZWJ sequences, tag sequences
    (subdivision flags), pairs of regional indicators (flags), conjoining Hangul jamo and CRLF.
    """
    cluster = ""
    for char in value:
        if cluster and _continues(cluster, char):
            cluster += char
            continue
        if cluster:
            yield cluster
        cluster = char
    if cluster:
        yield cluster


def _continues(cluster: str, char: str) -> bool:
    code = ord(char)
    if cluster[-1] == _ZWJ or (cluster == "\r" and char == "\n"):
        return True
    if _is_regional_indicator(char):
        # Flags are pairs of regional indicators: join the second to the first, not a third.
        return len(cluster) == 1 and _is_regional_indicator(cluster)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants (conjoining jamo)
        or 0xD7B0 <= code <= 0xD7FF
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF
