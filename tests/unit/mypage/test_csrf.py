"""mypage.csrf: CSRF tokens, application tokens and the same-origin rule."""

from __future__ import annotations

import time

import pytest

from rental_operator.mypage import commands, csrf

SECRET = b"k" * 32
HERE = frozenset({"https://shop.example"})


def test_a_token_is_valid_for_its_identity_until_it_expires() -> None:
    now = time.time()
    token = csrf.issue(SECRET, "cust-1", now=now)
    assert csrf.valid(SECRET, "cust-1", token, now=now)
    assert not csrf.valid(SECRET, "cust-2", token, now=now)
    assert not csrf.valid(b"o" * 32, "cust-1", token, now=now)
    assert not csrf.valid(SECRET, "cust-1", token, now=now + csrf.LIFETIME_SECONDS + 1)


@pytest.mark.parametrize(
    "token", [None, "", "a.b.c", "x" * 300, "n.123.sig", "n.-1.sig", "n.\uff11\uff12.sig"]
)
def test_missing_or_malformed_tokens_are_refused(token: str | None) -> None:
    assert not csrf.valid(SECRET, "cust-1", token)


def test_a_token_with_a_changed_expiry_is_refused() -> None:
    nonce, expires, mac = csrf.issue(SECRET, "cust-1").split(".")
    assert not csrf.valid(SECRET, "cust-1", f"{nonce}.{int(expires) + 10_000}.{mac}")


def test_tokens_are_fresh_per_form() -> None:
    assert csrf.issue(SECRET, "cust-1") != csrf.issue(SECRET, "cust-1")


def test_application_tokens_are_signed_for_their_customer() -> None:
    token = csrf.issue_application(SECRET, "cust-1")
    nonce = csrf.application_nonce(SECRET, "cust-1", token)
    assert nonce is not None and len(nonce) == 32
    assert csrf.application_nonce(SECRET, "cust-2", token) is None
    assert csrf.application_nonce(SECRET, "cust-1", "0" * 32 + ".forged") is None
    assert csrf.application_nonce(SECRET, "cust-1", None) is None
    # A CSRF token is not an application token.
    assert csrf.application_nonce(SECRET, "cust-1", csrf.issue(SECRET, "cust-1")) is None


def test_the_rental_name_is_derived_idempotently() -> None:
    nonce = csrf.application_nonce(SECRET, "cust-1", csrf.issue_application(SECRET, "cust-1"))
    assert nonce is not None
    first = commands.rental_name(SECRET, "cust-1", nonce)
    assert first == commands.rental_name(SECRET, "cust-1", nonce)
    assert first.startswith("r-") and len(first) == 18
    assert first != commands.rental_name(SECRET, "cust-2", nonce)
    assert first != commands.rental_name(b"o" * 32, "cust-1", nonce)


@pytest.mark.parametrize(
    ("origin", "referer", "allowed"),
    [
        ("https://shop.example", None, True),
        ("https://shop.example/", None, True),
        ("https://evil.example", None, False),
        ("null", None, False),
        ("http://shop.example", None, False),
        (None, "https://shop.example/shop/a/b", True),
        (None, "https://evil.example/shop.example", False),
        ("https://evil.example", "https://shop.example/x", False),
        (None, None, True),  # nothing to compare: the CSRF token decides
    ],
)
def test_same_origin(origin: str | None, referer: str | None, allowed: bool) -> None:
    assert csrf.same_origin(origin, referer, HERE) is allowed


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("spec.customer.phone", "phone"),
        (".spec.customer.address", "address"),
        ("spec.months", "months"),
        ("spec.customer.name", "name"),
        ("spec.customer.id", ""),
        ("metadata.name", ""),
    ],
)
def test_api_fields_map_onto_the_form(path: str, field: str) -> None:
    assert commands.field_of(path) == field
