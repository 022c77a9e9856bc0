"""The promises a crash must never break, checked on what the API server and the gateway's ledger show.

Users trust a payment-taking system only if a crash never charges twice, never loses a rental and never
oversells. The chaos runner (`rental_devenv.chaos`) kills the operator, restarts etcd and the API
server and makes the partner gateway fail; once everything has settled it reads every Rental,
Payment, Delivery and Purifier of its namespace and the gateway's `/admin/ledger`, and hands them to
`check`, which returns one `Violation` per broken promise, naming the object and the rule.

The checker is deliberately independent of the operator's code: it reads raw objects (dicts as the
API server returns them) and the partner's own records, and restates the contract (CONTRACT.md §1-2)
rather than importing the operator's decisions, so a bug in those decisions cannot hide itself. It
reads only fields the contract makes stable: a Purifier's `spec.stock`, `status.allocated`,
`status.available` and `status.transferred`, each Rental's own `StockReserved` condition (never a
Purifier's internal bookkeeping of who holds what, which may change shape), its `status.payment` and
`status.billing`, and each Payment's `spec.period` and `spec.attempt`.

Money under monthly billing (CONTRACT §1 "Billing"): the ledger knows a rental only by its reference
(`<namespace>/<rental>`), not by period or key, so "never charged twice" is checked as counts. Money
taken (a record approved, or approved then refunded) at most once per period plus once for an
early-termination fee; a ledger record at most once per attempt's key (an attempt is approved or
declined, once); and the money kept equals what `status.billing` says was paid and not refunded.

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

RESTING_PHASES = frozenset({"Confirmed", "Completed", "Cancelled", "Rejected"})
# Ledger statuses under which money stays with the business / a unit is out with the customer or on
# its way. Everything else (declined, refunded; cancelled, returned) has been undone or never happened.
_CHARGED = frozenset({"approved"})
# Ledger statuses of money that was taken at some point (kept, or taken and given back).
_TAKEN = frozenset({"approved", "refunded"})
# Endings of a contract in force that keep the paid periods (and maybe a fee): not netted to zero.
_KEEPS_PAID = frozenset({"Termination", "NonPayment"})
# History entries a monthly contract repeats: a rental back to Confirmed once a late month is paid and
# PastDue again on a later decline (never twice in a row), and a declined charge once per attempt (the
# entry carries the period, not the attempt). Every other entry is recorded once (per period, for
# the contract's entries).
_REENTERED = frozenset({("Rental", "Confirmed"), ("Rental", "PastDue")})
_PER_ATTEMPT = frozenset({("Billing", "ChargeDeclined")})
_SHIPMENT_ACTIVE = frozenset({"shipping", "delivered", "returning"})
_LEDGER_SHIPMENT = {"Shipping": "shipping", "Delivered": "delivered", "Returned": "returned"}


class Rule(enum.StrEnum):
    """One promise each; the value is what a violation report prints."""

    # Every rental ends at Confirmed (delivered, every text sent), Completed, Cancelled or Rejected.
    AT_REST = "at-rest"
    # A rental that was applied and not deleted still exists; a deleted one is gone.
    LOST = "not-lost"
    # A rental is charged at most once per period (plus one early-termination fee), and every key of an
    # attempt at a charge makes at most one payment record; one Payment per period.
    CHARGED_ONCE = "charged-once-per-period"
    # A Confirmed or Completed rental holds one approved, unrefunded charge of its monthly fee per period
    # paid, as much as its billing says was paid; its status.payment names one of them, amount and all.
    CONFIRMED_PAID = "confirmed-paid"
    # A Rejected or deleted rental, or one cancelled before delivery or within the withdrawal window,
    # nets to zero: every charge declined or refunded. One ended later keeps what its billing says.
    NETS_ZERO = "nets-to-zero"
    # A rental has at most one shipment; a Confirmed one has exactly one, in the state its status shows.
    SHIPPED_ONCE = "shipped-once"
    # A Cancelled, Rejected or deleted rental has no shipment under way, delivered or returning.
    SHIPMENT_STOPPED = "shipment-stopped"
    # A Purifier's allocated equals the number of its Rentals whose StockReserved condition is True.
    STOCK_COUNT = "stock-allocated"
    # available + allocated + transferred == stock whenever stock >= allocated + transferred (else
    # available is 0).
    STOCK_SUM = "stock-sum"
    # A Confirmed rental holds a unit (its delivery was not stopped); a Completed (the unit is the
    # customer's), Cancelled or Rejected one does not.
    STOCK_HOLDER = "stock-holder"
    # One text per (rental, transition): no two messages under one reference, no transition twice (a
    # month's charge once per period; Confirmed and PastDue, re-entered as months are paid late, never
    # twice in a row).
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

    A deleted rental's terms and Payments are gone with it, so what it may have been charged is bounded
    by the run: `periods_due` is how many billing periods can have come due for any rental (1 for a run
    shorter than `RENTAL_BILLING_PERIOD`, the default calendar month; None: not bounded), and
    `within_withdrawal` says every rental was cancelled or deleted within `RENTAL_WITHDRAWAL_PERIOD`
    of its delivery (a run shorter than it), so a deleted one nets to zero.
    """

    namespace: str
    rentals: Sequence[Object]
    payments: Sequence[Object]
    deliveries: Sequence[Object]
    purifiers: Sequence[Object]
    ledger: Mapping[str, Sequence[Object]]
    applied: frozenset[str] | None = None
    deleted: frozenset[str] = frozenset()
    periods_due: int | None = 1
    within_withdrawal: bool = True


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

    Resting (CONTRACT §1 and `docs/architecture.md`): Completed, Cancelled or Rejected; or Confirmed
    with its delivery delivered, or stopped by the carrier (cancelled, returned), since only those
    need no more polling (a month still to bill is a time to wait for, not work under way). And in
    every case the customer has been texted every transition (`notifiedSeq` reached the last history
    entry), since a text still owed is work a restart must not lose.
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


