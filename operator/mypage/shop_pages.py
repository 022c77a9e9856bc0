"""The web app's HTML: the catalog, a purifier with its apply form, the cancellation step, and the
live section MyPage's page gains (each rental's phase, updated by `/static/mypage.js`, and its Cancel
link).

Plain server-rendered HTML that works without script; the one stylesheet and the one script are
served from this origin (`/static/`), so the Content-Security-Policy stays `'self'` and nothing comes
from a third party. Readable on a phone (viewport, one column, targets at least 44 px high),
accessible (one `h1` per page, labelled fields with their error text tied by `aria-describedby`,
`role="alert"` on a refused form, visible focus, text that says what colours say).

Every visible sentence and label is a msgid in `TEXTS` (English), translated by the gettext catalogs
(`rental_operator.i18n`, `operator/locale/*/LC_MESSAGES/messages.po`): each page function takes a
`language` (`ko` or `en`; English by default) and writes its words, `lang`, amounts (`api.money`:
`30,000원` in Korean) and the script's phase words in it. Every value from users
or objects is cleaned like a text message's (`reconcilers.notifications.plain`) and `html.escape`d.
Called by `mypage.shop` and `mypage.server`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from rental_operator import i18n
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
        "site": i18n.N_("Purifier rental"),
        "nav_label": i18n.N_("Site"),
        "nav_catalog": i18n.N_("Purifiers"),
        "nav_mypage": i18n.N_("My rentals"),
        "nav_signed_in": i18n.N_("Signed in as {customer}"),
        "catalog_title": i18n.N_("Purifiers for rent"),
        "catalog_intro": i18n.N_("Choose a purifier to see its terms and apply."),
        "catalog_empty": i18n.N_("No purifiers are offered right now."),
        "monthly_fee": i18n.N_("Monthly fee"),
        "model": i18n.N_("Model"),
        "per_month": i18n.N_("{amount} a month"),
        "no_fee": i18n.N_("not for rent yet"),
        "mandatory": i18n.N_("Mandatory period"),
        "mandatory_none": i18n.N_("none: you may end the contract at any time without a fee"),
        "mandatory_months": i18n.N_("{months} months"),
        "early_rule": i18n.N_("Ending early"),
        "early_rule_text": i18n.N_(
            "If you cancel within the first {months} months (after the withdrawal period), you pay "
            "{percent}% of the monthly fees of the mandatory months not yet paid."
        ),
        "early_rule_free": i18n.N_("Ending early costs no fee."),
        "withdrawal_rule": i18n.N_(
            "Before delivery, and for a short period after it, you may withdraw: every charge is refunded."
        ),
        "availability": i18n.N_("Availability"),
        "available": i18n.N_("A unit is free now"),
        "unavailable": i18n.N_(
            "No unit free right now: you may still apply and your application waits for one"
        ),
        "details": i18n.N_("Terms and application"),
        "apply_heading": i18n.N_("Apply"),
        "apply_intro": i18n.N_(
            "The first month is charged when the application is accepted; then once a month."
        ),
        "sign_in_to_apply": i18n.N_("Sign in with the link we sent you to apply."),
        "field_name": i18n.N_("Your name"),
        "field_phone": i18n.N_("Mobile number"),
        "field_phone_hint": i18n.N_("In international form, for example +821012345678."),
        "field_address": i18n.N_("Delivery address"),
        "field_months": i18n.N_("Contract term"),
        "term_months": i18n.N_("{months} months"),
        "submit_apply": i18n.N_("Apply for this purifier"),
        "form_refused": i18n.N_("The application was not sent. Please correct the fields marked below."),
        "rule_name": i18n.N_("Enter at most 200 characters."),
        "rule_phone": i18n.N_(
            "Enter a mobile number in international form: + and country code, e.g. +821012345678."
        ),
        "rule_address": i18n.N_("Enter the delivery address (1 to 500 characters)."),
        "rule_months": i18n.N_("Choose one of the terms offered (at least the mandatory period)."),
        "rule_purifier": i18n.N_("This purifier cannot be rented."),
        "rule_form": i18n.N_("The application could not be accepted: {detail}"),
        "too_many_title": i18n.N_("Too many open applications"),
        "too_many": i18n.N_(
            "You have {count} applications still being processed (at most {limit}). Wait until one is "
            "confirmed or refused, or cancel one on My rentals, then apply again."
        ),
        "unavailable_title": i18n.N_("Not available right now"),
        "unavailable_text": i18n.N_(
            "Applying and cancelling are not possible at the moment. Please try again later."
        ),
        "forbidden_title": i18n.N_("Not allowed"),
        "forbidden_text": i18n.N_(
            "This page expired or was not sent from this site. Go back, reload it and try again."
        ),
        "not_yours": i18n.N_("This rental belongs to another customer."),
        "not_found_title": i18n.N_("Not found"),
        "not_found": i18n.N_("There is no such purifier or rental."),
        "sign_in_title": i18n.N_("Sign-in needed"),
        "sign_in_text": i18n.N_("Open the link we sent you to sign in."),
        "live_heading": i18n.N_("Live status"),
        "live_intro": i18n.N_("Updated automatically while this page is open."),
        "live_none": i18n.N_("No rentals yet."),
        "live_purifier": i18n.N_("{purifier}"),
        "live_cancel": i18n.N_("Cancel {purifier}"),
        "cancel_title": i18n.N_("Cancel your rental"),
        "cancel_what": i18n.N_("Rental {name} of {purifier}"),
        "cancel_now": i18n.N_("If you cancel now:"),
        "cancel_refund": i18n.N_(
            "Every charge is refunded: {amount}. The delivery is stopped or the unit collected."
        ),
        "cancel_fee": i18n.N_(
            "The months already paid are not refunded, and an early-termination fee of {amount} is "
            "charged once. The unit is collected."
        ),
        "cancel_free": i18n.N_(
            "The months already paid are not refunded; no fee is charged. The unit is collected."
        ),
        "cancel_before": i18n.N_("Nothing has been charged for good yet: any payment taken is refunded."),
        "cancel_done_already": i18n.N_("This rental is already {phase}: there is nothing to cancel."),
        "submit_cancel": i18n.N_("Yes, cancel this rental"),
        "keep": i18n.N_("No, keep it"),
        "phase_Pending": i18n.N_("Application received"),
        "phase_AwaitingPayment": i18n.N_("Awaiting payment"),
        "phase_PaymentDeferred": i18n.N_("Payment deferred"),
        "phase_Confirmed": i18n.N_("Confirmed"),
        "phase_PastDue": i18n.N_("Payment past due"),
        "phase_Cancelling": i18n.N_("Cancelling"),
        "phase_Cancelled": i18n.N_("Cancelled"),
        "phase_Completed": i18n.N_("Completed"),
        "phase_Rejected": i18n.N_("Rejected"),
        "delivery_none": i18n.N_("not shipped yet"),
        "delivery_Pending": i18n.N_("preparing"),
        "delivery_Shipping": i18n.N_("on its way"),
        "delivery_Delivered": i18n.N_("delivered"),
        "delivery_Cancelled": i18n.N_("shipment cancelled"),
        "delivery_Returning": i18n.N_("being collected"),
        "delivery_Returned": i18n.N_("collected"),
        "delivery_label": i18n.N_("Delivery"),
    }
)


def _escape(value: str) -> str:
    return html.escape(notifications.plain(value, _FIELD_LIMIT), quote=True)


@dataclasses.dataclass(frozen=True)
class _Words:
    """A page's language: `t(key, **values)` is `TEXTS[key]` in it, escaped, with `values` (escaped
    here) filled in."""

    language: i18n.Language

    def __call__(self, key: str, /, **values: str) -> str:
        text = html.escape(self.raw(key), quote=True)
        return text.format_map({name: _escape(value) for name, value in values.items()}) if values else text

    def raw(self, key: str) -> str:
        """`TEXTS[key]` in the page's language, unescaped."""
        return i18n.messages(self.language).gettext(TEXTS[key])

    def money(self, amount: int, currency: str | None) -> str:
        return money.format_amount(amount, currency, locale=self.language)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def phase_words(phase: str, language: i18n.Language = "en") -> str:
    return _Words(language).raw(f"phase_{phase}") if f"phase_{phase}" in TEXTS else phase


