"""The web app's writes: an application creates a Rental, a cancellation sets `spec.cancelled`.

The only part of MyPage that writes, and only these two things (the chart's ServiceAccount for the
web app may create Rentals and patch them; an admission policy limits the patch to
`spec.cancelled`). Every request goes through `kubeapi`, in a thread (its client is synchronous),
and answers an `Outcome` the pages can show.

- Applying is idempotent: the Rental's name is derived from the customer and the form's
  application token (`rental_name`), so a second submit of the same form meets its own Rental
  (409 AlreadyExists, and the existing Rental is this customer's): success, one Rental. The API
  server's 422 is mapped onto the form's fields (`details.causes[].field`, `spec.customer.phone` ->
  `phone`).
- Cancelling reads the Rental (the source of truth: whose it is, its uid), then merge-patches
  `spec.cancelled: true` with a `metadata.uid` precondition, so the patch lands on the rental the
  customer saw and never on another that took its name since.

A process without a client (`RENTAL_WEB_ENABLED=false`) or without permission to write answers
`unavailable`. Called by `mypage.shop`; built by `mypage.standalone` and `mypage.embedded`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
from typing import Any, Final, Literal

from rental_operator import kubeapi
from rental_operator.api import rental as api_rental

__all__ = ["FIELDS", "Outcome", "Writer", "field_of", "rental_name"]

logger = logging.getLogger(__name__)

_NAME_DOMAIN: Final = b"rental-web-rental-v1"
# Where the API server's field paths land on the apply form.
FIELDS: Final = {
    "spec.customer.name": "name",
    "spec.customer.phone": "phone",
    "spec.customer.address": "address",
    "spec.months": "months",
    "spec.purifier": "purifier",
}


def rental_name(secret: bytes, customer: str, nonce: str) -> str:
    """`r-` and 16 hex digits of HMAC(secret, customer, nonce): the same form names the same Rental."""
    message = b"\n".join((_NAME_DOMAIN, customer.encode("utf-8"), nonce.encode("ascii")))
    return "r-" + hmac.new(secret, message, hashlib.sha256).hexdigest()[:16]


def field_of(path: str) -> str:
    """The form field of an API field path (`spec.customer.phone` -> `phone`); `` for the form as a whole."""
    path = path.removeprefix(".")
    for prefix, field in FIELDS.items():
        if path == prefix or path.startswith(prefix + "[") or path.startswith(prefix + "."):
            return field
    return ""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of a command. `fields` maps a form field ('' for none) to the API's message."""

    result: Literal["done", "invalid", "forbidden", "missing", "unavailable"]
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    detail: str = ""


def _refusal(error: Exception) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Status body of an API refusal (0 and {} for a failure without an answer)."""
    status = getattr(error, "status", None)
    body: Any = getattr(error, "body", None)
    try:
        parsed = json.loads(body) if isinstance(body, (str, bytes)) else {}
    except ValueError:
        parsed = {}
    return (status if isinstance(status, int) else 0), (parsed if isinstance(parsed, dict) else {})


def _causes(status: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for cause in (status.get("details") or {}).get("causes") or ():
        if isinstance(cause, dict):
            field = field_of(str(cause.get("field") or ""))
            fields.setdefault(field, str(cause.get("message") or ""))
    return fields or {"": str(status.get("message") or "")}


@dataclasses.dataclass
class Writer:
    """Creates and cancels Rentals for the web app; `kube` None: commands are unavailable (503)."""

    kube: kubeapi.Kube | None = None

    @property
    def available(self) -> bool:
        return self.kube is not None

    async def apply(self, namespace: str, name: str, spec: api_rental.RentalSpec) -> Outcome:
        return await asyncio.to_thread(self._apply, namespace, name, spec)

    async def cancel(self, namespace: str, name: str, customer: str) -> Outcome:
        return await asyncio.to_thread(self._cancel, namespace, name, customer)

    def _apply(self, namespace: str, name: str, spec: api_rental.RentalSpec) -> Outcome:
        kube = self.kube
        if kube is None:
            return Outcome("unavailable", detail="no Kubernetes client (RENTAL_WEB_ENABLED=false)")
        body = {
            "apiVersion": api_rental.RESOURCE.api_version,
            "kind": api_rental.RESOURCE.kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"rental.purifier.io/source": "web"},
            },
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        try:
            kube.create_new(api_rental.RESOURCE, namespace, body)
        except kubeapi.Conflict:
            # Already there: this form was submitted before. Success if it is this customer's (a
            # name derived from another customer's secret-keyed token cannot be theirs but by a
            # collision of 64 bits, never taken as theirs).
            try:
                existing = kube.get(api_rental.RESOURCE, namespace, name)
            except Exception as error:
                return self._failed("apply", namespace, name, error)
            owner = ((existing.get("spec") or {}).get("customer") or {}).get("id")
            if owner == spec.customer.id:
                return Outcome("done", detail="already applied")
            return Outcome("forbidden", detail="the name belongs to another customer's rental")
        except Exception as error:
            return self._failed("apply", namespace, name, error)
        logger.info("Web app: %s applied for %s/%s", spec.customer.id, namespace, name)
        return Outcome("done")

    def _cancel(self, namespace: str, name: str, customer: str) -> Outcome:
        kube = self.kube
        if kube is None:
            return Outcome("unavailable", detail="no Kubernetes client (RENTAL_WEB_ENABLED=false)")
        try:
            current = kube.get(api_rental.RESOURCE, namespace, name)
        except kubeapi.NotFound:
            return Outcome("missing")
        except Exception as error:
            return self._failed("cancel", namespace, name, error)
        owner = ((current.get("spec") or {}).get("customer") or {}).get("id")
        if owner != customer:
            return Outcome("forbidden", detail="another customer's rental")
        patch = {"metadata": {"uid": current["metadata"]["uid"]}, "spec": {"cancelled": True}}
        try:
            kube.merge_patch(api_rental.RESOURCE, current, patch, guarded=False)
        except kubeapi.NotFound:
            return Outcome("missing")
        except kubeapi.Conflict:
            return Outcome("missing", detail="replaced by another rental of that name")
        except Exception as error:
            return self._failed("cancel", namespace, name, error)
        logger.info("Web app: %s cancelled %s/%s", customer, namespace, name)
        return Outcome("done")

    @staticmethod
    def _failed(what: str, namespace: str, name: str, error: Exception) -> Outcome:
        status, body = _refusal(error)
        if status == 422:
            return Outcome("invalid", fields=_causes(body), detail=str(body.get("message") or ""))
        if status == 403:
            logger.error(
                "Web app cannot %s %s/%s: the API server refused (403): %s; does MyPage's ServiceAccount "
                "have create and patch on rentals?",
                what,
                namespace,
                name,
                body.get("message"),
            )
            return Outcome("unavailable", detail="not permitted")
        logger.error("Web app could not %s %s/%s: %s", what, namespace, name, error)
        return Outcome("unavailable", detail=f"{type(error).__name__}")
