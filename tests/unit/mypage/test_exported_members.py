"""The public surface of rental_operator.mypage, pinned: a change here is a change for its callers."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "rental_operator.mypage.projection": [
        "Billing",
        "Cancellation",
        "Charge",
        "DEFAULT_PHASE",
        "History",
        "IN_FORCE",
        "PastDue",
        "Projection",
        "Purifier",
        "Rental",
        "UNSETTLED",
        "cancellation",
    ],
    "rental_operator.mypage.auth": [
        "Decision",
        "InvalidToken",
        "Policy",
        "Verdict",
        "mint",
        "page_link",
        "verify",
    ],
    "rental_operator.mypage.pages": ["STYLE", "TEXTS", "format_amount", "humanize", "render"],
    "rental_operator.mypage.server": [
        "PROJECTION",
        "Server",
        "make_app",
        "policy_from_settings",
        "rental_json",
        "rfc3339",
    ],
    "rental_operator.mypage.informer": ["KINDS", "Informer", "load_once"],
    "rental_operator.mypage.embedded": ["Embedded"],
    "rental_operator.mypage.metrics": ["REQUESTS", "REQUEST_DURATION", "SKIPPED_OBJECTS"],
    "rental_operator.mypage.standalone": ["run"],
    "rental_operator.mypage.sessions": [
        "COOKIE",
        "LIFETIME_SECONDS",
        "cookie_options",
        "mint",
        "token_expiry",
        "verify",
    ],
    "rental_operator.mypage.csrf": [
        "LIFETIME_SECONDS",
        "application_nonce",
        "issue",
        "issue_application",
        "same_origin",
        "valid",
    ],
    "rental_operator.mypage.commands": ["FIELDS", "Outcome", "Writer", "field_of", "rental_name"],
    "rental_operator.mypage.shop": ["PAGE_HEADERS", "WEB", "Web", "install", "session_customer", "validate"],
    "rental_operator.mypage.shop_pages": [
        "CANCELLABLE",
        "TEXTS",
        "cancel_page",
        "catalog",
        "live_section",
        "message_page",
        "purifier_page",
        "terms_for",
    ],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_exported_members(module: str) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(EXPECTED[module])
    for name in imported.__all__:
        assert hasattr(imported, name), f"{module}.{name} is in __all__ but missing"
    assert imported.__doc__ and len(imported.__doc__.splitlines()) > 2, f"{module} needs a docstring"


def test_the_package_re_exports_nothing() -> None:
    package = importlib.import_module("rental_operator.mypage")
    assert not hasattr(package, "__all__")
    assert package.__doc__
