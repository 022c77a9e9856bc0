"""The controllers against an in-memory world: a fake API server, fake partners, a scheduler that waits.

The controllers reach everything through `controllers.context.Context`, so a test builds one of its own
from stand-ins for the interfaces they call: `kubeapi.Kube` (get, create, replace_status, merge_patch,
delete guarded by uid, with resourceVersions, uids, 409 Conflict and 404 NotFound as the API server has
them), the `EventRecorder`, the payment, shipping and SMS clients (scriptable: answers or the partner
exceptions), the `Scheduler` (which records what was asked for later, and runs it when the test says
so) and the clock (which moves only when the test says so). No thread, socket or cluster: a test reads
as the story of one object, and runs in milliseconds. Test modules cannot import this conftest, so the
world comes through the `world` fixture; partner answers are built with the real models
(`partners.payments.Charge`, ...).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import itertools
import types
from collections.abc import Callable, Hashable
from typing import Any, cast

import pytest

from rental_devenv import testkit
from rental_operator import config, kubeapi
from rental_operator.api import meta
from rental_operator.controllers import context
from rental_operator.partners import errors, payments, shipping

NOW = datetime.datetime(2025, 6, 1, 9, 0, tzinfo=datetime.UTC)
NAMESPACE = "shop"
API_VERSION = f"{meta.GROUP}/{meta.VERSION}"


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch, in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    """The API server as the controllers see it through `kubeapi.Kube`. Every call is logged in
    `calls` as (verb, kind, name); `fail(verb, error)` makes the next such call raise `error`."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)
        self._failures: dict[str, list[Exception]] = {}

    # --- test set-up and inspection ---
    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        """Put an object in as if someone had created it (status included)."""
        body = copy.deepcopy(body)
        body.setdefault("apiVersion", API_VERSION)
        metadata = body.setdefault("metadata", {})
        metadata.setdefault("namespace", NAMESPACE)
        metadata.setdefault("uid", f"uid-{next(self._uids)}")
        metadata.setdefault("generation", 1)
        metadata.setdefault("creationTimestamp", NOW.isoformat())
        metadata["resourceVersion"] = str(next(self._versions))
        self.objects[self._key(body["kind"], metadata["namespace"], metadata["name"])] = body
        return copy.deepcopy(body)

    def remove(self, kind: str, name: str) -> None:
        """Take an object out as if someone else had deleted it (not logged as a call)."""
        del self.objects[self._key(kind, NAMESPACE, name)]

    def body(self, kind: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get(self._key(kind, NAMESPACE, name))
        return copy.deepcopy(found) if found is not None else None

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict((self.body(kind, name) or {}).get("status") or {})

    def fail(self, verb: str, error: Exception) -> None:
        self._failures.setdefault(verb, []).append(error)

    def count(self, verb: str, kind: str) -> int:
        return sum(1 for call in self.calls if call[:2] == (verb, kind))

    # --- kubeapi.Kube ---
    def get(self, resource: meta.Resource, namespace: str, name: str) -> dict[str, Any]:
        self._call("get", resource.kind, name)
        return copy.deepcopy(self._existing(resource.kind, namespace, name))

    def create(self, resource: meta.Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._call("create", resource.kind, body["metadata"]["name"])
        existing = self.objects.get(self._key(resource.kind, namespace, body["metadata"]["name"]))
        if existing is not None:
            return copy.deepcopy(existing)  # as kubeapi.Kube.create: the object of that name
        return self.add({**body, "metadata": {**body["metadata"], "namespace": namespace}})

    def replace_status(
        self, resource: meta.Resource, obj: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any]:
        metadata = obj["metadata"]
        self._call("replace_status", resource.kind, metadata["name"])
        stored = self._existing(resource.kind, metadata["namespace"], metadata["name"])
        if stored["metadata"]["resourceVersion"] != metadata["resourceVersion"]:
            raise kubeapi.Conflict("the object has been modified")
        stored["status"] = copy.deepcopy(status)
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(stored)

    def merge_patch(
        self, resource: meta.Resource, obj: dict[str, Any], patch: dict[str, Any], *, guarded: bool = True
    ) -> dict[str, Any]:
        metadata = obj["metadata"]
        self._call("merge_patch", resource.kind, metadata["name"])
        stored = self._existing(resource.kind, metadata["namespace"], metadata["name"])
        if guarded and stored["metadata"]["resourceVersion"] != metadata["resourceVersion"]:
            raise kubeapi.Conflict("the object has been modified")
        uid = (patch.get("metadata") or {}).get("uid")
        if uid is not None and uid != stored["metadata"]["uid"]:
            raise kubeapi.Conflict("Precondition failed: UID in precondition")
        before = copy.deepcopy(stored.get("spec"))
        _merge(stored, {k: v for k, v in patch.items() if k != "metadata"})
        _merge(stored["metadata"], {k: v for k, v in (patch.get("metadata") or {}).items() if k != "uid"})
        if stored.get("spec") != before:
            stored["metadata"]["generation"] += 1
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        if not stored["metadata"].get("finalizers") and stored["metadata"].get("deletionTimestamp"):
            del self.objects[self._key(resource.kind, metadata["namespace"], metadata["name"])]
        return copy.deepcopy(stored)

    def delete(self, resource: meta.Resource, obj: dict[str, Any]) -> None:
        """As `kubeapi.Kube.delete`: the object itself, by its uid (a precondition); one that is gone or
        was replaced by another of its name is success and the other is left alone. An object with
        finalizers is only marked for deletion, as the API server does."""
        metadata = obj["metadata"]
        self._call("delete", resource.kind, metadata["name"])
        key = self._key(resource.kind, metadata["namespace"], metadata["name"])
        stored = self.objects.get(key)
        if stored is None or stored["metadata"]["uid"] != metadata["uid"]:
            return  # NotFound, or Conflict on the uid precondition: kubeapi.Kube.delete treats both as done
        if stored["metadata"].get("finalizers"):
            stored["metadata"].setdefault("deletionTimestamp", NOW.isoformat())
            stored["metadata"]["resourceVersion"] = str(next(self._versions))
            return
        del self.objects[key]

    # --- plumbing ---
    @staticmethod
    def _key(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
        return kind, namespace, name

    def _call(self, verb: str, kind: str, name: str) -> None:
        self.calls.append((verb, kind, name))
        queued = self._failures.get(verb)
        if queued:
            raise queued.pop(0)

    def _existing(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.objects.get(self._key(kind, namespace, name))
        if found is None:
            raise kubeapi.NotFound(f"{kind} {namespace}/{name}")
        return found


@dataclasses.dataclass(frozen=True)
class Recorded:
    name: str
    type: str
    reason: str
    message: str


class FakeEvents:
    """`kubeapi.EventRecorder`: what was recorded, in order."""

    def __init__(self) -> None:
        self.recorded: list[Recorded] = []

    def record(self, obj: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        self.recorded.append(Recorded(obj["metadata"]["name"], type_, reason, message))

    def reasons(self, name: str) -> list[str]:
        return [event.reason for event in self.recorded if event.name == name]


class FakePayments:
    """`partners.payments.PaymentClient`: approves unless `answers` says otherwise (a `Charge` or an
    exception per call, in order); the requests are kept in `charges` and `refunds`. A key it has
    answered gets the same answer again (`answered`, as CONTRACT §2 promises), whatever `answers` says."""

    def __init__(self) -> None:
        self.breaker = "closed"
        self.answers: list[payments.Charge | Exception] = []
        self.refund_answers: list[Exception] = []
        self.charges: list[dict[str, Any]] = []
        self.refunds: list[tuple[str, str]] = []
        self.answered: dict[str, payments.Charge] = {}

    def breaker_state(self) -> str:
        return self.breaker

    def charge(self, **request: Any) -> payments.Charge:
        self.charges.append(request)
        known = self.answered.get(request["idempotency_key"])
        if known is not None:
            return known
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        answer = answer or charge("approved", f"tx-{len(self.charges)}", request["amount"])
        self.answered[request["idempotency_key"]] = answer
        return answer

    def refund(self, payment_id: str, *, idempotency_key: str) -> payments.Refund:
        self.refunds.append((payment_id, idempotency_key))
        if self.refund_answers:
            raise self.refund_answers.pop(0)
        return payments.Refund.model_validate({"id": payment_id, "status": "refunded"})


def charge(status: str, transaction_id: str, amount: int = 1, reason: str | None = None) -> payments.Charge:
    answer = {"id": transaction_id, "status": status, "amount": amount, "currency": "KRW", "reason": reason}
    return payments.Charge.model_validate(answer)


class FakeShipping:
    """`partners.shipping.ShippingClient`: shipments kept by id, one per idempotency key (as the
    contract promises); `failures` raise on the next calls, `moves` advances a shipment by hand."""

    def __init__(self) -> None:
        self.shipments: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.failures: list[Exception] = []

    def _answer(self, call: str, shipment_id: str) -> shipping.Shipment:
        self.requests.append((call, shipment_id))
        if self.failures:
            raise self.failures.pop(0)
        return shipping.Shipment.model_validate(self.shipments[shipment_id])

    def create(self, *, reference: str, address: str, item: str, idempotency_key: str) -> shipping.Shipment:
        if idempotency_key not in self.by_key:
            number = len(self.shipments) + 1
            self.by_key[idempotency_key] = f"ship-{number}"
            self.shipments[f"ship-{number}"] = {
                "id": f"ship-{number}",
                "trackingNumber": f"TRK-{number}",
                "status": "shipping",
                "carrier": "CJ",
                "reference": reference,
            }
        return self._answer("create", self.by_key[idempotency_key])

    def get(self, shipment_id: str) -> shipping.Shipment:
        return self._answer("get", shipment_id)

    def cancel(self, shipment_id: str, *, idempotency_key: str) -> shipping.Shipment:
        if self.shipments[shipment_id]["status"] == "delivered":
            self.requests.append(("cancel", shipment_id))
            raise errors.StateConflict("delivered", partner="shipping", status_code=409, error="state")
        self.move(shipment_id, "cancelled")
        return self._answer("cancel", shipment_id)

    def return_(self, shipment_id: str, *, idempotency_key: str) -> shipping.Shipment:
        self.move(shipment_id, "returning")
        return self._answer("return", shipment_id)

    def move(self, shipment_id: str, status: str) -> None:
        self.shipments[shipment_id]["status"] = status


class FakeSms:
    """`partners.sms.SmsSender`: what was sent; `down` makes every send fail as unreachable."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        self.down = False

    def send(self, *, to: str, text: str, reference: str, idempotency_key: str) -> str | None:
        if self.down:
            raise errors.PartnerUnavailable("down", partner="sms", kind="connection", outcome_unknown=False)
        self.sent.append({"to": to, "text": text, "reference": reference, "key": idempotency_key})
        return f"msg-{len(self.sent)}"

    def close(self) -> None:
        pass


class FakeClock:
    """`Context.clock`: the time stands still until the test moves it."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, delta: datetime.timedelta) -> None:
        self.now += delta


class FakeScheduler:
    """`runtime.scheduler.Scheduler` that only records: `waiting[key]` is (delay, callback); a request
    for a key already waiting merges into it (the earlier delay wins), as the real one does."""

    def __init__(self) -> None:
        self.waiting: dict[Hashable, tuple[float, Callable[[], None]]] = {}

    def call_later(
        self, key: Hashable, delay: float, callback: Callable[[], None], *, new_work: bool = False
    ) -> None:
        known = self.waiting.get(key)
        if known is None or delay < known[0]:
            self.waiting[key] = (delay, callback)

    def delay(self, *key: str) -> float | None:
        known = self.waiting.get(key)
        return known[0] if known else None

    def run(self, *key: str) -> None:
        """Run the call waiting for `key` now (as if its time had come)."""
        _, callback = self.waiting.pop(key)
        callback()

    def run_all(self, *, rounds: int = 20) -> None:
        """Run everything that waits, and what that queues, for a few rounds (time passing)."""
        for _ in range(rounds):
            if not self.waiting:
                return
            waiting, self.waiting = self.waiting, {}
            for _, callback in waiting.values():
                callback()


@dataclasses.dataclass
class World:
    kube: FakeKube
    events: FakeEvents
    payments: FakePayments
    shipping: FakeShipping
    sms: FakeSms
    scheduler: FakeScheduler
    clock: FakeClock
    ctx: context.Context

    def configure(self, **settings: Any) -> None:
        """Run with these settings instead of the defaults (e.g. short billing periods)."""
        self.ctx.settings = config.Settings(**{**_SETTINGS, **settings})
        self.ctx.billing_terms = None  # parsed again from the new settings

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object in the API (the watch would feed the stores later: they start empty)."""
        return self.kube.add(body)

    def conditions(self, kind: str, name: str) -> dict[str, tuple[str, str]]:
        found = self.kube.status(kind, name).get("conditions") or []
        return {c["type"]: (c["status"], c["reason"]) for c in found}


_SETTINGS: dict[str, Any] = {
    "payment_url": "http://payments.invalid",
    "shipping_url": "http://shipping.invalid",
    "payment_retry_seconds": 5.0,
    "shipping_poll_seconds": 7.0,
    "deferral_timeout_seconds": 3600.0,
}
SETTINGS = config.Settings(**_SETTINGS)


@pytest.fixture
def world() -> World:
    kube, events, scheduler, clock = FakeKube(), FakeEvents(), FakeScheduler(), FakeClock(NOW)
    partners = FakePayments(), FakeShipping(), FakeSms()
    ctx = context.Context(
        settings=SETTINGS,
        kube=cast(Any, kube),
        events=cast(Any, events),
        payment_client=cast(Any, partners[0]),
        shipping_client=cast(Any, partners[1]),
        sms_sender=partners[2],
        scheduler=cast(Any, scheduler),
        clock=clock,
    )
    return World(kube, events, *partners, scheduler, clock, ctx)


# --- objects as the API server holds them ----------------------------------------------------------------
def purifier(*, stock: int = 2) -> dict[str, Any]:
    return testkit.purifier("aqua", stock=stock, fee=30_000)


def rental(name: str = "kim", *, months: int = 12) -> dict[str, Any]:
    return testkit.rental(name, "aqua", customer="cust-1", months=months)


def owner(body: dict[str, Any]) -> dict[str, Any]:
    """The ownerReference the Rental controller puts on what it creates for `body`."""
    metadata = body["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Rental",
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def payment(
    rental: str = "kim",
    *,
    period: int | None = 1,
    owners: list[dict[str, Any]] | None = None,
    key: str | None = None,
    amount: int = 30_000,
    attempt: int = 1,
    refund: bool = False,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A rental's charge for `period` (None: its early-termination fee), named as the rental names it:
    `<rental>-p<period>` or `<rental>-fee`; its key is `rental-uid-x-p<period>` unless given."""
    suffix = f"p{period}" if period is not None else "fee"
    spec = {
        "rental": rental,
        "amount": amount,
        "currency": "KRW",
        "customerId": "cust-1",
        "idempotencyKey": key or f"rental-uid-x-{suffix}",
        "attempt": attempt,
        "refund": refund,
    }
    if period is not None:
        spec["period"] = period
    return {
        "kind": "Payment",
        "metadata": {"name": f"{rental}-{suffix}", "ownerReferences": owners or []},
        "spec": spec,
        "status": status or {},
    }


def delivery(
    name: str = "kim",
    *,
    owners: list[dict[str, Any]] | None = None,
    cancelled: bool = False,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "Delivery",
        "metadata": {"name": name, "ownerReferences": owners or []},
        "spec": {
            "rental": name,
            "purifier": "aqua",
            "address": "Seoul",
            "customerId": "cust-1",
            "cancelled": cancelled,
        },
        "status": status or {},
    }


@pytest.fixture
def make() -> Any:
    """The object builders above, for test modules (which cannot import this conftest)."""
    return types.SimpleNamespace(
        purifier=purifier,
        rental=rental,
        owner=owner,
        payment=payment,
        delivery=delivery,
        charge=charge,
        now=NOW,
    )
