"""The MyPage HTML page: a customer's rentals, readable by a person, on a phone as on a desk.

Plain server-rendered HTML with no script: one section per rental (heading: the purifier), a
description list of its phase, payment, delivery and tracking number, then its monthly contract (the
fee, the months paid of the term, the next charge, the term's end, what cancelling now would cost, a
warning while a charge is past due, the recent charges), and its history as an ordered list with
times. Semantic headings, `lang`, a viewport for phones, and text that says the same as the colours.
Every sentence and label is a msgid in `TEXTS`, translated through the catalogs (`rental_operator.i18n`):
the page is in Korean or English (`lang` says which), with amounts (`33,000원`, `33,000 KRW`) and
dates (`2027년 2월 1일`, Korea's time; `2027-02-01`, UTC) as each language's readers write them.

Every string that comes from users or objects (customer id, names, models, messages, tracking
numbers, currency codes) passes through `_escape`: first the plain-text rules the text messages use
(`reconcilers.notifications.plain`: control characters become spaces, bidirectional overrides and
other invisible format characters, lone surrogates and noncharacters go, so the page always encodes
as UTF-8 and reads in the order it is written), then `html.escape` with quotes, so markup in a value
shows as text. Nothing is inserted unescaped but the page's own markup and numbers. Called by
`mypage.server`.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from rental_operator import i18n
from rental_operator.api import money
from rental_operator.mypage import projection
from rental_operator.reconcilers import notifications

__all__ = ["STYLE", "TEXTS", "format_amount", "humanize", "render"]

_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")
# Longer than any string field the page shows may be (status messages: 1024), so nothing is cut.
_FIELD_LIMIT: Final = 2048

# Phases a customer can stop worrying about: shown in a calm colour (the text says it too).
_GOOD: Final = frozenset({"Confirmed", "Approved", "Delivered", "Refunded", "Cancelled", "Returned"})
_BAD: Final = frozenset({"Rejected", "Declined", "Failed"})

# What the page says: the English source texts (msgids), looked up in the page's language's catalog
# (`operator/locale/*/LC_MESSAGES/messages.po`) by key; `{names}` are filled with values already
# escaped. The markup is the same in every language.
TEXTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "title": i18n.N_("My rentals \u2014 {customer}"),
        "heading": i18n.N_("My rentals"),
        "intro": i18n.N_(
            "Customer <strong>{customer}</strong>, {count}. Status as of {as_of}; reload the page to refresh."
        ),
        "count_none": i18n.N_("no rentals"),
        "count_one": i18n.N_("1 rental"),
        "count_many": i18n.N_("{count} rentals"),
        "no_rentals": i18n.N_("You have no rentals yet."),
        "status": i18n.N_("Status"),
        "purifier": i18n.N_("Purifier"),
        "payment": i18n.N_("Payment"),
        "delivery": i18n.N_("Delivery"),
        "tracking": i18n.N_("Tracking number"),
        "rental": i18n.N_("Rental"),
        "rental_where": i18n.N_("{name} in {namespace}"),
        "updated": i18n.N_("Last update"),
        "not_started": i18n.N_("not started"),
        "unknown_time": i18n.N_("unknown time"),
        "history": i18n.N_("History"),
        "no_history": i18n.N_("No changes yet."),
        "entry_rental": i18n.N_("Rental"),
        "entry_delivery": i18n.N_("Delivery"),
        "entry_billing": i18n.N_("Billing"),
        "monthly_fee": i18n.N_("Monthly fee"),
        "term": i18n.N_("Term"),
        "months_paid": i18n.N_("{paid} of {total} months paid"),
        "next_charge": i18n.N_("Next charge"),
        "next_charge_at": i18n.N_("{amount} on {date}"),
        "nothing_owed": i18n.N_("none: every month of the term is paid"),
        "term_ends": i18n.N_("Term ends"),
        "cancel_refund": i18n.N_("If you cancel now: full refund of {amount}"),
        "cancel_fee": i18n.N_("If you cancel now: an early-termination fee of {amount}"),
        "cancel_free": i18n.N_("If you cancel now: no fee"),
        "past_due": i18n.N_(
            "Payment overdue: the charge for month {period} was declined ({attempts} attempts since {since})."
        ),
        "past_due_retry": i18n.N_("We will try again on {date}; please check your payment method."),
        "past_due_final": i18n.N_("No further attempts will be made."),
        "charges": i18n.N_("Recent charges"),
        "charge": i18n.N_("Month {period}: {amount}, {date}"),
        "charge_unnumbered": i18n.N_("{amount}, {date}"),
    }
)

STYLE: Final = """
:root { color-scheme: light dark; --muted: #5b6470; --line: #d5d9de; }
@media (prefers-color-scheme: dark) { :root { --muted: #a8b0ba; --line: #3a4048; } }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; }
main { max-width: 44rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.25rem; margin: 0 0 0.5rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.25rem; }
.meta { color: var(--muted); margin-top: 0; }
article { border: 1px solid var(--line); border-radius: 0.5rem; padding: 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.phase { font-weight: 700; }
.good { color: #1a7f37; } .bad { color: #b42318; }
@media (prefers-color-scheme: dark) { .good { color: #5fd07a; } .bad { color: #ff8a80; } }
ol { margin: 0; padding-left: 1.25rem; }
li { margin: 0.25rem 0; }
time { font-variant-numeric: tabular-nums; }
.message { color: var(--muted); }
.warning { border-left: 0.25rem solid currentColor; padding-left: 0.5rem; }
"""


# Phases as words for people; a phase this table does not know is shown split into words, untranslated.
_PHASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Pending": i18n.N_("Pending"),
        "AwaitingPayment": i18n.N_("Awaiting payment"),
        "PaymentDeferred": i18n.N_("Payment deferred"),
        "Confirmed": i18n.N_("Confirmed"),
        "PastDue": i18n.N_("Past due"),
        "Cancelling": i18n.N_("Cancelling"),
        "Cancelled": i18n.N_("Cancelled"),
        "Completed": i18n.N_("Completed"),
        "Rejected": i18n.N_("Rejected"),
        "Approved": i18n.N_("Approved"),
        "Declined": i18n.N_("Declined"),
        "Deferred": i18n.N_("Deferred"),
        "Refunding": i18n.N_("Refunding"),
        "Refunded": i18n.N_("Refunded"),
        "Failed": i18n.N_("Failed"),
        "Shipping": i18n.N_("Shipping"),
        "Delivered": i18n.N_("Delivered"),
        "Returning": i18n.N_("Returning"),
        "Returned": i18n.N_("Returned"),
        "Charged": i18n.N_("Charged"),
        "ChargeDeclined": i18n.N_("Charge declined"),
        "TermEnding": i18n.N_("Term ending"),
        "FeeCharged": i18n.N_("Fee charged"),
    }
)


def humanize(phase: str | None, language: i18n.Language = "en") -> str:
    """`AwaitingPayment` -> `Awaiting payment` (`결제 대기` in Korean); None -> an em dash."""
    if not phase:
        return "\u2014"
    if phase in _PHASES:
        return i18n.messages(language).gettext(_PHASES[phase])
    words = _CAMEL.split(phase)
    return " ".join([words[0], *(word.lower() for word in words[1:])])


def format_amount(amount: int | None, currency: str | None, language: i18n.Language = "en") -> str:
    """An amount in minor units for people: `360000, KRW` -> `360,000 KRW` (`360,000원` in Korean);
    `1999, USD` -> `19.99 USD`.

    The same figure as the text message's (`api.money` is the one source of currency exponents).
    """
    if amount is None:
        return "\u2014"
    return money.format_amount(amount, currency, locale=language)


@dataclasses.dataclass(frozen=True)
class _Words:
    """The page's language: its catalog, for every helper that writes words, amounts or dates."""

    language: i18n.Language

    def __call__(self, key: str, /, **values: object) -> str:
        """`TEXTS[key]` in the page's language, `{names}` filled with `values` (already escaped)."""
        return i18n.messages(self.language).gettext(TEXTS[key], **values)


def _timestamp(seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(t: _Words, seconds: int | None, *, day_only: bool = False) -> str:
    if not seconds or seconds <= 0:
        return t("unknown_time")
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    shown = (i18n.format_date if day_only else i18n.format_datetime)(moment, t.language)
    return f'<time datetime="{_timestamp(seconds)}">{html.escape(shown)}</time>'


def _date(t: _Words, seconds: int | None) -> str:
    # Dates, not times, for the contract: a customer plans for the day a charge comes.
    return _time(t, seconds, day_only=True)


def _escape(value: str) -> str:
    """`value` as HTML text: cleaned like a text message's values, then escaped, quotes included."""
    return html.escape(notifications.plain(value, _FIELD_LIMIT), quote=True)


def _phase(t: _Words, phase: str | None) -> str:
    tone = " good" if phase in _GOOD else " bad" if phase in _BAD else ""
    return f'<span class="phase{tone}">{_escape(humanize(phase, t.language))}</span>'


# The operator's own words for its steps (`reconcilers.rentals` and `contract`), kept in English in the
# status (for `kubectl`, Events and automation) and shown in the customer's language when they are
# one of these fixed sentences; anything else (a partner's reason, a message with figures) is shown as
# written.
OPERATOR_MESSAGES: Final = frozenset(
    {
        i18n.N_("application received"),
        i18n.N_("a unit is reserved; taking payment"),
        i18n.N_("paid; delivery started"),
        i18n.N_(
            "the payment system is busy; the unit stays reserved and the fee will be charged automatically"
        ),
        i18n.N_("delivery shipping"),
        i18n.N_("delivery delivered"),
        i18n.N_("delivery cancelled"),
        i18n.N_("delivery returning"),
        i18n.N_("delivery returned"),
        i18n.N_("monthly fee charged"),
        i18n.N_("the last period is paid; the unit becomes yours when the term ends"),
        i18n.N_("the early-termination fee was charged"),
        i18n.N_("every month is paid and the term is over: the unit is now yours"),
        i18n.N_("cancelled by the customer: refunding, stopping delivery, releasing the unit"),
        i18n.N_(
            "cancelled by the customer within the withdrawal period: "
            "refunding every charge, stopping delivery"
        ),
        i18n.N_("cancelled by the customer; everything was undone"),
        i18n.N_("cancelled by the customer; billing stopped and the unit was collected"),
        i18n.N_("ended for non-payment; the unit was collected"),
        i18n.N_("the payment system did not recover in time; the reservation was released"),
        i18n.N_(
            "cancelled by the customer after the withdrawal period: billing stopped; collecting the unit"
        ),
        i18n.N_(
            "the monthly charge stayed unpaid after every retry: "
            "the contract ends and the unit is collected; nothing is refunded"
        ),
    }
)

# The operator's sentences that carry a value, as it writes them (`reconcilers.rentals`), and the
# sentence shown instead: the frame in the page's language, the value as written (a partner's reason,
# a purifier's name: nobody can translate those) or, for a fee, as money in the page's language.
OPERATOR_PATTERNS: Final = (
    (re.compile(r"payment declined: (?P<reason>.+)", re.DOTALL), i18n.N_("payment declined: {reason}")),
    (re.compile(r"payment failed: (?P<reason>.+)", re.DOTALL), i18n.N_("payment failed: {reason}")),
    (
        re.compile(r"no Purifier named '(?P<purifier>[^']+)' in this namespace"),
        i18n.N_("no Purifier named {purifier} in this namespace"),
    ),
    (
        re.compile(r"every unit of (?P<purifier>\S+) is rented out"),
        i18n.N_("every unit of {purifier} is rented out"),
    ),
    (
        re.compile(
            r"cancelled by the customer after the withdrawal period: billing stopped; collecting the unit"
            r" and charging the early-termination fee of (?P<fee>[0-9]+) (?P<currency>[A-Z]{3})"
        ),
        i18n.N_(
            "cancelled by the customer after the withdrawal period: billing stopped; collecting the unit"
            " and charging the early-termination fee of {fee}"
        ),
    ),
)


def _said(t: _Words, message: str | None) -> str:
    """An operator message for the page: in the page's language when it is one of the fixed ones or
    of the patterns; anything else as written."""
    if message in OPERATOR_MESSAGES:
        return _escape(i18n.messages(t.language).gettext(message))
    for pattern, sentence in OPERATOR_PATTERNS:
        if message and (found := pattern.fullmatch(message)):
            values = found.groupdict()
            if "fee" in values:
                values["fee"] = format_amount(int(values["fee"]), values.pop("currency"), t.language)
            shown = {name: _shown(value) for name, value in values.items()}
            if all(shown.values()):  # a value of only invisible characters: show the message as written
                return html.escape(i18n.messages(t.language).gettext(sentence)).format_map(shown)
    return _shown(message)


def _shown(*values: str | None) -> str:
    """The first value that still says something once cleaned (a name of only invisible characters
    does not), escaped; empty if none does."""
    return next((text for text in (_escape(value) for value in values if value) if text), "")


def _money(t: _Words, amount: int | None, currency: str | None) -> str:
    return _escape(format_amount(amount, currency, t.language))


def _contract_rows(t: _Words, rental: projection.Rental) -> list[tuple[str, str]]:
    """The contract's lines in the description list: fee, months paid, next charge, term end."""
    terms = rental.billing
    if terms is None:
        return []
    fee = _money(t, terms.monthly_fee, terms.currency)
    if terms.next_charge_at is not None:
        upcoming = t("next_charge_at", amount=fee, date=_date(t, terms.next_charge_at))
    else:
        upcoming = t("nothing_owed")
    return [
        (t("monthly_fee"), fee),
        (t("term"), t("months_paid", paid=terms.periods_paid, total=terms.periods_total)),
        (t("next_charge"), upcoming),
        (t("term_ends"), _date(t, terms.term_ends_at)),
    ]


def _cancellation(t: _Words, rental: projection.Rental, now: float) -> str:
    """What cancelling now would cost, as a sentence under the contract; empty if not in force."""
    cancel = projection.cancellation(rental, now)
    if cancel is None or rental.billing is None:
        return ""
    currency = rental.billing.currency
    if cancel.refund:
        preview = t("cancel_refund", amount=_money(t, cancel.refund, currency))
    elif cancel.fee:
        preview = t("cancel_fee", amount=_money(t, cancel.fee, currency))
    else:
        preview = t("cancel_free")
    return f"<p>{preview}</p>"


def _past_due(t: _Words, rental: projection.Rental) -> str:
    """The warning while a monthly charge is declined and retried; empty otherwise."""
    late = rental.billing.past_due if rental.billing else None
    if late is None:
        return ""
    warning = t("past_due", period=late.period, attempts=late.attempts, since=_date(t, late.since))
    if late.next_attempt_at is not None:
        then = t("past_due_retry", date=_date(t, late.next_attempt_at))
    else:
        then = t("past_due_final")
    return f'<p class="warning bad"><strong>{warning}</strong> {then}</p>'


def _charges(t: _Words, rental: projection.Rental) -> str:
    if not rental.charges:
        return ""
    currency = rental.billing.currency if rental.billing else rental.currency
    lines = "".join(
        "<li>"
        + t(
            "charge" if charge.period else "charge_unnumbered",
            period=charge.period,
            amount=_money(t, charge.amount, currency),
            date=_date(t, charge.at),
        )
        + "</li>"
        for charge in rental.charges
    )
    return f"<h3>{t('charges')}</h3><ol>{lines}</ol>"


_ENTRY_KINDS: Final = {"Delivery": "entry_delivery", "Billing": "entry_billing"}


def _rental(t: _Words, index: int, rental: projection.Rental, now: float) -> str:
    e = _escape
    title = _shown(rental.display_name, rental.model, rental.purifier)
    heading_id = f"rental-{index}"
    payment = _phase(t, rental.payment_phase)
    if rental.amount is not None:
        payment += f", {_money(t, rental.amount, rental.currency)}"
    rows = [
        (t("status"), _phase(t, rental.phase)),
        (t("purifier"), f"{_shown(rental.model, rental.purifier)} ({e(rental.purifier)})"),
        (t("payment"), payment if rental.payment_phase else t("not_started")),
        (t("delivery"), _phase(t, rental.delivery_phase) if rental.delivery_phase else t("not_started")),
        (t("tracking"), e(rental.tracking_number) if rental.tracking_number else "\u2014"),
        *_contract_rows(t, rental),
        (t("rental"), t("rental_where", name=e(rental.name), namespace=e(rental.namespace))),
        (t("updated"), _time(t, rental.updated_at)),
    ]
    details = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    message = f'<p class="message">{text}</p>' if (text := _said(t, rental.message)) else ""
    if rental.history:
        entries = "".join(
            f"<li>{_time(t, entry.at)}: {t(_ENTRY_KINDS.get(entry.kind, 'entry_rental'))} "
            f"{_phase(t, entry.phase)}"
            + (f' <span class="message">\u2014 {text}</span>' if (text := _said(t, entry.message)) else "")
            + "</li>"
            for entry in rental.history
        )
        history = f"<h3>{t('history')}</h3><ol>{entries}</ol>"
    else:
        history = f"<h3>{t('history')}</h3><p>{t('no_history')}</p>"
    return (
        f'<article aria-labelledby="{heading_id}"><h2 id="{heading_id}">{title}</h2>'
        f"{message}{_past_due(t, rental)}<dl>{details}</dl>{_cancellation(t, rental, now)}"
        f"{_charges(t, rental)}{history}</article>"
    )


def render(
    customer: str,
    rentals: Sequence[projection.Rental],
    *,
    as_of: float,
    now: float,
    language: i18n.Language = "en",
) -> str:
    """The whole page for `customer` in `language`: the projection as of `as_of`, cancellations priced
    at `now`. `mypage.server` passes the language negotiated from the request's `Accept-Language`."""
    e, t = _escape, _Words(language)
    if rentals:
        count = t("count_one") if len(rentals) == 1 else t("count_many", count=len(rentals))
        body = "".join(_rental(t, index, rental, now) for index, rental in enumerate(rentals))
    else:
        count = t("count_none")
        body = f"<p>{t('no_rentals')}</p>"
    intro = t("intro", customer=e(customer), count=count, as_of=_time(t, int(as_of)))
    return (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{t('title', customer=e(customer))}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{t('heading')}</h1>"
        f'<p class="meta">{intro}</p>'
        f"{body}</main></body></html>\n"
    )