def delivery_words(phase: str | None, language: i18n.Language = "en") -> str:
    if not phase:
        return _Words(language).raw("delivery_none")
    return _Words(language).raw(f"delivery_{phase}") if f"delivery_{phase}" in TEXTS else phase


def terms_for(purifier: projection.Purifier) -> list[int]:
    """The terms offered: the usual ones no shorter than the mandatory period, and that period itself."""
    floor = max(1, purifier.mandatory_months)
    terms = {term for term in _TERMS if term >= floor}
    if purifier.mandatory_months and purifier.mandatory_months not in terms:
        terms.add(purifier.mandatory_months)
    return sorted(terms)


def _shell(t: _Words, title: str, body: str, *, customer: str | None, script: bool = False) -> str:
    nav = f'<a href="/shop">{t("nav_catalog")}</a>'
    if customer:
        nav += f' <a href="/mypage/{_q(customer)}">{t("nav_mypage")}</a>'
        nav += f' <span class="who">{t("nav_signed_in", customer=customer)}</span>'
    tail = '<script src="/static/mypage.js" defer></script>' if script else ""
    return (
        f'<!doctype html>\n<html lang="{t.language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_escape(title)} \u2014 {t('site')}</title>"
        '<link rel="stylesheet" href="/static/shop.css"></head><body>'
        f'<header><nav aria-label="{t("nav_label")}">{nav}</nav></header>'
        f"<main>{body}</main>{tail}</body></html>\n"
    )


