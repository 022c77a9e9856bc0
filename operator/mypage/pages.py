"""The MyPage HTML page: a customer's rentals, readable by a person, on a phone as on a desk.

Plain server-rendered HTML with no script: one section per rental (heading: the purifier), a
description list of its phase, payment, delivery and tracking number, and its history as an ordered
list with times. Semantic headings, `lang`, a viewport for phones, and text that says the same as
the colours. Every string that comes from users or objects (customer id, names, models, messages,
tracking numbers) passes through `_escape`: first the plain-text rules the text messages use
(`reconcilers.notifications.plain`: control characters become spaces, bidirectional overrides and
other invisible format characters, lone surrogates and noncharacters go, so the page always encodes
as UTF-8 and reads in the order it is written), then `html.escape` with quotes, so markup in a value
shows as text. Nothing is inserted unescaped but the page's own markup. Called by `mypage.server`.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Sequence
from typing import Final

from rental_operator.api import money
from rental_operator.mypage import projection
from rental_operator.reconcilers import notifications

__all__ = ["STYLE", "format_amount", "humanize", "render"]

_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")
# Longer than any string field the page shows may be (status messages: 1024), so nothing is cut.
_FIELD_LIMIT: Final = 2048

# Phases a customer can stop worrying about: shown in a calm colour (the text says it too).
_GOOD: Final = frozenset({"Confirmed", "Approved", "Delivered", "Refunded", "Cancelled", "Returned"})
_BAD: Final = frozenset({"Rejected", "Declined", "Failed"})

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
"""


def humanize(phase: str | None) -> str:
    """`AwaitingPayment` -> `Awaiting payment`; None -> an em dash."""
    if not phase:
        return "\u2014"
    words = _CAMEL.split(phase)
    return " ".join([words[0], *(word.lower() for word in words[1:])])


def format_amount(amount: int | None, currency: str | None) -> str:
    """An amount in minor units for people: `360000, KRW` -> `360,000 KRW`; `1999, USD` -> `19.99 USD`.

    The same figure as the text message's (`api.money` is the one source of currency exponents).
    """
    if amount is None:
        return "\u2014"
    return money.format_amount(amount, currency)


def _timestamp(seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(seconds: int) -> str:
    if seconds <= 0:
        return "unknown time"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f'<time datetime="{_timestamp(seconds)}">{moment.strftime("%Y-%m-%d %H:%M")} UTC</time>'


def _escape(value: str) -> str:
    """`value` as HTML text: cleaned like a text message's values, then escaped, quotes included."""
    return html.escape(notifications.plain(value, _FIELD_LIMIT), quote=True)


def _phase(phase: str | None) -> str:
    tone = " good" if phase in _GOOD else " bad" if phase in _BAD else ""
    return f'<span class="phase{tone}">{_escape(humanize(phase))}</span>'


def _shown(*values: str | None) -> str:
    """The first value that still says something once cleaned (a name of only invisible characters
    does not), escaped; empty if none does."""
    return next((text for text in (_escape(value) for value in values if value) if text), "")


def _rental(index: int, rental: projection.Rental) -> str:
    e = _escape
    title = _shown(rental.display_name, rental.model, rental.purifier)
    heading_id = f"rental-{index}"
    payment = _phase(rental.payment_phase)
    if rental.amount is not None:
        payment += f", {e(format_amount(rental.amount, rental.currency))}"
    rows = [
        ("Status", _phase(rental.phase)),
        ("Purifier", f"{_shown(rental.model, rental.purifier)} ({e(rental.purifier)})"),
        ("Payment", payment if rental.payment_phase else "not started"),
        ("Delivery", _phase(rental.delivery_phase) if rental.delivery_phase else "not started"),
        ("Tracking number", e(rental.tracking_number) if rental.tracking_number else "\u2014"),
        ("Rental", f"{e(rental.name)} in {e(rental.namespace)}"),
        ("Last update", _time(rental.updated_at)),
    ]
    details = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    message = f'<p class="message">{text}</p>' if (text := _shown(rental.message)) else ""
    if rental.history:
        entries = "".join(
            f"<li>{_time(entry.at)}: {'Delivery' if entry.kind == 'Delivery' else 'Rental'} "
            f"{_phase(entry.phase)}"
            + (f' <span class="message">\u2014 {text}</span>' if (text := _shown(entry.message)) else "")
            + "</li>"
            for entry in rental.history
        )
        history = f"<h3>History</h3><ol>{entries}</ol>"
    else:
        history = "<h3>History</h3><p>No changes yet.</p>"
    return (
        f'<article aria-labelledby="{heading_id}"><h2 id="{heading_id}">{title}</h2>'
        f"{message}<dl>{details}</dl>{history}</article>"
    )


def render(customer: str, rentals: Sequence[projection.Rental], *, as_of: float) -> str:
    """The whole page for `customer`."""
    e = _escape
    if rentals:
        count = "1 rental" if len(rentals) == 1 else f"{len(rentals)} rentals"
        body = "".join(_rental(index, rental) for index, rental in enumerate(rentals))
    else:
        count = "no rentals"
        body = "<p>You have no rentals yet.</p>"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>My rentals \u2014 {e(customer)}</title><style>{STYLE}</style></head>"
        "<body><main><h1>My rentals</h1>"
        f'<p class="meta">Customer <strong>{e(customer)}</strong>, {count}. '
        f"Status as of {_time(int(as_of))}; reload the page to refresh.</p>"
        f"{body}</main></body></html>\n"
    )
