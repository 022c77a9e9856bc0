"""The operator's client of the shipping partner (CONTRACT §2 "Shipping").

Called by the Delivery controller (`controllers.deliveries`) on the scheduler's worker threads:
`create` when a rental is confirmed, `get` on the scheduler's polling (`RENTAL_SHIPPING_POLL_SECONDS`)
until the parcel is delivered or returned, `cancel` when a rental is cancelled before delivery and
`return_` after it. One `ShippingClient` is built at start-up (into `controllers.context`) and shared
by every worker. Errors are those of `errors`; two worth knowing: `errors.StateConflict` on `cancel`
means the parcel was already delivered (ask for a return instead), and a call that failed is retried
by the controller (`reconcilers.deliveries`) with the same idempotency key.

No circuit breaker, on purpose. The contract gives a breaker (settings, state metric, a "deferred"
phase) to payments only, because only payments has a fallback for the breaker to select: pay later.
A failing shipping call has nothing to fall back to; the Delivery controller records the error and the
scheduler calls again at the polling interval, which already spaces out the calls an open breaker
would have saved. Each call is also bounded by a deadline for the whole call, so a slow partner holds
a worker thread for seconds, not longer.
"""

from __future__ import annotations

from types import TracebackType
from typing import Annotated, Final, Literal, Self

import pydantic

from rental_operator import config
from rental_operator.partners import transport

__all__ = ["PARTNER", "Shipment", "ShipmentStatus", "ShippingClient"]

PARTNER: Final = "shipping"

ShipmentStatus = Literal["shipping", "delivered", "cancelled", "returning", "returned"]

NonEmpty = Annotated[str, pydantic.StringConstraints(min_length=1)]


class Shipment(transport.PartnerModel):
    """A shipment as the partner reports it; `carrier` is an extension the contract allows."""

    id: NonEmpty
    tracking_number: NonEmpty = pydantic.Field(alias="trackingNumber")
    status: ShipmentStatus
    carrier: str | None = None


class ShippingClient:
    """Creates, reads, cancels and returns shipments; thread-safe; one per operator process."""

    def __init__(
        self,
        settings: config.Settings,
        *,
        timeout_seconds: float = transport.DEFAULT_TIMEOUT_SECONDS,
        pool_size: int = transport.POOL_SIZE,
    ) -> None:
        self._transport = transport.Transport(
            partner=PARTNER,
            base_url=str(settings.shipping_url),
            api_key=settings.shipping_api_key,
            timeout=transport.Timeout(connect=timeout_seconds, read=timeout_seconds),
            pool_size=pool_size,
            ca_bundle=settings.ca_bundle(PARTNER),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def create(self, *, reference: str, address: str, item: str, idempotency_key: str) -> Shipment:
        """Ship `item` to `address`; one shipment per `idempotency_key`."""
        if not reference or not address or not item:
            raise ValueError("reference, address and item must not be empty")
        body = {"reference": reference, "address": address, "item": item}
        answer = self._transport.post("v1/shipments", body, idempotency_key=idempotency_key, creates=True)
        return self._transport.decode(answer, Shipment)

    def get(self, shipment_id: str) -> Shipment:
        answer = self._transport.get(f"v1/shipments/{transport.path_segment(shipment_id)}")
        return self._transport.decode(answer, Shipment)

    def cancel(self, shipment_id: str, *, idempotency_key: str) -> Shipment:
        """Stop a parcel not yet delivered; `errors.StateConflict` once it has been."""
        return self._action(shipment_id, "cancel", idempotency_key)

    def return_(self, shipment_id: str, *, idempotency_key: str) -> Shipment:
        """Ask for a delivered parcel back (status `returning`, later `returned`)."""
        return self._action(shipment_id, "return", idempotency_key)

    def _action(self, shipment_id: str, action: str, idempotency_key: str) -> Shipment:
        path = f"v1/shipments/{transport.path_segment(shipment_id)}/{action}"
        answer = self._transport.post(path, {}, idempotency_key=idempotency_key, creates=False)
        return self._transport.decode(answer, Shipment)