def _name(purifier: projection.Purifier) -> str:
    return purifier.display_name or purifier.model or purifier.name


def _terms_rows(t: _Words, purifier: projection.Purifier) -> str:
    fee = (
        t("per_month", amount=t.money(purifier.monthly_fee, purifier.currency))
        if purifier.monthly_fee
        else t("no_fee")
    )
    mandatory = (
        t("mandatory_months", months=str(purifier.mandatory_months))
        if purifier.mandatory_months
        else t("mandatory_none")
    )
    rule = (
        t(
            "early_rule_text",
            months=str(purifier.mandatory_months),
            percent=str(purifier.early_termination_percent),
        )
        if purifier.mandatory_months and purifier.early_termination_percent
        else t("early_rule_free")
    )
    free = (
        f'<span class="good">{t("available")}</span>'
        if purifier.available > 0
        else f'<span class="muted">{t("unavailable")}</span>'
    )
    rows = [
        ("model", _escape(purifier.model or "\u2014")),
        ("monthly_fee", fee),
        ("mandatory", mandatory),
        ("early_rule", f"{rule} {t('withdrawal_rule')}"),
        ("availability", free),
    ]
    return "<dl>" + "".join(f"<dt>{t(key)}</dt><dd>{value}</dd>" for key, value in rows) + "</dl>"


def catalog(
    purifiers: Sequence[projection.Purifier], *, customer: str | None, language: i18n.Language = "en"
) -> str:
    t = _Words(language)
    items = []
    for index, purifier in enumerate(purifiers):
        link = f"/shop/{_q(purifier.namespace)}/{_q(purifier.name)}"
        items.append(
            f'<article aria-labelledby="p{index}"><h2 id="p{index}">{_escape(_name(purifier))}</h2>'
            f'{_terms_rows(t, purifier)}<p><a class="button" href="{html.escape(link)}">{t("details")}'
            f'<span class="visually-hidden">: {_escape(_name(purifier))}</span></a></p></article>'
        )
    listing = "".join(items) or f"<p>{t('catalog_empty')}</p>"
    body = f"<h1>{t('catalog_title')}</h1><p>{t('catalog_intro')}</p>{listing}"
    return _shell(t, t.raw("catalog_title"), body, customer=customer)


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
    language: i18n.Language = "en",
) -> str:
    """The purifier's terms and, for a signed-in customer, the apply form (with `errors` by field,
    already in words and escaped, and the `values` entered), in `language`."""
    t = _Words(language)
    values = values or {}
    errors = errors or {}
    name = _name(purifier)
    body = f"<h1>{_escape(name)}</h1>{_terms_rows(t, purifier)}<h2>{t('apply_heading')}</h2>"
    if not customer:
        return _shell(t, name, body + f"<p>{t('sign_in_to_apply')}</p>", customer=None)
    if not purifier.monthly_fee:
        return _shell(t, name, body + f"<p>{t('no_fee')}</p>", customer=customer)
    chosen = values.get("months", str(terms_for(purifier)[0]))
    options = "".join(
        f'<option value="{term}"{" selected" if str(term) == chosen else ""}>'
        f"{t('term_months', months=str(term))}</option>"
        for term in terms_for(purifier)
    )
    alert = ""
    if errors:
        general = f"<p>{errors['']}</p>" if "" in errors else ""
        alert = (
            '<div class="alert" role="alert" tabindex="-1" id="form-errors">'
            f"<p>{t('form_refused')}</p>{general}</div>"
        )

    def value(key: str) -> str:
        return html.escape(values.get(key, ""), quote=True)

    form = (
        f"<p>{t('apply_intro')}</p>{alert}"
        f'<form method="post" action="/shop/{_q(purifier.namespace)}/{_q(purifier.name)}" novalidate>'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf_token)}">'
        f'<input type="hidden" name="application" value="{html.escape(application)}">'
        + _field(
            "name",
            t("field_name"),
            '<input id="name" name="name" autocomplete="name" maxlength="200" '
            f'value="{value("name")}"{{attrs}}>',
            errors,
        )
        + _field(
            "phone",
            t("field_phone"),
            f'<input id="phone" name="phone" type="tel" autocomplete="tel" inputmode="tel" required '
            f'value="{value("phone")}"{{attrs}}>',
            errors,
            t("field_phone_hint"),
        )
        + _field(
            "address",
            t("field_address"),
            f'<textarea id="address" name="address" autocomplete="street-address" rows="3" maxlength="500" '
            f"required{{attrs}}>{value('address')}</textarea>",
            errors,
        )
        + _field(
            "months",
            t("field_months"),
            f'<select id="months" name="months"{{attrs}}>{options}</select>',
            errors,
        )
        + f'<button type="submit">{t("submit_apply")}</button></form>'
    )
    return _shell(t, name, body + form, customer=customer)


