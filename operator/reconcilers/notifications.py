"""The text message a customer gets for each transition of their rental or its delivery.

One message per `status.history` entry; the entry's seq makes the idempotency key, so a message
resent after a restart is recognised by the SMS provider and not delivered twice.

Each text is in the customer's language (`spec.customer.language`, else `RENTAL_DEFAULT_LANGUAGE`,
chosen by `controllers.notifier` through `language_of`): the sentences are msgids of the gettext
catalogs (`rental_operator.i18n`), English in the code and Korean in
`operator/locale/ko/LC_MESSAGES/messages.po`; amounts and dates are written for that language
(`33,000원`, `2027년 2월 4일` in Korea's time). Korean texts are always UCS-2 in SMS, so the notifier
gives them 201 UTF-16 units (three segments): every Korean text fits with a usual name, model and
tracking number (tests/unit/controllers/test_notifier.py), and a longer one is cut between
characters, the reference (last) going first.

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

from rental_operator import i18n
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
    "language_of",
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


def format_amount(amount: int | None, currency: str | None, language: i18n.Language = "en") -> str:
    """The amount a text names: `36,000 XPF`, `19.99 USD`, the figure MyPage shows (`api.money`);
    in Korean `33,000원`."""
    if amount is None or currency is None:
        return i18n.messages(language).gettext("the fee")
    return money.format_amount(amount, currency, locale=language)


def idempotency_key(rental: api_rental.Rental, entry: api_rental.HistoryEntry) -> str:
    return f"sms-{rental.metadata.uid}-{entry.seq}"


def pending(rental: api_rental.Rental, sent_through: int) -> list[api_rental.HistoryEntry]:
    """History entries not yet texted: after the larger of the persisted mark and `sent_through`."""
    mark = max(rental.status.notified_seq or 0, sent_through)
    return [entry for entry in rental.status.history if entry.seq > mark]


def language_of(rental: api_rental.Rental, default: i18n.Language) -> i18n.Language:
    """The language the customer reads: their `spec.customer.language`, else `default` (the setting)."""
    return rental.spec.customer.language or default


# The texts per phase, as msgids (English; the catalogs hold the Korean). Korean has no articles and
# puts particles after nouns, so the Korean texts attach particles only to words of their own, never
# to a value (a model name or an amount may end in any letter).
_RENTAL_TEXTS: Final = {
    "Pending": i18n.N_("we received your application to rent {what} for {months} months."),
    "AwaitingPayment": i18n.N_("a {what} is reserved for you; we are charging {amount}."),
    "PaymentDeferred": i18n.N_(
        "our payment system is busy. Your {what} stays reserved and {amount} will be charged "
        "automatically shortly."
    ),
    "Confirmed": i18n.N_("payment of {amount} received. Your rental of {what} is confirmed."),
    "PastDue": i18n.N_("your monthly payment for {what} is overdue; we will try again."),
    "Cancelling": i18n.N_("we are ending your rental of {what}: {reason}."),
    "Cancelled": i18n.N_("your rental of {what} has ended: {reason}."),
    "Completed": i18n.N_("your rental term is complete and the {what} is now yours. Thank you!"),
    "Rejected": i18n.N_("sorry, we could not accept your rental of {what}: {reason}."),
}
_DELIVERY_TEXTS: Final = {
    "Shipping": i18n.N_("your {what} is on its way. Tracking number: {tracking}."),
    "Delivered": i18n.N_("your {what} has been delivered. Enjoy clean water!"),
    "Cancelled": i18n.N_("the delivery of your {what} was cancelled."),
    "Returning": i18n.N_("we are collecting your {what}. Tracking number: {tracking}."),
    "Returned": i18n.N_("we received your returned {what}. Thank you."),
}


def text(
    rental: api_rental.Rental,
    entry: api_rental.HistoryEntry,
    model: str | None,
    *,
    language: i18n.Language = "en",
) -> str:
    """The message for `entry` in `language` (default: English, the catalogs' source language): one
    line, at most `TEXT_LIMIT` code points, every user value `plain`."""
    m = i18n.messages(language)
    who = plain(rental.spec.customer.name or "", NAME_LIMIT)
    what = plain(model or "", MODEL_LIMIT) or plain(rental.spec.purifier, MODEL_LIMIT)
    payment = rental.status.payment
    amount = format_amount(
        payment.amount if payment else None, payment.currency if payment else None, language
    )
    ref = plain(rental.metadata.name or "", 253)
    reason = plain(entry.message or "", MESSAGE_LIMIT) or m.gettext("see MyPage")
    if entry.kind == "Billing":
        body = _billing_text(m, rental, entry, what, reason)
    elif entry.kind == "Delivery":
        delivery = rental.status.delivery
        tracking = plain(delivery.tracking_number or "", TRACKING_LIMIT) if delivery else ""
        tracking = tracking or m.gettext("pending")
        if entry.phase in _DELIVERY_TEXTS:
            body = m.gettext(_DELIVERY_TEXTS[entry.phase], what=what, tracking=tracking)
        else:
            body = m.gettext("your delivery is now {phase}.", phase=plain(entry.phase, 32))
    elif entry.phase in _RENTAL_TEXTS:
        body = m.gettext(
            _RENTAL_TEXTS[entry.phase], what=what, amount=amount, reason=reason, months=rental.spec.months
        )
    else:
        body = m.gettext("your rental is now {phase}.", phase=plain(entry.phase, 32))
    if who:
        whole = m.gettext("[PureRental] {name}, {body} (ref {ref})", name=who, body=body, ref=ref)
    else:
        whole = m.gettext("[PureRental] customer, {body} (ref {ref})", body=body, ref=ref)
    return plain(whole, TEXT_LIMIT)


def _date(m: i18n.Messages, at: datetime.datetime | None) -> str:
    if at is None:
        # TRANSLATORS: stands for a date in "On {date} the {what} becomes yours" when none is known.
        return m.gettext("soon")
    if at.tzinfo is None:
        at = at.replace(tzinfo=datetime.UTC)
    return i18n.format_date(at, m.language)


def _billing_text(
    m: i18n.Messages, rental: api_rental.Rental, entry: api_rental.HistoryEntry, what: str, reason: str
) -> str:
    """A receipt, a declined charge with what happens next, the term's end coming, or a fee."""
    billing = rental.status.billing
    amount = format_amount(entry.amount, billing.currency if billing else None, m.language)
    if entry.period and billing:
        period = m.gettext("month {period} of {total}", period=entry.period, total=billing.periods_total)
    else:
        period = m.gettext("this month")
    values = {"amount": amount, "period": period, "what": what, "reason": reason}
    match entry.phase:
        case "Charged":
            return m.gettext("we received {amount} for {period} of your {what} rental. Thank you.", **values)
        case "ChargeDeclined":
            if entry.due_at is None:
                return m.gettext(
                    "the payment of {amount} for {period} was declined ({reason}); it will not be retried.",
                    **values,
                )
            return m.gettext(
                "the payment of {amount} for {period} was declined ({reason}). We will try again on "
                "{date}; please check your payment method.",
                date=_date(m, entry.due_at),
                **values,
            )
        case "TermEnding":
            return m.gettext(
                "your last monthly payment is made. On {date} the {what} becomes yours.",
                date=_date(m, entry.due_at),
                what=what,
            )
        case "FeeCharged":
            return m.gettext(
                "an early-termination fee of {amount} was charged for your {what} rental.", **values
            )
    return m.gettext("your rental's billing: {phase}.", phase=plain(entry.phase, 32))


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
