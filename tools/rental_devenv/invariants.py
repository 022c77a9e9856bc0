"""The promises a crash must never break, checked on what the API server and the gateway's ledger show.

Users trust a payment-taking system only if a crash never charges twice, never loses a rental and never
oversells. The chaos runner (`rental_devenv.chaos`) kills the operator, restarts etcd and the API
server and makes the partner gateway fail; once everything has settled it reads every Rental,
Payment, Delivery and Purifier of its namespace and the gateway's `/admin/ledger`, and hands them to
`check`, which returns one `Violation` per broken promise, naming the object and the rule.

The checker is deliberately independent of the operator's code: it reads raw objects (dicts as the
API server returns them) and the partner's own records, and restates the contract (CONTRACT.md §1-2)
rather than importing the operator's decisions, so a bug in those decisions cannot hide itself. It
reads only fields the contract makes stable: a Purifier's `spec.stock`, `status.allocated` and
`status.available`, and each Rental's own `StockReserved` condition (never a Purifier's internal
bookkeeping of who holds what, which may change shape).

`unsettled` says what is still moving (the runner polls it to detect quiescence); `check` is the verdict.
Both are pure functions of a `Snapshot`.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["RESTING_PHASES", "Rule", "Snapshot", "Violation", "at_rest", "check", "holds_unit", "unsettled"]

Object = Mapping[str, Any]

RESTING_PHASES = frozenset({"Confirmed", "Cancelled", "Rejected"})
# Ledger statuses under which money stays with the business / a unit is out with the customer or on
# its way. Everything else (declined, refunded; cancelled, returned) has been undone or never happened.
_CHARGED = frozenset({"approved"})
_SHIPMENT_ACTIVE = frozenset({"shipping", "delivered", "returning"})
_LEDGER_SHIPMENT = {"Shipping": "shipping", "Delivered": "delivered", "Returned": "returned"}


class Rule(enum.StrEnum):
    """One promise each; the value is what a violation report prints."""

    # Every rental ends at Confirmed (delivered, every text sent), Cancelled or Rejected.
    AT_REST = "at-rest"
    # A rental that was applied and not deleted still exists; a deleted one is gone.
    LOST = "not-lost"
    # A rental is charged at most once (one payment record per rental in the ledger).
    CHARGED_ONCE = "charged-once"
    # A Confirmed rental holds exactly one approved, unrefunded charge, of the amount its status shows.
    CONFIRMED_PAID = "confirmed-paid"
    # A Cancelled, Rejected or deleted rental nets to zero: every charge declined or refunded.
    NETS_ZERO = "nets-to-zero"
    # A rental has at most one shipment; a Confirmed one has exactly one, in the state its status shows.
    SHIPPED_ONCE = "shipped-once"
    # A Cancelled, Rejected or deleted rental has no shipment under way, delivered or returning.
    SHIPMENT_STOPPED = "shipment-stopped"
    # A Purifier's allocated equals the number of its Rentals whose StockReserved condition is True.
    STOCK_COUNT = "stock-allocated"
    # available + allocated == stock whenever stock >= allocated (else available is 0).
    STOCK_SUM = "stock-sum"
    # A Confirmed rental holds a unit (its delivery was not stopped); a Cancelled or Rejected one does not.
    STOCK_HOLDER = "stock-holder"
    # One text per (rental, transition): no two messages under one reference, no transition twice.
    SMS_ONCE = "sms-once"
    # Every transition in a resting rental's history was texted.
    SMS_SENT = "sms-sent"
    # Every Payment and Delivery is owned by a Rental that exists (garbage collection ran).
    ORPHAN = "no-orphans"
    # Nothing stays half-deleted: no object carries a deletionTimestamp at rest.
    FINALIZER = "no-finalizer-left"


# Rules that hold only once everything settled: while one of them is broken the system may still be
# working, so the runner waits on these (bounded) before taking the verdict.
_TRANSIENT = frozenset({Rule.AT_REST, Rule.ORPHAN, Rule.FINALIZER})


@dataclasses.dataclass(frozen=True)
class Violation:
    kind: str
    name: str
    rule: Rule
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.rule}: {self.detail}"


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One namespace as listed from the API server, plus the partner's ledger (`/admin/ledger`).

    `applied` and `deleted` are the rental names the caller created and deleted (None: unknown, and
    the not-lost rule is skipped). Ledger records of other namespaces are ignored.
    """

    namespace: str
    rentals: Sequence[Object]
    payments: Sequence[Object]
    deliveries: Sequence[Object]
    purifiers: Sequence[Object]
    ledger: Mapping[str, Sequence[Object]]
    applied: frozenset[str] | None = None
    deleted: frozenset[str] = frozenset()


