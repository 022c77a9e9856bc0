"""api.money: ISO 4217 exponents from Babel's CLDR data, pinned, and amounts formatted for people."""

from __future__ import annotations

import datetime

import babel.core
import babel.numbers
import pytest

from rental_operator.api import money

# ISO 4217 (list one) minor units other than 2, for the currencies and fund codes in use. The test's
# own reference, not the module's: the module takes Babel's answer except where CLDR disagrees.
ISO_4217_NOT_TWO = {
    **dict.fromkeys(
        [
            *("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"),
            *("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"),
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        # The currencies the SMS and MyPage disagreed on (issue 13), then the usual suspects.
        *(("XPF", 0), ("RWF", 0), ("VUV", 0), ("BIF", 0), ("DJF", 0), ("GNF", 0), ("KMF", 0)),
        *(("UYI", 0), ("KRW", 0), ("JPY", 0), ("ISK", 0), ("USD", 2), ("EUR", 2)),
        *(("BHD", 3), ("KWD", 3), ("IQD", 3), ("CLF", 4)),
        # CLDR shows these without decimals (or did, in an older release); ISO 4217 has two.
        *(("COP", 2), ("HUF", 2), ("IDR", 2), ("RSD", 2), ("LBP", 2)),
    ],
)
def test_minor_units_are_iso_4217s(currency: str, exponent: int) -> None:
    assert money.minor_units(currency) == exponent


def _in_use() -> set[str]:
    today = datetime.date.today()
    territories = babel.core.get_global("territory_currencies")
    return {
        code
        for territory in territories
        for code in babel.numbers.get_territory_currencies(territory, today, tender=True, non_tender=True)
    }


def test_every_currency_in_use_has_its_iso_4217_exponent() -> None:
    """A Babel upgrade whose CLDR shows a currency with other decimals fails here, not on invoices."""
    in_use = _in_use()
    assert {"KRW", "USD", "XPF", "UYI"} <= in_use
    wrong = {
        code: money.minor_units(code)
        for code in sorted(in_use)
        if not code.startswith("X") or code in ISO_4217_NOT_TWO  # XAU, XDR, ...: no minor unit at all
        if money.minor_units(code) != ISO_4217_NOT_TWO.get(code, 2)
    }
    assert wrong == {}


def test_an_unknown_code_has_two() -> None:
    assert money.minor_units("ZZZ") == 2


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1_076_400, "KRW", "1,076,400 KRW"),
        (36_000, "XPF", "36,000 XPF"),
        (1_999, "USD", "19.99 USD"),
        (5, "EUR", "0.05 EUR"),
        (-500, "KWD", "-0.500 KWD"),
        (1_234_567, "IQD", "1,234.567 IQD"),
        (0, "JPY", "0 JPY"),
        (1_999, None, "19.99"),
        # Exact however large: no float on the way (2**63 - 1 fils).
        (2**63 - 1, "BHD", "9,223,372,036,854,775.807 BHD"),
    ],
)
def test_format_amount(amount: int, currency: str | None, text: str) -> None:
    assert money.format_amount(amount, currency) == text


def test_format_amount_in_another_locale() -> None:
    assert money.format_amount(123_456, "EUR", locale="de") == "1.234,56 EUR"
    assert money.format_amount(3_300_000, "KRW", locale="en") == "3,300,000 KRW"
    with pytest.raises(ValueError, match="unknown locale"):
        money.format_amount(1, "EUR", locale="xx-not-one")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        # Won as Korean companies write them: the figure, then 원, no space.
        (33_000, "KRW", "33,000\uc6d0"),
        (1_076_400, "KRW", "1,076,400\uc6d0"),
        (-500, "KRW", "-500\uc6d0"),
        # Other currencies: Babel's Korean symbols first, with ISO 4217's decimals (not CLDR's).
        (1_999, "USD", "US$19.99"),
        (36_000, "JPY", "JP\u00a536,000"),
        (123_456, "IDR", "IDR1,234.56"),
        (1_999, None, "19.99"),
    ],
)
def test_format_amount_in_korean(amount: int, currency: str | None, text: str) -> None:
    assert money.format_amount(amount, currency, locale="ko") == text
    assert money.format_amount(amount, currency, locale="ko_KR") == text


def test_format_amount_in_english_keeps_the_code_after_the_figure() -> None:
    # Babel's own English currency format would write ₩33,000; the English texts and page have
    # always named the ISO code, and keep doing so.
    assert money.format_amount(33_000, "KRW", locale="en") == "33,000 KRW"
    assert money.format_amount(33_000, "KRW") == "33,000 KRW"


def test_to_major_is_exact() -> None:
    assert str(money.to_major(1_999, "USD")) == "19.99"
    assert str(money.to_major(36_000, "XPF")) == "36000"
    assert money.to_major(2**60 + 1, "USD") * 100 == 2**60 + 1
