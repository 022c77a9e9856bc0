"""The contract's endpoints (CONTRACT §2): what payments, shipping and SMS do with a valid request.

By the time a handler here runs, `app.Gateway` has already applied faults, checked the API key, and
(for a POST) claimed the Idempotency-Key inside a ledger transaction; a handler only validates the
body, decides, and writes the ledger. The ledger's `NotFoundError` and `lifecycle.TransitionError`
propagate and become the contract's 404 and 409 in `app`.
"""

from __future__ import annotations

from . import declines, ledger, validation, wire

__all__ = ["PartnerApi"]


class PartnerApi:
    def __init__(self, store: ledger.Ledger, decline_rule: declines.DeclineRule) -> None:
        self._ledger = store
        self._declines = decline_rule

    # Payments.

    def create_payment(self, call: wire.Call) -> wire.Response:
        request = validation.payment(call.body)
        payment = self._ledger.create_payment(
            amount=request.amount,
            currency=request.currency,
            customer_id=request.customer_id,
            reference=request.reference,
            declined_reason=self._declines.reason(customer_id=request.customer_id, amount=request.amount),
        )
        return wire.Response.json(201, payment.to_json())

    def get_payment(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, self._ledger.get_payment(call.params["id"]).to_json())

    def refund_payment(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, self._ledger.refund_payment(call.params["id"]).to_json())

    # Shipping.

    def create_shipment(self, call: wire.Call) -> wire.Response:
        request = validation.shipment(call.body)
        shipment = self._ledger.create_shipment(
            reference=request.reference, address=request.address, item=request.item
        )
        return wire.Response.json(201, shipment.to_json())

    def get_shipment(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, self._ledger.get_shipment(call.params["id"]).to_json())

    def cancel_shipment(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, self._ledger.cancel_shipment(call.params["id"]).to_json())

    def return_shipment(self, call: wire.Call) -> wire.Response:
        return wire.Response.json(200, self._ledger.return_shipment(call.params["id"]).to_json())

    # SMS.

    def create_message(self, call: wire.Call) -> wire.Response:
        request = validation.message(call.body)
        message = self._ledger.create_message(to=request.to, text=request.text, reference=request.reference)
        return wire.Response.json(202, message.to_json())