# --- small readers over raw objects -------------------------------------------------------------------
def _name(obj: Object) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _status(obj: Object) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _condition(obj: Object, type_: str) -> str | None:
    for condition in _status(obj).get("conditions") or ():
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None


def holds_unit(rental: Object) -> bool:
    """Whether a Rental's own status records a unit of its Purifier (StockReserved True)."""
    return _condition(rental, "StockReserved") == "True"


def _history(rental: Object) -> list[Mapping[str, Any]]:
    return list(_status(rental).get("history") or ())


def _delivery_phase(rental: Object) -> str | None:
    phase = (_status(rental).get("delivery") or {}).get("phase")
    return str(phase) if phase is not None else None


def at_rest(rental: Object) -> str | None:
    """None when the rental needs no more work; otherwise why it is not at rest.

    Resting (CONTRACT §1 and `docs/architecture.md`): Cancelled or Rejected; or Confirmed with its
    delivery delivered, or stopped by the carrier (cancelled, returned), since only those need no
    more polling. And in every case the customer has been texted every transition (`notifiedSeq`
    reached the last history entry), since a text still owed is work a restart must not lose.
    """
    if rental.get("metadata", {}).get("deletionTimestamp"):
        return "being deleted"
    phase = _status(rental).get("phase")
    if phase not in RESTING_PHASES:
        return f"phase {phase}"
    if phase == "Confirmed" and _delivery_phase(rental) not in {"Delivered", "Cancelled", "Returned"}:
        return f"Confirmed with delivery {_delivery_phase(rental)}"
    history = _history(rental)
    last = max((int(entry.get("seq", 0)) for entry in history), default=0)
    notified = int(_status(rental).get("notifiedSeq") or 0)
    if notified < last:
        return f"texted through seq {notified} of {last}"
    return None


def _ledger_rental(reference: str, namespace: str) -> str | None:
    """The rental name of a ledger reference (`ns/name`, or `ns/name/seq` for messages) in `namespace`."""
    parts = reference.split("/")
    if len(parts) < 2 or parts[0] != namespace:
        return None
    return parts[1]


def _by_rental(records: Iterable[Object], namespace: str) -> dict[str, list[Object]]:
    grouped: dict[str, list[Object]] = collections.defaultdict(list)
    for record in records:
        rental = _ledger_rental(str(record.get("reference", "")), namespace)
        if rental is not None:
            grouped[rental].append(record)
    return grouped


# --- the rules -----------------------------------------------------------------------------------------
def check(snapshot: Snapshot) -> list[Violation]:
    """Every broken promise in `snapshot`, in a stable order (empty: all invariants hold)."""
    found: list[Violation] = []
    found += _resting(snapshot)
    found += _lost(snapshot)
    found += _money(snapshot)
    found += _shipments(snapshot)
    found += _stock(snapshot)
    found += _messages(snapshot)
    found += _owned(snapshot)
    return found


def unsettled(snapshot: Snapshot) -> list[Violation]:
    """The violations that may still resolve by themselves (work in progress): wait while any remain."""
    return [violation for violation in check(snapshot) if violation.rule in _TRANSIENT]


def _resting(snapshot: Snapshot) -> Iterable[Violation]:
    for rental in snapshot.rentals:
        why = at_rest(rental)
        if why is not None and why != "being deleted":  # that one is the finalizer rule's
            yield Violation("Rental", _name(rental), Rule.AT_REST, f"not at rest: {why}")
    for kind, objects in (
        ("Rental", snapshot.rentals),
        ("Payment", snapshot.payments),
        ("Delivery", snapshot.deliveries),
        ("Purifier", snapshot.purifiers),
    ):
        for obj in objects:
            metadata = obj.get("metadata", {})
            if metadata.get("deletionTimestamp"):
                yield Violation(
                    kind,
                    _name(obj),
                    Rule.FINALIZER,
                    f"deleted at {metadata['deletionTimestamp']} but still held by finalizers "
                    f"{metadata.get('finalizers') or []}",
                )