def _billing(rental: Object) -> Mapping[str, Any]:
    return _status(rental).get("billing") or {}


def _gone_or_undone(snapshot: Snapshot) -> dict[str, str]:
    """Rentals that must net to zero, with why: Rejected; Cancelled before delivery or within the
    withdrawal window (not ended by a termination or for non-payment); or no longer in the API server."""
    phases = {_name(r): _status(r).get("phase") for r in snapshot.rentals}
    endings = {_name(r): _billing(r).get("ending") for r in snapshot.rentals}
    undone = {
        name: str(phase)
        for name, phase in phases.items()
        if phase == "Rejected" or (phase == "Cancelled" and endings[name] not in _KEEPS_PAID)
    }
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


def _ids(records: Iterable[Object]) -> str:
    return ", ".join(f"{r.get('id')} ({r.get('status')})" for r in records)


def _money(snapshot: Snapshot) -> Iterable[Violation]:
    charges = _by_rental(snapshot.ledger.get("payments", ()), snapshot.namespace)
    yield from _charged_once_per_period(snapshot, charges)
    for rental in snapshot.rentals:
        if _status(rental).get("phase") in ("Confirmed", "Completed"):
            yield from _paid_up(rental, charges.get(_name(rental), []))
    for name, why in sorted(_gone_or_undone(snapshot).items()):
        if why == "deleted" and not snapshot.within_withdrawal:
            continue  # deleted after its window, it may keep its paid periods; unknown once gone
        kept = [r for r in charges.get(name, ()) if r.get("status") in _CHARGED]
        if kept:
            total = sum(int(r.get("amount") or 0) for r in kept)
            yield Violation(
                "Rental",
                name,
                Rule.NETS_ZERO,
                f"{why}, yet {total} stays charged ({', '.join(str(r.get('id')) for r in kept)})",
            )
    for rental in snapshot.rentals:
        if _status(rental).get("phase") == "Cancelled" and _billing(rental).get("ending") in _KEEPS_PAID:
            yield from _kept_as_billed(rental, charges.get(_name(rental), []))


