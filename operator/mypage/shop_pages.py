"""The web app's HTML: the catalog, a purifier with its apply form, the cancellation step, and the
live section MyPage's page gains (each rental's phase, updated by `/static/mypage.js`, and its Cancel
link).

Plain server-rendered HTML that works without script; the one stylesheet and the one script are
served from this origin (`/static/`), so the Content-Security-Policy stays `'self'` and nothing comes
from a third party. Readable on a phone (viewport, one column, targets at least 44 px high),
accessible (one `h1` per page, labelled fields with their error text tied by `aria-describedby`,
`role="alert"` on a refused form, visible focus, text that says what colours say).

Every visible sentence and label is in `TEXTS`, one catalog, so the i18n work can move it into
message catalogs without touching the markup; money goes through `api.money`. Every value from users
or objects is cleaned like a text message's (`reconcilers.notifications.plain`) and `html.escape`d.
Called by `mypage.shop` and `mypage.server`.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from rental_operator.api import money
from rental_operator.mypage import projection
from rental_operator.reconcilers import notifications

__all__ = [
    "CANCELLABLE",
    "TEXTS",
    "cancel_page",
    "catalog",
    "live_section",
    "message_page",
    "purifier_page",
    "terms_for",
]

# Rentals a customer may cancel from the web app: in force, or not in force yet.
CANCELLABLE: Final = frozenset({"Pending", "AwaitingPayment", "PaymentDeferred", "Confirmed", "PastDue"})
_TERMS: Final = (12, 24, 36, 48, 60)
_FIELD_LIMIT: Final = 2048

TEXTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "site": "Purifier rental",
        "nav_label": "Site",
        "nav_catalog": "Purifiers",
        "nav_mypage": "My rentals",
        "nav_signed_in": "Signed in as {customer}",
        "catalog_title": "Purifiers for rent",
        "catalog_intro": "Choose a purifier to see its terms and apply.",
        "catalog_empty": "No purifiers are offered right now.",
        "monthly_fee": "Monthly fee",
        "model": "Model",
        "per_month": "{amount} a month",
        "no_fee": "not for rent yet",
        "mandatory": "Mandatory period",
        "mandatory_none": "none: you may end the contract at any time without a fee",
        "mandatory_months": "{months} months",
        "early_rule": "Ending early",
        "early_rule_text": (
            "If you cancel within the first {months} months (after the withdrawal period), you pay "
            "{percent}% of the monthly fees of the mandatory months not yet paid."
        ),
        "early_rule_free": "Ending early costs no fee.",
        "withdrawal_rule": (
            "Before delivery, and for a short period after it, you may withdraw: every charge is refunded."
        ),
        "availability": "Availability",
        "available": "A unit is free now",
        "unavailable": "No unit free right now: you may still apply and your application waits for one",
        "details": "Terms and application",
        "apply_heading": "Apply",
        "apply_intro": "The first month is charged when the application is accepted; then once a month.",
        "sign_in_to_apply": "Sign in with the link we sent you to apply.",
        "field_name": "Your name",
        "field_phone": "Mobile number",
        "field_phone_hint": "In international form, for example +821012345678.",
        "field_address": "Delivery address",
        "field_months": "Contract term",
        "term_months": "{months} months",
        "submit_apply": "Apply for this purifier",
        "form_refused": "The application was not sent. Please correct the fields marked below.",
        "rule_name": "Enter at most 200 characters.",
        "rule_phone": "Enter a mobile number in international form: + and country code, e.g. +821012345678.",
        "rule_address": "Enter the delivery address (1 to 500 characters).",
        "rule_months": "Choose one of the terms offered (at least the mandatory period).",
        "rule_purifier": "This purifier cannot be rented.",
        "rule_form": "The application could not be accepted: {detail}",
        "too_many_title": "Too many open applications",
        "too_many": (
            "You have {count} applications still being processed (at most {limit}). Wait until one is "
            "confirmed or refused, or cancel one on My rentals, then apply again."
        ),
        "unavailable_title": "Not available right now",
        "unavailable_text": "Applying and cancelling are not possible at the moment. Please try again later.",
        "forbidden_title": "Not allowed",
        "forbidden_text": (
            "This page expired or was not sent from this site. Go back, reload it and try again."
        ),
        "not_yours": "This rental belongs to another customer.",
        "not_found_title": "Not found",
        "not_found": "There is no such purifier or rental.",
        "sign_in_title": "Sign-in needed",
        "sign_in_text": "Open the link we sent you to sign in.",
        "live_heading": "Live status",
        "live_intro": "Updated automatically while this page is open.",
        "live_none": "No rentals yet.",
        "live_purifier": "{purifier}",
        "live_cancel": "Cancel {purifier}",
        "cancel_title": "Cancel your rental",
        "cancel_what": "Rental {name} of {purifier}",
        "cancel_now": "If you cancel now:",
        "cancel_refund": "Every charge is refunded: {amount}. The delivery is stopped or the unit collected.",
        "cancel_fee": (
            "The months already paid are not refunded, and an early-termination fee of {amount} is "
            "charged once. The unit is collected."
        ),
        "cancel_free": "The months already paid are not refunded; no fee is charged. The unit is collected.",
        "cancel_before": "Nothing has been charged for good yet: any payment taken is refunded.",
        "cancel_done_already": "This rental is already {phase}: there is nothing to cancel.",
        "submit_cancel": "Yes, cancel this rental",
        "keep": "No, keep it",
        "phase_Pending": "Application received",
        "phase_AwaitingPayment": "Awaiting payment",
        "phase_PaymentDeferred": "Payment deferred",
        "phase_Confirmed": "Confirmed",
        "phase_PastDue": "Payment past due",
        "phase_Cancelling": "Cancelling",
        "phase_Cancelled": "Cancelled",
        "phase_Completed": "Completed",
        "phase_Rejected": "Rejected",
        "delivery_none": "not shipped yet",
        "delivery_Pending": "preparing",
        "delivery_Shipping": "on its way",
        "delivery_Delivered": "delivered",
        "delivery_Cancelled": "shipment cancelled",
        "delivery_Returning": "being collected",
        "delivery_Returned": "collected",
        "delivery_label": "Delivery",
    }
)


def _escape(value: str) -> str:
    return html.escape(notifications.plain(value, _FIELD_LIMIT), quote=True)


def _t(key: str, **values: str) -> str:
    """`TEXTS[key]` escaped, with `values` (escaped here) filled in."""
    text = html.escape(TEXTS[key], quote=True)
    return text.format(**{name: _escape(value) for name, value in values.items()}) if values else text


def _money(amount: int, currency: str | None) -> str:
    return money.format_amount(amount, currency)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def phase_words(phase: str) -> str:
    return TEXTS.get(f"phase_{phase}", phase)


def delivery_words(phase: str | None) -> str:
    return TEXTS.get(f"delivery_{phase}", phase or "") if phase else TEXTS["delivery_none"]


def terms_for(purifier: projection.Purifier) -> list[int]:
    """The terms offered: the usual ones no shorter than the mandatory period, and that period itself."""
    floor = max(1, purifier.mandatory_months)
    terms = {term for term in _TERMS if term >= floor}
    if purifier.mandatory_months and purifier.mandatory_months not in terms:
        terms.add(purifier.mandatory_months)
    return sorted(terms)


def _shell(title: str, body: str, *, customer: str | None, script: bool = False) -> str:
    nav = f'<a href="/shop">{_t("nav_catalog")}</a>'
    if customer:
        nav += f' <a href="/mypage/{_q(customer)}">{_t("nav_mypage")}</a>'
        nav += f' <span class="who">{_t("nav_signed_in", customer=customer)}</span>'
    tail = '<script src="/static/mypage.js" defer></script>' if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_escape(title)} \u2014 {_t('site')}</title>"
        '<link rel="stylesheet" href="/static/shop.css"></head><body>'
        f'<header><nav aria-label="{_t("nav_label")}">{nav}</nav></header>'
        f"<main>{body}</main>{tail}</body></html>\n"
    )


def _name(purifier: projection.Purifier) -> str:
    return purifier.display_name or purifier.model or purifier.name


def _terms_rows(purifier: projection.Purifier) -> str:
    fee = (
        _t("per_month", amount=_money(purifier.monthly_fee, purifier.currency))
        if purifier.monthly_fee
        else _t("no_fee")
    )
    mandatory = (
        _t("mandatory_months", months=str(purifier.mandatory_months))
        if purifier.mandatory_months
        else _t("mandatory_none")
    )
    rule = (
        _t(
            "early_rule_text",
            months=str(purifier.mandatory_months),
            percent=str(purifier.early_termination_percent),
        )
        if purifier.mandatory_months and purifier.early_termination_percent
        else _t("early_rule_free")
    )
    free = (
        f'<span class="good">{_t("available")}</span>'
        if purifier.available > 0
        else f'<span class="muted">{_t("unavailable")}</span>'
    )
    rows = [
        ("model", _escape(purifier.model or "\u2014")),
        ("monthly_fee", fee),
        ("mandatory", mandatory),
        ("early_rule", f"{rule} {_t('withdrawal_rule')}"),
        ("availability", free),
    ]
    return "<dl>" + "".join(f"<dt>{_t(key)}</dt><dd>{value}</dd>" for key, value in rows) + "</dl>"


def catalog(purifiers: Sequence[projection.Purifier], *, customer: str | None) -> str:
    items = []
    for index, purifier in enumerate(purifiers):
        link = f"/shop/{_q(purifier.namespace)}/{_q(purifier.name)}"
        items.append(
            f'<article aria-labelledby="p{index}"><h2 id="p{index}">{_escape(_name(purifier))}</h2>'
            f'{_terms_rows(purifier)}<p><a class="button" href="{html.escape(link)}">{_t("details")}'
            f'<span class="visually-hidden">: {_escape(_name(purifier))}</span></a></p></article>'
        )
    listing = "".join(items) or f"<p>{_t('catalog_empty')}</p>"
    body = f"<h1>{_t('catalog_title')}</h1><p>{_t('catalog_intro')}</p>{listing}"
    return _shell(TEXTS["catalog_title"], body, customer=customer)


def _field(key: str, label: str, control: str, errors: Mapping[str, str], hint: str = "") -> str:
    described = []
    extra = ""
    if hint:
        described.append(f"{key}-hint")
        extra += f'<p class="hint" id="{key}-hint">{hint}</p>'
    if key in errors:
        described.append(f"{key}-error")
        extra += f'<p class="error" id="{key}-error">{errors[key]}</p>'
    attributes = f' aria-describedby="{" ".join(described)}"' if described else ""
    if key in errors:
        attributes += ' aria-invalid="true"'
    field = control.format(attrs=attributes)
    return f'<div class="field"><label for="{key}">{label}</label>{extra}{field}</div>'


def purifier_page(
    purifier: projection.Purifier,
    *,
    customer: str | None,
    csrf_token: str = "",
    application: str = "",
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """The purifier's terms and, for a signed-in customer, the apply form (with `errors` by field,
    already in words and escaped, and the `values` entered)."""
    values = values or {}
    errors = errors or {}
    name = _name(purifier)
    body = f"<h1>{_escape(name)}</h1>{_terms_rows(purifier)}<h2>{_t('apply_heading')}</h2>"
    if not customer:
        return _shell(name, body + f"<p>{_t('sign_in_to_apply')}</p>", customer=None)
    if not purifier.monthly_fee:
        return _shell(name, body + f"<p>{_t('no_fee')}</p>", customer=customer)
    chosen = values.get("months", str(terms_for(purifier)[0]))
    options = "".join(
        f'<option value="{term}"{" selected" if str(term) == chosen else ""}>'
        f"{_t('term_months', months=str(term))}</option>"
        for term in terms_for(purifier)
    )
    alert = ""
    if errors:
        general = f"<p>{errors['']}</p>" if "" in errors else ""
        alert = (
            '<div class="alert" role="alert" tabindex="-1" id="form-errors">'
            f"<p>{_t('form_refused')}</p>{general}</div>"
        )

    def value(key: str) -> str:
        return html.escape(values.get(key, ""), quote=True)

    form = (
        f"<p>{_t('apply_intro')}</p>{alert}"
        f'<form method="post" action="/shop/{_q(purifier.namespace)}/{_q(purifier.name)}" novalidate>'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf_token)}">'
        f'<input type="hidden" name="application" value="{html.escape(application)}">'
        + _field(
            "name",
            _t("field_name"),
            '<input id="name" name="name" autocomplete="name" maxlength="200" '
            f'value="{value("name")}"{{attrs}}>',
            errors,
        )
        + _field(
            "phone",
            _t("field_phone"),
            f'<input id="phone" name="phone" type="tel" autocomplete="tel" inputmode="tel" required '
            f'value="{value("phone")}"{{attrs}}>',
            errors,
            _t("field_phone_hint"),
        )
        + _field(
            "address",
            _t("field_address"),
            f'<textarea id="address" name="address" autocomplete="street-address" rows="3" maxlength="500" '
            f"required{{attrs}}>{value('address')}</textarea>",
            errors,
        )
        + _field(
            "months",
            _t("field_months"),
            f'<select id="months" name="months"{{attrs}}>{options}</select>',
            errors,
        )
        + f'<button type="submit">{_t("submit_apply")}</button></form>'
    )
    return _shell(name, body + form, customer=customer)


def _cancel_link(customer: str, rental: projection.Rental) -> str:
    return f"/mypage/{_q(customer)}/rentals/{_q(rental.namespace)}/{_q(rental.name)}/cancel"


def _rental_name(rental: projection.Rental) -> str:
    return rental.display_name or rental.model or rental.purifier


def cancel_page(customer: str, rental: projection.Rental, *, now: float, csrf_token: str) -> str:
    """What cancelling `rental` now does (`projection.cancellation`: the operator's rule), then the form."""
    what = _t("cancel_what", name=rental.name, purifier=_rental_name(rental))
    body = f"<h1>{_t('cancel_title')}</h1><p>{what}</p>"
    back = f'<a class="button secondary" href="/mypage/{_q(customer)}">{_t("keep")}</a>'
    if rental.phase not in CANCELLABLE:
        body += f"<p>{_t('cancel_done_already', phase=phase_words(rental.phase))}</p><p>{back}</p>"
        return _shell(TEXTS["cancel_title"], body, customer=customer)
    preview = projection.cancellation(rental, now)
    currency = rental.billing.currency if rental.billing else rental.currency
    if preview is None:
        effect = _t("cancel_before")
    elif preview.refund:
        effect = _t("cancel_refund", amount=_money(preview.refund, currency))
    elif preview.fee:
        effect = _t("cancel_fee", amount=_money(preview.fee, currency))
    else:
        effect = _t("cancel_free")
    body += (
        f'<h2>{_t("cancel_now")}</h2><p class="effect">{effect}</p>'
        f'<form method="post" action="{html.escape(_cancel_link(customer, rental))}">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf_token)}">'
        f'<button type="submit" class="danger">{_t("submit_cancel")}</button> {back}</form>'
    )
    return _shell(TEXTS["cancel_title"], body, customer=customer)


def live_section(customer: str, rentals: Sequence[projection.Rental]) -> str:
    """MyPage's added section: each rental's phase and delivery (kept current by `/static/mypage.js`,
    which polls the JSON API) and, while it can be cancelled, its Cancel link."""
    items = []
    for rental in rentals:
        key = html.escape(f"{rental.namespace}/{rental.name}", quote=True)
        cancel = (
            f' <a class="button secondary" data-cancel href="{html.escape(_cancel_link(customer, rental))}">'
            f"{_t('live_cancel', purifier=_rental_name(rental))}</a>"
            if rental.phase in CANCELLABLE
            else ""
        )
        items.append(
            f'<li data-rental="{key}"><strong>{_escape(_rental_name(rental))}</strong> '
            f"({_escape(rental.name)}): "
            f'<span data-phase="{html.escape(rental.phase, quote=True)}">'
            f"{_escape(phase_words(rental.phase))}</span>; {_t('delivery_label')}: "
            f"<span data-delivery>{_escape(delivery_words(rental.delivery_phase))}</span>"
            f"{cancel}</li>"
        )
    listing = f'<ul class="live">{"".join(items)}</ul>' if items else f"<p>{_t('live_none')}</p>"
    return (
        '<section id="live" aria-labelledby="live-heading" '
        f'data-customer="{html.escape(customer, quote=True)}"'
        f' data-phases="{html.escape(_phase_table(), quote=True)}">'
        f'<h2 id="live-heading">{_t("live_heading")}</h2><p class="meta">{_t("live_intro")}</p>'
        f'<div aria-live="polite">{listing}</div></section>'
    )


def _phase_table() -> str:
    """Phase and delivery words for the script (so it shows the same words as the server, in one place)."""
    words = {key: value for key, value in TEXTS.items() if key.startswith(("phase_", "delivery_"))}
    return json.dumps(words, separators=(",", ":"), ensure_ascii=False)


def message_page(title: str, text: str, *, customer: str | None = None) -> str:
    """A short page saying why something did not happen (already escaped `text`)."""
    return _shell(title, f"<h1>{_escape(title)}</h1><p>{text}</p>", customer=customer)