def _lost(snapshot: Snapshot) -> Iterable[Violation]:
    if snapshot.applied is None:
        return
    present = {_name(rental) for rental in snapshot.rentals}
    for name in sorted(snapshot.applied - snapshot.deleted - present):
        yield Violation("Rental", name, Rule.LOST, "applied, never deleted, and no longer exists")
    for name in sorted(snapshot.deleted & present):
        rental = next(r for r in snapshot.rentals if _name(r) == name)
        if not rental.get("metadata", {}).get("deletionTimestamp"):
            yield Violation("Rental", name, Rule.LOST, "deleted, yet exists without a deletion in progress")


def _gone_or_undone(snapshot: Snapshot) -> dict[str, str]:
    """Rentals that must net to zero, with why: Cancelled, Rejected, or no longer in the API server."""
    phases = {_name(r): _status(r).get("phase") for r in snapshot.rentals}
    undone = {name: str(phase) for name, phase in phases.items() if phase in ("Cancelled", "Rejected")}
    mentioned = set(_by_rental(snapshot.ledger.get("payments", ()), snapshot.namespace))
    mentioned |= set(_by_rental(snapshot.ledger.get("shipments", ()), snapshot.namespace))
    for name in mentioned - set(phases):
        undone[name] = "deleted"
    return undone


def _more_than_one(grouped: Mapping[str, list[Object]], rule: Rule, what: str) -> Iterable[Violation]:
    for name, records in sorted(grouped.items()):
        if len(records) > 1:
            ids = ", ".join(f"{r.get('id')} ({r.get('status')})" for r in records)
            yield Violation("Rental", name, rule, f"{len(records)} {what}: {ids}")


def _confirmed(snapshot: Snapshot) -> Iterable[Object]:
    return (rental for rental in snapshot.rentals if _status(rental).get("phase") == "Confirmed")


def _money(snapshot: Snapshot) -> Iterable[Violation]:
    charges = _by_rental(snapshot.ledger.get("payments", ()), snapshot.namespace)
    yield from _more_than_one(charges, Rule.CHARGED_ONCE, "payment records")
    for rental in _confirmed(snapshot):
        name = _name(rental)
        held = [r for r in charges.get(name, ()) if r.get("status") in _CHARGED]
        if len(held) != 1:
            yield Violation(
                "Rental",
                name,
                Rule.CONFIRMED_PAID,
                f"Confirmed with {len(held)} approved, unrefunded charges",
            )
            continue
        summary = _status(rental).get("payment") or {}
        charge = held[0]
        if summary.get("amount") != charge.get("amount") or summary.get("currency") != charge.get("currency"):
            yield Violation(
                "Rental",
                name,
                Rule.CONFIRMED_PAID,
                f"status shows {summary.get('amount')} {summary.get('currency')}, the ledger charged "
                f"{charge.get('amount')} {charge.get('currency')}",
            )
        if summary.get("transactionId") not in (None, charge.get("id")):
            yield Violation(
                "Rental",
                name,
                Rule.CONFIRMED_PAID,
                f"status names transaction {summary.get('transactionId')}, "
                f"the ledger's charge is {charge.get('id')}",
            )
    for name, why in sorted(_gone_or_undone(snapshot).items()):
        kept = [r for r in charges.get(name, ()) if r.get("status") in _CHARGED]
        if kept:
            total = sum(int(r.get("amount") or 0) for r in kept)
            yield Violation(
                "Rental",
                name,
                Rule.NETS_ZERO,
                f"{why}, yet {total} stays charged ({', '.join(str(r.get('id')) for r in kept)})",
            )


def _shipments(snapshot: Snapshot) -> Iterable[Violation]:
    shipped = _by_rental(snapshot.ledger.get("shipments", ()), snapshot.namespace)
    yield from _more_than_one(shipped, Rule.SHIPPED_ONCE, "shipments")
    for rental in _confirmed(snapshot):
        name = _name(rental)
        records = shipped.get(name, [])
        phase = _delivery_phase(rental)
        expected = _LEDGER_SHIPMENT.get(phase or "")
        if not records:
            yield Violation(
                "Rental", name, Rule.SHIPPED_ONCE, f"Confirmed (delivery {phase}) with no shipment"
            )
        elif expected is not None and records[-1].get("status") != expected:
            yield Violation(
                "Rental",
                name,
                Rule.SHIPPED_ONCE,
                f"delivery shows {phase}, the carrier shows {records[-1].get('status')}",
            )
    for name, why in sorted(_gone_or_undone(snapshot).items()):
        active = [r for r in shipped.get(name, ()) if r.get("status") in _SHIPMENT_ACTIVE]
        if active:
            states = ", ".join(f"{r.get('id')} ({r.get('status')})" for r in active)
            yield Violation(
                "Rental", name, Rule.SHIPMENT_STOPPED, f"{why}, yet a shipment is not stopped: {states}"
            )


