"""Amounts of money: how many minor units a currency has, and an amount in minor units for people.

Every amount in the API is an integer in minor units of its ISO 4217 currency (`monthlyFee`,
`status.payment.amount`): 39000 KRW is 39,000 won, 1999 USD is 19.99 dollars, 36000 XPF is 36,000
francs. Reading one needs the currency's exponent, and the text message and MyPage once kept a list
each, which disagreed (the message said `360.00 XPF` where the page said `36,000 XPF`). This module is
the one source both use (`reconcilers.notifications`, `mypage.pages`), so a figure reads the same on
every surface.

The exponents come from Babel's copy of the Unicode CLDR currency data, which is maintained and
follows new currencies, rather than from a list kept by hand. CLDR's `digits` is a display
convention, though, not ISO 4217's minor unit: for a few currencies CLDR shows no decimals where ISO
4217 has two (or three, IQD), and it changes its mind between releases (from Babel 2.16 to 2.19 COP,
HUF and IDR went from 2 to 0, RSD from 0 to 2). An amount stored in minor units must not change
meaning when Babel is upgraded, so where the two disagree ISO 4217 wins
(`_ISO_4217_WHERE_CLDR_DIFFERS`); tests/unit/api/test_money.py pins every currency in use against
ISO 4217, so a CLDR change that would move one fails there first.

Formatting goes through Babel's number patterns with the ISO code after the figure
(`1,076,400 KRW`, `19.99 USD`), the style both surfaces already used; `locale` (default `en`) picks
the separators, and Korean (`ko`, for the Korean texts and page, `rental_operator.i18n`) writes won as
Korean rental companies do, `1,076,400원`, and other currencies with Babel's Korean symbol (`US$19.99`).
Pure functions, no I/O: importable from every layer.
"""

from __future__ import annotations

import decimal
import functools
from typing import Final

import babel
import babel.numbers

__all__ = ["DEFAULT_LOCALE", "format_amount", "minor_units", "to_major"]

DEFAULT_LOCALE: Final = "en"

# ISO 4217's minor unit for the currencies in use where CLDR (through Babel) displays another number
# of decimals. Only these are kept by hand; each was checked against ISO 4217 (list one). RSD is here
# for the older CLDR releases that the `babel>=2.16` range still admits, which showed it with none.
_ISO_4217_WHERE_CLDR_DIFFERS: Final = {
    **dict.fromkeys(
        [
            *("AFN", "ALL", "COP", "HUF", "IDR", "IRR", "KPW"),
            *("LAK", "LBP", "MGA", "MMK", "RSD", "SOS", "SYP", "YER"),
        ],
        2,
    ),
    "IQD": 3,
}


@functools.cache
def minor_units(currency: str) -> int:
    """Decimal places of `currency`'s minor unit (ISO 4217): KRW 0, USD 2, KWD 3; 2 if unknown.

    Cached: the answer for a code never changes within a process, and texts and pages ask per amount.
    """
    override = _ISO_4217_WHERE_CLDR_DIFFERS.get(currency)
    if override is not None:
        return override
    # Babel answers CLDR's default (2) for a code it does not know, as ISO 4217 does for most.
    return babel.numbers.get_currency_precision(currency)


def to_major(amount: int, currency: str) -> decimal.Decimal:
    """`amount` minor units as an exact decimal in major units (no float: fees can be large)."""
    return decimal.Decimal(amount).scaleb(-minor_units(currency))


@functools.cache
def _pattern(decimals: int, currency: str | None, language: str) -> babel.numbers.NumberPattern:
    """The pattern for an amount: grouped digits, exactly `decimals` places, and the currency.

    In Korean, won are written as Korean companies and banks write them, the figure then `원`
    (`33,000원`), and other currencies with their symbol first (`US$19.99`), Babel's Korean standard
    form; everywhere else the ISO code follows the figure (`33,000 KRW`, `1.234,56 EUR`), the style the
    English texts have always used.
    """
    fraction = "." + "0" * decimals if decimals else ""
    figure = f"#,##0{fraction}"
    if currency is None:
        return babel.numbers.parse_pattern(figure)
    if language == "ko":
        return babel.numbers.parse_pattern(f"{figure}\uc6d0" if currency == "KRW" else f"\u00a4{figure}")
    return babel.numbers.parse_pattern(f"{figure} \u00a4\u00a4")


@functools.cache
def _locale(name: str) -> babel.Locale:
    return babel.Locale.parse(name)


def format_amount(amount: int, currency: str | None, *, locale: str = DEFAULT_LOCALE) -> str:
    """`amount` in minor units of `currency` for people: `1076400, "KRW"` -> `1,076,400 KRW`.

    `1999, "USD"` -> `19.99 USD`; `-500, "KWD"` -> `-0.500 KWD`; in Korean (`locale="ko"` or `ko_KR`)
    `1,076,400원` and `US$19.99`. Without a currency the figure is read with two decimals (the most
    common exponent) and shown without a code. Raises ValueError for an unknown `locale`.
    """
    decimals = minor_units(currency) if currency else 2
    value = decimal.Decimal(amount).scaleb(-decimals)
    try:
        where = _locale(locale)
    except (babel.UnknownLocaleError, ValueError, TypeError) as error:
        raise ValueError(f"unknown locale {locale!r}") from error
    # currency_digits=False: the pattern's decimals (ISO 4217's) win over CLDR's display digits.
    pattern = _pattern(decimals, currency or None, where.language)
    text: str = pattern.apply(value, where, currency=currency, currency_digits=False)
    return text
