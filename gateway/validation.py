"""The request bodies of CONTRACT §2, checked field by field before anything is stored.

A strict gateway is the point: an operator that sends a float amount, a lower-case currency or a
local phone number must find out here, with a 400 whose message names every bad field, not in
production. Unknown fields are ignored (the contract may be extended). Called by `partners`.
"""

from __future__ import annotations

import dataclasses
import re

from . import wire

__all__ = ["MessageRequest", "PaymentRequest", "ShipmentRequest", "message", "payment", "shipment"]

MAX_AMOUNT = 2**63 - 1  # what the ledger's INTEGER column holds
_CURRENCY = re.compile(r"[A-Z]{3}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclasses.dataclass(frozen=True)
class PaymentRequest:
    amount: int
    currency: str
    customer_id: str
    reference: str


@dataclasses.dataclass(frozen=True)
class ShipmentRequest:
    reference: str
    address: str
    item: str


@dataclasses.dataclass(frozen=True)
class MessageRequest:
    to: str
    text: str
    reference: str


class _Checker:
    """Collects one problem per field so a single 400 lists them all."""

    def __init__(self, body: wire.JsonObject) -> None:
        self.body = body
        self.problems: list[str] = []

    def text(self, field: str) -> str:
        value = self.body.get(field)
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{field} must be a non-empty string")
            return ""
        return value

    def amount(self, field: str) -> int:
        value = self.body.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.problems.append(f"{field} must be a positive integer (minor units)")
            return 0
        if value > MAX_AMOUNT:
            self.problems.append(f"{field} must be at most {MAX_AMOUNT}")
            return 0
        return value

    def matching(self, field: str, pattern: re.Pattern[str], meaning: str) -> str:
        value = self.body.get(field)
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            self.problems.append(f"{field} must be {meaning}")
            return ""
        return value

    def done(self) -> None:
        if self.problems:
            raise wire.HttpError(400, "; ".join(self.problems))


def payment(body: wire.JsonObject) -> PaymentRequest:
    check = _Checker(body)
    request = PaymentRequest(
        amount=check.amount("amount"),
        currency=check.matching(
            "currency", _CURRENCY, "an ISO 4217 code of three capital letters (^[A-Z]{3}$)"
        ),
        customer_id=check.text("customerId"),
        reference=check.text("reference"),
    )
    check.done()
    return request


def shipment(body: wire.JsonObject) -> ShipmentRequest:
    check = _Checker(body)
    request = ShipmentRequest(
        reference=check.text("reference"), address=check.text("address"), item=check.text("item")
    )
    check.done()
    return request


def message(body: wire.JsonObject) -> MessageRequest:
    check = _Checker(body)
    request = MessageRequest(
        to=check.matching("to", _E164, "a phone number in E.164 form, e.g. +821012345678"),
        text=check.text("text"),
        reference=check.text("reference"),
    )
    check.done()
    return request