def _stock(snapshot: Snapshot) -> Iterable[Violation]:
    holding: collections.Counter[str] = collections.Counter()
    for rental in snapshot.rentals:
        name, phase = _name(rental), _status(rental).get("phase")
        reserved = holds_unit(rental)
        if reserved:
            holding[str(rental.get("spec", {}).get("purifier", ""))] += 1
        if phase in ("Cancelled", "Rejected") and reserved:
            yield Violation("Rental", name, Rule.STOCK_HOLDER, f"{phase}, yet StockReserved is True")
        stopped = _delivery_phase(rental) in ("Cancelled", "Returned")
        if phase == "Confirmed" and not reserved and not stopped:
            yield Violation("Rental", name, Rule.STOCK_HOLDER, "Confirmed, yet StockReserved is not True")
    for purifier in snapshot.purifiers:
        name, status = _name(purifier), _status(purifier)
        stock = int(purifier.get("spec", {}).get("stock", 0))
        allocated, available = status.get("allocated"), status.get("available")
        if allocated is None or available is None:
            yield Violation(
                "Purifier", name, Rule.STOCK_SUM, "status.allocated or status.available is not set"
            )
            continue
        if allocated != holding[name]:
            yield Violation(
                "Purifier",
                name,
                Rule.STOCK_COUNT,
                f"allocated {allocated}, but {holding[name]} rentals hold a unit (StockReserved True)",
            )
        if stock >= allocated and available + allocated != stock:
            yield Violation(
                "Purifier",
                name,
                Rule.STOCK_SUM,
                f"available {available} + allocated {allocated} != stock {stock}",
            )
        if stock < allocated and available != 0:
            yield Violation(
                "Purifier",
                name,
                Rule.STOCK_SUM,
                f"overcommitted (stock {stock} < {allocated}), yet available {available}",
            )


def _messages(snapshot: Snapshot) -> Iterable[Violation]:
    references = collections.Counter(
        str(m.get("reference", ""))
        for m in snapshot.ledger.get("messages", ())
        if _ledger_rental(str(m.get("reference", "")), snapshot.namespace) is not None
    )
    for reference, count in sorted(references.items()):
        if count > 1:
            owner = reference.split("/")[1]
            yield Violation("Rental", owner, Rule.SMS_ONCE, f"{count} messages under reference {reference}")
    for rental in snapshot.rentals:
        name = _name(rental)
        seen: collections.Counter[tuple[str, str]] = collections.Counter(
            (str(entry.get("kind", "Rental")), str(entry.get("phase"))) for entry in _history(rental)
        )
        for (kind, phase), count in sorted(seen.items()):
            if count > 1:
                yield Violation(
                    "Rental",
                    name,
                    Rule.SMS_ONCE,
                    f"transition to {kind} {phase} recorded (and texted) {count} times",
                )
        if at_rest(rental) is not None:
            continue
        missing = [
            int(entry.get("seq", 0))
            for entry in _history(rental)
            if references[f"{snapshot.namespace}/{name}/{entry.get('seq')}"] == 0
        ]
        if missing:
            yield Violation("Rental", name, Rule.SMS_SENT, f"history entries never texted: seq {missing}")


def _owned(snapshot: Snapshot) -> Iterable[Violation]:
    rentals = {str(r.get("metadata", {}).get("uid")): _name(r) for r in snapshot.rentals}
    for kind, objects in (("Payment", snapshot.payments), ("Delivery", snapshot.deliveries)):
        for obj in objects:
            owners = [
                ref
                for ref in obj.get("metadata", {}).get("ownerReferences") or ()
                if ref.get("kind") == "Rental"
            ]
            if not owners:
                yield Violation(kind, _name(obj), Rule.ORPHAN, "no Rental owner reference")
            elif all(str(ref.get("uid")) not in rentals for ref in owners):
                yield Violation(
                    kind,
                    _name(obj),
                    Rule.ORPHAN,
                    f"its Rental {owners[0].get('name')} (uid {owners[0].get('uid')}) is gone",
                )