def _cancel_link(customer: str, rental: projection.Rental) -> str:
    return f"/mypage/{_q(customer)}/rentals/{_q(rental.namespace)}/{_q(rental.name)}/cancel"


def _rental_name(rental: projection.Rental) -> str:
    return rental.display_name or rental.model or rental.purifier


def cancel_page(
    customer: str,
    rental: projection.Rental,
    *,
    now: float,
    csrf_token: str,
    language: i18n.Language = "en",
) -> str:
    """What cancelling `rental` now does (`projection.cancellation`: the operator's rule), then the form."""
    t = _Words(language)
    what = t("cancel_what", name=rental.name, purifier=_rental_name(rental))
    body = f"<h1>{t('cancel_title')}</h1><p>{what}</p>"
    back = f'<a class="button secondary" href="/mypage/{_q(customer)}">{t("keep")}</a>'
    if rental.phase not in CANCELLABLE:
        body += f"<p>{t('cancel_done_already', phase=phase_words(rental.phase, t.language))}</p><p>{back}</p>"
        return _shell(t, t.raw("cancel_title"), body, customer=customer)
    preview = projection.cancellation(rental, now)
    currency = rental.billing.currency if rental.billing else rental.currency
    if preview is None:
        effect = t("cancel_before")
    elif preview.refund:
        effect = t("cancel_refund", amount=t.money(preview.refund, currency))
    elif preview.fee:
        effect = t("cancel_fee", amount=t.money(preview.fee, currency))
    else:
        effect = t("cancel_free")
    body += (
        f'<h2>{t("cancel_now")}</h2><p class="effect">{effect}</p>'
        f'<form method="post" action="{html.escape(_cancel_link(customer, rental))}">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf_token)}">'
        f'<button type="submit" class="danger">{t("submit_cancel")}</button> {back}</form>'
    )
    return _shell(t, t.raw("cancel_title"), body, customer=customer)


def live_section(
    customer: str, rentals: Sequence[projection.Rental], *, language: i18n.Language = "en"
) -> str:
    """MyPage's added section: each rental's phase and delivery (kept current by `/static/mypage.js`,
    which polls the JSON API) and, while it can be cancelled, its Cancel link."""
    t = _Words(language)
    items = []
    for rental in rentals:
        key = html.escape(f"{rental.namespace}/{rental.name}", quote=True)
        cancel = (
            f' <a class="button secondary" data-cancel href="{html.escape(_cancel_link(customer, rental))}">'
            f"{t('live_cancel', purifier=_rental_name(rental))}</a>"
            if rental.phase in CANCELLABLE
            else ""
        )
        items.append(
            f'<li data-rental="{key}"><strong>{_escape(_rental_name(rental))}</strong> '
            f"({_escape(rental.name)}): "
            f'<span data-phase="{html.escape(rental.phase, quote=True)}">'
            f"{_escape(phase_words(rental.phase, t.language))}</span>; {t('delivery_label')}: "
            f"<span data-delivery>{_escape(delivery_words(rental.delivery_phase, t.language))}</span>"
            f"{cancel}</li>"
        )
    listing = f'<ul class="live">{"".join(items)}</ul>' if items else f"<p>{t('live_none')}</p>"
    return (
        '<section id="live" aria-labelledby="live-heading" '
        f'data-customer="{html.escape(customer, quote=True)}"'
        f' data-phases="{html.escape(_phase_table(t), quote=True)}">'
        f'<h2 id="live-heading">{t("live_heading")}</h2><p class="meta">{t("live_intro")}</p>'
        f'<div aria-live="polite">{listing}</div></section>'
    )


def _phase_table(t: _Words) -> str:
    """Phase and delivery words for the script (so it shows the same words as the server, in one place)."""
    words = {key: t.raw(key) for key in TEXTS if key.startswith(("phase_", "delivery_"))}
    return json.dumps(words, separators=(",", ":"), ensure_ascii=False)


def message_page(
    title: str, text: str, *, customer: str | None = None, language: i18n.Language = "en"
) -> str:
    """A short page saying why something did not happen (already escaped `text`, in `language`)."""
    return _shell(_Words(language), title, f"<h1>{_escape(title)}</h1><p>{text}</p>", customer=customer)