def _charged_once_per_period(snapshot: Snapshot, charges: Mapping[str, list[Object]]) -> Iterable[Violation]:
    """Money taken at most once per period (plus one fee); a ledger record at most once per attempt.

    Periods are charged in order, so a rental charged for period k can have taken money k times for
    its periods; every attempt at a charge has a key of its own and makes one record, approved or
    declined. A deleted rental is bounded by the run (`Snapshot.periods_due`): in a run shorter than a
    billing period only period 1 is charged, and a decline of it rejects the rental (no retry).
    """
    payments: dict[str, list[Object]] = collections.defaultdict(list)
    for payment in snapshot.payments:
        payments[str(payment.get("spec", {}).get("rental", ""))].append(payment)
    present = {_name(rental): rental for rental in snapshot.rentals}
    for name in sorted(set(charges) | set(payments)):
        records = charges.get(name, [])
        taken = [r for r in records if r.get("status") in _TAKEN]
        owned = payments.get(name, [])
        periods = [int(p["spec"]["period"]) for p in owned if p.get("spec", {}).get("period") is not None]
        fees = [p for p in owned if p.get("spec", {}).get("period") is None]
        repeated = sorted({k for k in periods if periods.count(k) > 1})
        if repeated or len(fees) > 1:
            what = f"periods {repeated}" if repeated else "the early-termination fee"
            yield Violation("Rental", name, Rule.CHARGED_ONCE, f"more than one Payment for {what}")
        rental = present.get(name)
        if rental is None:
            if snapshot.periods_due is not None:
                allowed = snapshot.periods_due + 1  # and at most one fee
                if snapshot.periods_due == 1 and len(records) > 1:
                    yield Violation(
                        "Rental", name, Rule.CHARGED_ONCE, f"{len(records)} payment records: {_ids(records)}"
                    )
                elif len(taken) > allowed:
                    yield Violation(
                        "Rental", name, Rule.CHARGED_ONCE, f"{len(taken)} charges taken: {_ids(taken)}"
                    )
            continue
        billing = _billing(rental)
        charged = max([int(billing.get("periodsPaid") or 0), *periods, 1 if records else 0])
        fee = 1 if fees or billing.get("feeAmount") else 0
        if len(taken) > charged + fee:
            yield Violation(
                "Rental",
                name,
                Rule.CHARGED_ONCE,
                f"{len(taken)} charges taken for {charged} period(s)"
                f"{' and a fee' if fee else ''}: {_ids(taken)}",
            )
            continue
        # Every attempt is one record; a period's Payment pruned from the history hides its attempts,
        # so the count is checked only while every period charged still has its Payment.
        if all(k in periods for k in range(1, charged + 1)):
            attempts = sum(int(p.get("spec", {}).get("attempt") or 1) for p in owned)
            if len(records) > attempts:
                yield Violation(
                    "Rental",
                    name,
                    Rule.CHARGED_ONCE,
                    f"{len(records)} payment records for {attempts} attempt key(s): {_ids(records)}",
                )


def _paid_up(rental: Object, records: Sequence[Object]) -> Iterable[Violation]:
    """A rental in force (or completed) holds one approved charge of its monthly fee per period paid."""
    name, status = _name(rental), _status(rental)
    billing = _billing(rental)
    held = [r for r in records if r.get("status") in _CHARGED]
    paid = int(billing.get("periodsPaid") or 0) if billing else 1
    if status.get("phase") == "Completed" and paid != int(billing.get("periodsTotal") or 0):
        yield Violation(
            "Rental",
            name,
            Rule.CONFIRMED_PAID,
            f"Completed with {paid} of {billing.get('periodsTotal')} paid",
        )
    if len(held) != paid:
        yield Violation(
            "Rental",
            name,
            Rule.CONFIRMED_PAID,
            f"{status.get('phase')} with {len(held)} approved, unrefunded charges for {paid} period(s) paid",
        )
        return
    if billing:
        fee, currency = billing.get("monthlyFee"), billing.get("currency")
        wrong = [r for r in held if r.get("amount") != fee or r.get("currency") != currency]
        if wrong:
            yield Violation(
                "Rental",
                name,
                Rule.CONFIRMED_PAID,
                f"the monthly fee is {fee} {currency}, the ledger charged "
                + ", ".join(f"{r.get('amount')} {r.get('currency')}" for r in wrong),
            )
            return
        total = sum(int(r.get("amount") or 0) for r in held)
        if total != int(billing.get("paidAmount") or 0) - int(billing.get("refundedAmount") or 0):
            yield Violation(
                "Rental",
                name,
                Rule.CONFIRMED_PAID,
                f"billing shows {billing.get('paidAmount')} paid and {billing.get('refundedAmount')} "
                f"refunded, the ledger holds {total}",
            )
            return
    summary = status.get("payment") or {}
    charge = next((r for r in held if r.get("id") == summary.get("transactionId")), None)
    if summary.get("transactionId") is not None and charge is None:
        yield Violation(
            "Rental",
            name,
            Rule.CONFIRMED_PAID,
            f"status names transaction {summary.get('transactionId')}, not an approved charge of "
            f"the ledger's ({_ids(held)})",
        )
        return
    if charge is None and held:
        charge = held[-1]
    if charge is not None and (
        summary.get("amount") != charge.get("amount") or summary.get("currency") != charge.get("currency")
    ):
        yield Violation(
            "Rental",
            name,
            Rule.CONFIRMED_PAID,
            f"status shows {summary.get('amount')} {summary.get('currency')}, the ledger charged "
            f"{charge.get('amount')} {charge.get('currency')}",
        )


