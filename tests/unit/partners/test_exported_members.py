"""The public surface of rental_operator.partners, pinned: a change here is a change for its callers."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "rental_operator.partners": [],
    "rental_operator.partners.errors": [
        "RETRYABLE_REJECTIONS",
        "BreakerOpen",
        "IdempotencyConflict",
        "PartnerError",
        "PartnerProtocolError",
        "PartnerRejected",
        "PartnerUnavailable",
        "StateConflict",
        "UnacceptableAnswer",
        "UnavailableKind",
    ],
    "rental_operator.partners.transport": [
        "DEFAULT_TIMEOUT_SECONDS",
        "MAX_KEY_LENGTH",
        "MAX_RESPONSE_BYTES",
        "POOL_SIZE",
        "Answer",
        "PartnerModel",
        "Timeout",
        "Transport",
        "build_headers",
        "check_idempotency_key",
        "derive_key",
        "join_url",
        "path_segment",
    ],
    "rental_operator.partners.breakers": ["Breaker", "BreakerState", "StateListener", "Ticket"],
    "rental_operator.partners.payments": [
        "PARTNER",
        "Charge",
        "Observer",
        "Operation",
        "Outcome",
        "PaymentClient",
        "PaymentRecord",
        "Refund",
        "outcome_of_error",
    ],
    "rental_operator.partners.shipping": ["PARTNER", "Shipment", "ShipmentStatus", "ShippingClient"],
    "rental_operator.partners.sms": [
        "GSM7_SEGMENT",
        "PARTNER",
        "UCS2_SEGMENT",
        "HttpSmsSender",
        "LoggingSmsSender",
        "SmsEncoding",
        "SmsSender",
        "mask_phone",
        "sender_from_settings",
        "sms_encoding",
        "sms_length",
        "truncate_for_sms",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_module_exports_exactly_its_public_names(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == EXPECTED[name]
    for member in module.__all__:
        assert hasattr(module, member), member


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_module_says_why_it_exists(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__ and len(module.__doc__.split()) > 30