def _kept_as_billed(rental: Object, records: Sequence[Object]) -> Iterable[Violation]:
    """Ended by a termination or for non-payment: the paid periods (and a fee) kept, nothing else."""
    billing = _billing(rental)
    kept = sum(int(r.get("amount") or 0) for r in records if r.get("status") in _CHARGED)
    owed = int(billing.get("paidAmount") or 0) - int(billing.get("refundedAmount") or 0)
    fee = int(billing.get("feeAmount") or 0)
    if kept not in (owed, owed + fee):  # the fee, if any, may have been declined
        yield Violation(
            "Rental",
            _name(rental),
            Rule.NETS_ZERO,
            f"ended ({billing.get('ending')}) keeping {kept}; billing shows {owed} paid"
            f"{f' and a fee of {fee}' if fee else ''}",
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
        if phase in ("Completed", "Cancelled", "Rejected") and reserved:
            yield Violation("Rental", name, Rule.STOCK_HOLDER, f"{phase}, yet StockReserved is True")
        stopped = _delivery_phase(rental) in ("Cancelled", "Returned")
        if phase == "Confirmed" and not reserved and not stopped:
            yield Violation("Rental", name, Rule.STOCK_HOLDER, "Confirmed, yet StockReserved is not True")
    for purifier in snapshot.purifiers:
        name, status = _name(purifier), _status(purifier)
        stock = int(purifier.get("spec", {}).get("stock", 0))
        allocated, available = status.get("allocated"), status.get("available")
        transferred = int(status.get("transferred") or 0)  # units that became customers' own
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
        sold = f" + transferred {transferred}" if transferred else ""
        if stock >= allocated + transferred and available + allocated + transferred != stock:
            yield Violation(
                "Purifier",
                name,
                Rule.STOCK_SUM,
                f"available {available} + allocated {allocated}{sold} != stock {stock}",
            )
        if stock < allocated + transferred and available != 0:
            yield Violation(
                "Purifier",
                name,
                Rule.STOCK_SUM,
                f"overcommitted (stock {stock} < {allocated}{sold}), yet available {available}",
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
        yield from _transitions_once(rental)
        if at_rest(rental) is not None:
            continue
        missing = [
            int(entry.get("seq", 0))
            for entry in _history(rental)
            if references[f"{snapshot.namespace}/{name}/{entry.get('seq')}"] == 0
        ]
        if missing:
            yield Violation("Rental", name, Rule.SMS_SENT, f"history entries never texted: seq {missing}")


def _transitions_once(rental: Object) -> Iterable[Violation]:
    seen: collections.Counter[tuple[str, str, str]] = collections.Counter()
    last: dict[str, str] = {}  # kind -> the phase of its latest entry
    for entry in _history(rental):
        kind, phase = str(entry.get("kind", "Rental")), str(entry.get("phase"))
        if (kind, phase) in _REENTERED and last.get(kind) == phase:
            seen[(kind, phase, "in a row")] += 2  # reported as recorded twice
        elif (kind, phase) not in _REENTERED | _PER_ATTEMPT:
            period = entry.get("period")
            seen[(kind, phase, f" for period {period}" if period is not None else "")] += 1
        last[kind] = phase
    for (kind, phase, which), count in sorted(seen.items()):
        if count > 1:
            what = f"{kind} {phase}{which}" if which != "in a row" else f"{kind} {phase} (in a row)"
            yield Violation(
                "Rental",
                _name(rental),
                Rule.SMS_ONCE,
                f"transition to {what} recorded (and texted) {count} times",
            )


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
