"""MyPage's read model: what each customer's rentals look like now, kept in memory from watch events.

Every MyPage request is answered from here and nothing else, so the write side (the API server and
the operator) never sees read traffic. The projection keeps only what the page shows, in a compact
form: a record (a tuple) per Rental holding its name, customer id and tracking number, one `bytes`
value with its numbers (resourceVersion, updatedAt; the contract's account: what is paid, when the
next charge, the term's end and the withdrawal window's end fall, a declined charge being retried;
seq, phase code and time of each history entry; period and amount of each monthly receipt), and two
tuples shared with every rental that looks the same: the summary (purifier, phases, amount,
message, the contract's terms) and the history's messages. Rentals repeat a few phases, purifiers,
amounts, terms and the operator's templated messages, so those are stored once; strings are
interned. Purifiers contribute their model name, looked up when serving, so a renamed model shows at
once. 100,000 rentals take well under 50 MB (docs/mypage.md has the measured figure).

What cancelling now would cost (`cancellation`) is not kept but computed per request from the
record and the time, with the operator's own rule (`reconcilers.billing.preview`): a refund or a fee
changes when the withdrawal window closes, without any event to say so.

Feeding and reading happen on different threads (Kopf's handler pool or the informer's threads
write, the aiohttp event loop reads). Writers serialise on a lock; readers take no lock at all:
records are immutable and each customer's rentals are a tuple that a writer replaces whole, so a
reader always sees a consistent before or after.

Newer wins: a version older than the one known is ignored, the same rule as `runtime.store`
(resourceVersions compared as integers), so a late or repeated event never moves a rental back.

One object never stops the projection for everyone else: the schema admits numbers the packed form
cannot hold (a history seq past 2**32, say), and an object the projection cannot read is skipped
with a log line naming it and the field, and counted (`rental_mypage_skipped_objects_total`), while
every other object is kept and the listing that carried it still completes (so `/readyz` does not
wait on it). A skipped Rental is not shown at all, rather than shown as an older version: the
projection never presents what it knows to be superseded, and the next readable version comes back.
Called by the Kopf handlers (`handlers.watches`), by `mypage.informer`, and by `mypage.server`.
"""

from __future__ import annotations

import datetime
import logging
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple, TypeVar, cast

from rental_operator.api import payment as api_payment
from rental_operator.mypage import metrics
from rental_operator.reconcilers import billing

__all__ = [
    "DEFAULT_PHASE",
    "IN_FORCE",
    "UNSETTLED",
    "Billing",
    "Cancellation",
    "Charge",
    "History",
    "PastDue",
    "Projection",
    "Purifier",
    "Rental",
    "cancellation",
]

logger = logging.getLogger(__name__)

# A Rental whose status the operator has not written yet was accepted and waits: CONTRACT §1 calls
# that Pending, and so does the page.
DEFAULT_PHASE: Final = "Pending"
# Phases of a contract in force: only these can be cancelled at a cost worth previewing (before,
# nothing is owed; after, nothing is left to cancel).
IN_FORCE: Final = frozenset({"Confirmed", "PastDue"})
# Applications still being decided (not in force, not refused): what the web app's limit of open
# applications per customer counts. A rental without a status yet shows as Pending.
UNSETTLED: Final = frozenset({"Pending", "AwaitingPayment", "PaymentDeferred"})

_T = TypeVar("_T", bound=tuple[Any, ...])

# The packed numbers, in this order: the header; the account if the rental has a contract (flag
# bit 0); the declined charge if it is past due (bit 1); one entry per history entry (bit 3: consecutive
# seqs, the first packed once before them); then the
# period and amount of each history entry that is a monthly receipt (Billing/Charged). Receipts
# almost always repeat one amount (the monthly fee), so when they all do (bit 2) it is packed once
# and each receipt is just its period: with a history of monthly receipts that is 1 byte each
# instead of 9. Times are Unix seconds, 0 for absent. The fixed fields of a contract (its terms)
# are in the shared summary.
_HEADER: Final = struct.Struct("<qIBH")  # resourceVersion, updatedAt, flags, history entries
_ACCOUNT: Final = struct.Struct(
    "<QBIII"
)  # paidAmount, periodsPaid, nextChargeAt, termEndsAt, withdrawalEndsAt
_PAST_DUE: Final = struct.Struct("<BBII")  # period, attempts, since, nextAttemptAt
_ENTRY: Final = struct.Struct("<IHI")  # seq, (kind, phase) code, at (Unix seconds)
# The operator numbers history entries 1, 2, 3, … and cuts the oldest, so the seqs of a history are
# almost always consecutive: then (bit 3) the first is packed once and each entry is its code and time,
# 6 bytes instead of 10 (about 49 bytes a rental with twelve entries).
_FIRST_SEQ: Final = struct.Struct("<I")
_STEP: Final = struct.Struct("<HI")  # (kind, phase) code, at (Unix seconds)
_RECEIPT: Final = struct.Struct("<BQ")  # period (0: unknown), amount (_NO_AMOUNT: unknown)
_AMOUNT: Final = struct.Struct("<Q")  # the amount all receipts share
_HAS_ACCOUNT: Final = 1
_HAS_PAST_DUE: Final = 2
_ONE_AMOUNT: Final = 4
_CONSECUTIVE: Final = 8
_NO_AMOUNT: Final = 2**64 - 1
_RECEIPT_CODE: Final = ("Billing", "Charged")
_MAX_CODES: Final = 65535
# What the packed fields hold; a value outside is refused where it is packed, not wrapped or clamped
# (a wrapped seq would show another entry's number).
_VERSION_RANGE: Final = range(2**63)
_SEQ_RANGE: Final = range(2**32)
_ENTRIES_RANGE: Final = range(2**16)
# Amounts go out in JSON, where clients read numbers as doubles: beyond 2**53 a fee would show as
# another figure. No real fee comes near; the schema bounds them far higher, or only says `>= 0`.
_AMOUNT_RANGE: Final = range(2**53)
# Periods and months: a term is at most 60 of them (a byte holds them); attempts: the schema's bound.
_PERIOD_RANGE: Final = range(api_payment.MAX_PERIOD + 1)
_ATTEMPTS_RANGE: Final = range(api_payment.MAX_ATTEMPTS + 1)
_PERCENT_RANGE: Final = range(101)
# Distinct summaries and message tuples kept for sharing; past this the cache starts over (records
# keep what they point to), so unusual data costs memory per rental but never grows the cache.
_MAX_SHARED: Final = 50_000


class History(NamedTuple):
    """One transition of a rental's timeline (`status.history`)."""

    seq: int
    kind: str
    phase: str
    at: int  # Unix seconds
    message: str


class PastDue(NamedTuple):
    """A declined monthly charge being retried (`status.billing.pastDue`)."""

    period: int
    since: int | None  # Unix seconds
    attempts: int
    next_attempt_at: int | None  # Unix seconds; None once the dunning schedule is exhausted


class Billing(NamedTuple):
    """The monthly contract (`status.billing`): its terms and where its account stands."""

    monthly_fee: int
    currency: str | None
    mandatory_months: int
    early_termination_percent: int
    periods_total: int
    periods_paid: int
    paid_amount: int
    next_charge_at: int | None  # Unix seconds; None when nothing more is owed
    term_ends_at: int | None
    withdrawal_ends_at: int | None  # None before delivery: a cancellation then is a withdrawal
    past_due: PastDue | None


class Charge(NamedTuple):
    """A monthly charge received: a `Billing`/`Charged` entry of the history."""

    period: int | None
    amount: int | None
    at: int  # Unix seconds


class Cancellation(NamedTuple):
    """What cancelling now would do, in minor units of the contract's currency."""

    ending: str  # Withdrawal (everything refunded) or Termination (a fee inside the mandatory period)
    refund: int
    fee: int


class Purifier(NamedTuple):
    """A catalog entry as the web app shows it (`spec` and `status.available` of a Purifier)."""

    namespace: str
    name: str
    model: str | None
    display_name: str | None
    monthly_fee: int | None  # minor units of `currency`; None if the Purifier has none (unrentable)
    currency: str
    mandatory_months: int
    early_termination_percent: int
    available: int  # units free now (0 until the operator has counted them)


class Rental(NamedTuple):
    """A rental as MyPage shows it: what the JSON API and the page are made of."""

    namespace: str
    name: str
    customer: str
    purifier: str
    model: str | None
    display_name: str | None
    phase: str
    message: str
    payment_phase: str | None
    amount: int | None
    currency: str | None
    delivery_phase: str | None
    tracking_number: str | None
    updated_at: int  # Unix seconds: the newest history entry, else the rental's creation
    history: tuple[History, ...]
    billing: Billing | None = None  # None until the operator has locked the contract's terms
    charges: tuple[Charge, ...] = ()  # the receipts still in the history, oldest first


def cancellation(rental: Rental, now: float) -> Cancellation | None:
    """What cancelling `rental` at `now` (Unix seconds) would do; None if it is not in force.

    The operator's rule (`reconcilers.billing.preview`): within the withdrawal window, every charge
    is refunded; later, the paid months stay paid and a fee is due for the unpaid rest of the
    mandatory period. The status carries the window's end (delivery plus the operator's
    `RENTAL_WITHDRAWAL_PERIOD`), so MyPage needs no setting of its own that could disagree with the
    operator's.
    """
    terms = rental.billing
    if terms is None or rental.phase not in IN_FORCE:
        return None
    ends = terms.withdrawal_ends_at
    preview = billing.preview(
        paid_amount=terms.paid_amount,
        monthly_fee=terms.monthly_fee,
        mandatory_months=terms.mandatory_months,
        percent=terms.early_termination_percent,
        periods_paid=terms.periods_paid,
        withdrawal_ends_at=None if ends is None else datetime.datetime.fromtimestamp(ends, datetime.UTC),
        now=datetime.datetime.fromtimestamp(now, datetime.UTC),
    )
    return Cancellation(str(preview.ending), preview.refund, preview.fee)


# What many rentals share, stored once and pointed to often: (purifier, phase, message, payment
# phase, amount, currency, delivery phase, terms). The terms (monthly fee, currency, mandatory months,
# early-termination percent, periods in the term) are locked from the Purifier at application, so
# the rentals of one purifier and term share them; None until the operator has locked them.
_Terms = tuple[int, str | None, int, int, int]
_Summary = tuple[str, str | None, str, str | None, int | None, str | None, str | None, _Terms | None]

# One Rental as stored, immutable (replaced, never changed):
# (namespace, name, customer id, summary, tracking number, packed numbers, history messages), where the
# packed numbers are the resourceVersion and updatedAt, then (seq, kind/phase code, at) per history
# entry. Plain tuples, not a class or a NamedTuple: the garbage collector stops tracking exact tuples
# that hold only strings, numbers and such tuples, so 100,000 records add nothing to a full
# collection (tracked, they made each one a pause of over 100 ms at that size).
_Record = tuple[str, str, str, _Summary, str | None, bytes, tuple[str, ...]]
_NAMESPACE: Final = 0
_NAME: Final = 1
_CUSTOMER: Final = 2
_PACKED: Final = 5


class _Unreadable(Exception):  # noqa: N818
    """An object the projection cannot keep: `field` says which, `str()` why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


def _in_range(value: int, allowed: range, field: str) -> int:
    if value not in allowed:
        raise _Unreadable(field, f"is {value}, out of range ({allowed.start} to {allowed.stop - 1})")
    return value


def _number(values: Mapping[str, Any], key: str, allowed: range, field: str) -> int:
    """`values[key]` checked against what it is packed in; 0 when absent (the schema's default)."""
    value = values.get(key)
    return _in_range(value, allowed, f"{field}.{key}") if isinstance(value, int) else 0


def _moment(seconds: int) -> int | None:
    return seconds or None


def _receipts(packed: bytes, start: int, flags: int) -> list[tuple[int, int]]:
    """The (period, amount) of each receipt, packed from `start` on (see `_RECEIPT`, `_ONE_AMOUNT`)."""
    if flags & _ONE_AMOUNT:
        (amount,) = _AMOUNT.unpack_from(packed, start)
        return [(period, amount) for period in packed[start + _AMOUNT.size :]]
    return list(_RECEIPT.iter_unpack(packed[start:]))


def _name_of(obj: Any) -> str:
    """`namespace/name` of an object for a log line, whatever shape it is in."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(metadata, Mapping):
        return "(no metadata)"
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def _version_of(record: _Record) -> int:
    version: int = _HEADER.unpack_from(record[_PACKED])[0]
    return version


class _Purifier(NamedTuple):
    model: str | None
    display_name: str | None
    version: int
    # The catalog's terms, for the web app: monthly fee (None: none set), currency, mandatory
    # months, early-termination percent, units available.
    monthly_fee: int | None = None
    currency: str = "KRW"
    mandatory_months: int = 0
    early_termination_percent: int = 10
    available: int = 0


# Units a Purifier may report free: more than any business stocks, less than what could be miscounted.
_UNITS_RANGE: Final = range(2**31)


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _seconds(value: Any) -> int:
    """Unix seconds of an RFC 3339 timestamp; 0 when absent or unreadable (shown as unknown)."""
    if not isinstance(value, str):
        return 0
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    # Clamped to what the packed form holds (1970 to 2106): every RFC 3339 time packs.
    return max(0, min(int(moment.timestamp()), 2**32 - 1))


def _text(value: Any) -> str | None:
    return sys.intern(value) if isinstance(value, str) else None


def _unique(value: Any) -> str | None:
    # Names and tracking numbers are unique per rental: interning them would only add a table entry.
    return value if isinstance(value, str) else None


class Projection:
    """Rentals by customer and Purifier models, fed by watch events, read without locks."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rentals: dict[str, dict[str, _Record]] = {}  # namespace -> name -> record
        self._by_customer: dict[str, tuple[_Record, ...]] = {}
        self._purifiers: dict[tuple[str, str], _Purifier] = {}
        # Deletions seen while the initial listing is being loaded, so the listing (older than the
        # deletion) cannot bring the object back; dropped once the projection is ready.
        self._tombstones: dict[tuple[str, str, str], int] = {}
        self._codes: dict[tuple[str, str], int] = {}
        self._code_names: list[tuple[str, str]] = []
        self._cache: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._ready = threading.Event()
        self._stale_since: dict[str, float] = {}
        self._count = 0

    # --- feeding -------------------------------------------------------------------------------------
    def apply(self, kind: str, event_type: str | None, obj: Mapping[str, Any]) -> bool:
        """Apply one watch event (`ADDED`, `MODIFIED`, `DELETED`, or None for a listed object).

        Never raises for what the object holds: an object that cannot be read is skipped (logged,
        counted) and False returned, so a listing or a watch goes on with the others.
        """
        try:
            if kind == "Rental":
                if event_type == "DELETED":
                    self.forget_rental(obj)
                else:
                    self.observe_rental(obj)
            elif kind == "Purifier":
                if event_type == "DELETED":
                    self.forget_purifier(obj)
                else:
                    self.observe_purifier(obj)
        except _Unreadable as error:
            self._skipped(kind, obj, "out_of_range", str(error))
            return False
        except Exception as error:
            # Anything else the object's shape provokes (a missing name, a list where a mapping
            # belongs): the API server validates against the schema, so this is rare, and the rest
            # of the customers must still be served.
            self._skipped(kind, obj, "malformed", f"{type(error).__name__}: {error}")
            return False
        return True

    def observe_rental(self, obj: Mapping[str, Any]) -> None:
        """Record a Rental unless a newer version of it is known."""
        metadata = obj["metadata"]
        namespace, name, version = metadata["namespace"], metadata["name"], _version(obj)
        with self._lock:
            known = self._rentals.get(namespace, {}).get(name)
            if known is not None and _version_of(known) > version:
                return
            if self._tombstones.get(("Rental", namespace, name), -1) >= version:
                return
            try:
                record = self._record(obj, version)
            except _Unreadable:
                if known is not None:
                    self._remove(known)  # superseded by a version that cannot be shown
                raise
            if record is None:
                return
            self._put(known, record)

    def forget_rental(self, obj: Mapping[str, Any]) -> None:
        """Drop a deleted Rental (unless what is known is newer than the deletion)."""
        metadata = obj["metadata"]
        namespace, name, version = metadata["namespace"], metadata["name"], _version(obj)
        with self._lock:
            if not self._ready.is_set():
                self._tombstones[("Rental", namespace, name)] = version
            known = self._rentals.get(namespace, {}).get(name)
            if known is not None and _version_of(known) <= version:
                self._remove(known)

    def observe_purifier(self, obj: Mapping[str, Any]) -> None:
        metadata = obj["metadata"]
        key, version = (sys.intern(metadata["namespace"]), sys.intern(metadata["name"])), _version(obj)
        with self._lock:
            known = self._purifiers.get(key)
            if known is not None and known.version > version:
                return
            if self._tombstones.get(("Purifier", *key), -1) >= version:
                return
            self._purifiers[key] = self._catalog_entry(obj, version)

    def forget_purifier(self, obj: Mapping[str, Any]) -> None:
        metadata = obj["metadata"]
        key, version = (metadata["namespace"], metadata["name"]), _version(obj)
        with self._lock:
            if not self._ready.is_set():
                self._tombstones[("Purifier", *key)] = version
            known = self._purifiers.get(key)
            if known is not None and known.version <= version:
                del self._purifiers[key]

    def replace(
        self,
        kind: str,
        namespace: str | None,
        pages: Iterable[tuple[Iterable[Mapping[str, Any]], str]],
    ) -> str:
        """Load a listing of `kind` in `namespace` (None: all), given as pages of (objects, version).

        What the listing lacks is gone, unless a newer version of it was seen meanwhile (an event
        that arrived during the listing). Returns the listing's resourceVersion, to watch from.
        """
        seen: set[tuple[str, str]] = set()
        listed = ""
        for objects, version in pages:
            listed = version or listed
            for obj in objects:
                if self.apply(kind, None, obj):
                    seen.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        cutoff = int(listed or 0)
        with self._lock:
            if kind == "Rental":
                for space, records in list(self._rentals.items()):
                    if namespace is not None and space != namespace:
                        continue
                    for record in list(records.values()):
                        if (space, record[_NAME]) not in seen and _version_of(record) <= cutoff:
                            self._remove(record)
            elif kind == "Purifier":
                for key, purifier in list(self._purifiers.items()):
                    if namespace is not None and key[0] != namespace:
                        continue
                    if key not in seen and purifier.version <= cutoff:
                        del self._purifiers[key]
        return listed

    def mark_ready(self) -> None:
        """The initial listing is loaded: from now on the projection answers for every customer."""
        with self._lock:
            self._ready.set()
            self._tombstones.clear()

    def set_live(self, source: str) -> None:
        """`source` (a watch) is connected: it is current as of now."""
        with self._lock:
            self._stale_since.pop(source, None)

    def set_stale(self, source: str) -> None:
        """`source` lost its connection: what it fed is current only as of now, until it is back."""
        with self._lock:
            self._stale_since.setdefault(source, self._clock())

    def _skipped(self, kind: str, obj: Mapping[str, Any], reason: str, detail: str) -> None:
        logger.warning("MyPage skips %s %s: %s", kind, _name_of(obj), detail)
        metrics.SKIPPED_OBJECTS.labels(kind, reason).inc()

    # --- reading (no lock: records are immutable and each customer's tuple is replaced whole) --------
    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def now(self) -> float:
        """The time by the projection's clock (Unix seconds): what a cancellation now is priced at."""
        return self._clock()

    def as_of(self) -> float:
        """Unix time up to which the projection is known to reflect the API server."""
        stale = self._stale_since.copy()
        return min(stale.values()) if stale else self._clock()

    def rentals_of(self, customer: str) -> list[Rental]:
        """The customer's rentals, newest change first; empty for an unknown customer."""
        records = self._by_customer.get(customer, ())
        rentals = [self._view(record) for record in records]
        rentals.sort(key=lambda rental: (-rental.updated_at, rental.namespace, rental.name))
        return rentals

    def purifiers(self) -> list[Purifier]:
        """Every Purifier known, by namespace and name (the web app's catalog)."""
        return [self._purifier_view(key, entry) for key, entry in sorted(self._purifiers.copy().items())]

    def purifier(self, namespace: str, name: str) -> Purifier | None:
        entry = self._purifiers.get((namespace, name))
        return None if entry is None else self._purifier_view((namespace, name), entry)

    def rental(self, namespace: str, name: str) -> Rental | None:
        """One rental by its name, whoever it belongs to (the caller checks `customer`)."""
        record = self._rentals.get(namespace, {}).get(name)
        return None if record is None else self._view(record)

    def __len__(self) -> int:
        return self._count

    @property
    def customers(self) -> int:
        return len(self._by_customer)

    # --- inside ----------------------------------------------------------------------------------------
    @staticmethod
    def _catalog_entry(obj: Mapping[str, Any], version: int) -> _Purifier:
        """A Purifier's entry, its numbers checked like the Rentals' (a fee past 2**53 is refused)."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        fee = spec.get("monthlyFee")
        currency = spec.get("currency")
        percent = spec.get("earlyTerminationPercent")
        return _Purifier(
            _text(spec.get("model")),
            _text(spec.get("displayName")),
            version,
            _in_range(fee, _AMOUNT_RANGE, "spec.monthlyFee") if isinstance(fee, int) and fee > 0 else None,
            sys.intern(currency) if isinstance(currency, str) and currency else "KRW",
            _number(spec, "mandatoryMonths", _PERIOD_RANGE, "spec"),
            _in_range(percent, _PERCENT_RANGE, "spec.earlyTerminationPercent")
            if isinstance(percent, int)
            else 10,
            _number(status, "available", _UNITS_RANGE, "status"),
        )

    @staticmethod
    def _purifier_view(key: tuple[str, str], entry: _Purifier) -> Purifier:
        return Purifier(
            key[0],
            key[1],
            entry.model,
            entry.display_name,
            entry.monthly_fee,
            entry.currency,
            entry.mandatory_months,
            entry.early_termination_percent,
            entry.available,
        )

    def _record(self, obj: Mapping[str, Any], version: int) -> _Record | None:
        metadata = obj["metadata"]
        spec = obj.get("spec") or {}
        customer = (spec.get("customer") or {}).get("id")
        purifier = spec.get("purifier")
        if not isinstance(customer, str) or not isinstance(purifier, str):
            return None  # not a valid Rental (the schema requires both): nothing to show
        status = obj.get("status") or {}
        payment = status.get("payment") or {}
        delivery = status.get("delivery") or {}
        terms, flags, account = self._contract(status.get("billing"))
        entries = [entry for entry in status.get("history") or () if isinstance(entry, Mapping)]
        packed = bytearray(_HEADER.size)
        packed += account
        steps: list[tuple[int, int, int]] = []
        receipts: list[tuple[int, int]] = []
        texts: list[str] = []
        updated = _seconds(metadata.get("creationTimestamp"))
        for index, entry in enumerate(entries):
            field = f"status.history[{index}]"
            at = _seconds(entry.get("at"))
            seq = entry.get("seq")
            seq = _in_range(seq, _SEQ_RANGE, f"{field}.seq") if isinstance(seq, int) else 0
            code = self._code(str(entry.get("kind") or "Rental"), str(entry.get("phase") or ""))
            steps.append((seq, code, at))
            # Decided by the code, as `_view` decides, so the two agree even for a code the table
            # had no room for.
            if self._code_names[code] == _RECEIPT_CODE:
                amount = entry.get("amount")
                receipts.append(
                    (
                        _number(entry, "period", _PERIOD_RANGE, field),
                        _in_range(amount, _AMOUNT_RANGE, f"{field}.amount")
                        if isinstance(amount, int)
                        else _NO_AMOUNT,
                    )
                )
            texts.append(_text(entry.get("message")) or "")
            updated = max(updated, at)
        first = steps[0][0] if steps else 0
        if steps and all(seq == first + index for index, (seq, _, _) in enumerate(steps)):
            flags |= _CONSECUTIVE
            packed += _FIRST_SEQ.pack(first)
            for _, code, at in steps:
                packed += _STEP.pack(code, at)
        else:
            for step in steps:
                packed += _ENTRY.pack(*step)
        if len({amount for _, amount in receipts}) == 1:
            flags |= _ONE_AMOUNT
            packed += _AMOUNT.pack(receipts[0][1]) + bytes(period for period, _ in receipts)
        else:
            for receipt in receipts:
                packed += _RECEIPT.pack(*receipt)
        _HEADER.pack_into(
            packed,
            0,
            _in_range(version, _VERSION_RANGE, "metadata.resourceVersion"),
            updated,
            flags,
            _in_range(len(entries), _ENTRIES_RANGE, "status.history"),
        )
        amount = payment.get("amount")
        if isinstance(amount, int):
            _in_range(amount, _AMOUNT_RANGE, "status.payment.amount")
        summary: _Summary = (
            sys.intern(purifier),
            _text(status.get("phase")),
            _text(status.get("message")) or "",
            _text(payment.get("phase")),
            amount if isinstance(amount, int) else None,
            _text(payment.get("currency")),
            _text(delivery.get("phase")),
            None if terms is None else self._shared(terms),
        )
        return (
            sys.intern(metadata["namespace"]),
            metadata["name"],
            sys.intern(customer),
            self._shared(summary),
            _unique(delivery.get("trackingNumber")),
            bytes(packed),
            self._shared(tuple(texts)),
        )

    def _contract(self, value: Any) -> tuple[_Terms | None, int, bytes]:
        """The contract's terms, flags and packed account (`status.billing`); no contract: None, 0, b"".

        A contract without a monthly fee (the schema requires one) is shown as none rather than with
        a fee of 0 that nobody agreed to.
        """
        if value is None:
            return None, 0, b""
        field = "status.billing"
        fee = value.get("monthlyFee")
        if not isinstance(fee, int):
            return None, 0, b""
        terms: _Terms = (
            _in_range(fee, _AMOUNT_RANGE, f"{field}.monthlyFee"),
            _text(value.get("currency")),
            _number(value, "mandatoryMonths", _PERIOD_RANGE, field),
            _number(value, "earlyTerminationPercent", _PERCENT_RANGE, field),
            _number(value, "periodsTotal", _PERIOD_RANGE, field),
        )
        account = _ACCOUNT.pack(
            _number(value, "paidAmount", _AMOUNT_RANGE, field),
            _number(value, "periodsPaid", _PERIOD_RANGE, field),
            _seconds(value.get("nextChargeAt")),
            _seconds(value.get("termEndsAt")),
            _seconds(value.get("withdrawalEndsAt")),
        )
        flags = _HAS_ACCOUNT
        past_due = value.get("pastDue")
        if past_due is not None:
            field = f"{field}.pastDue"
            account += _PAST_DUE.pack(
                _number(past_due, "period", _PERIOD_RANGE, field),
                _number(past_due, "attempts", _ATTEMPTS_RANGE, field),
                _seconds(past_due.get("since")),
                _seconds(past_due.get("nextAttemptAt")),
            )
            flags |= _HAS_PAST_DUE
        return terms, flags, account

    def _code(self, kind: str, phase: str) -> int:
        key = (kind, phase)
        code = self._codes.get(key)
        if code is None:
            if len(self._code_names) >= _MAX_CODES:
                return self._code("Rental", "Unknown") if key != ("Rental", "Unknown") else 0
            code = len(self._code_names)
            self._code_names.append((sys.intern(kind), sys.intern(phase)))
            self._codes[key] = code
        return code

    def _shared(self, value: _T) -> _T:
        # Most rentals repeat a few summaries and message sequences; share one copy of each.
        known = self._cache.get(value)
        if known is not None:
            return cast(_T, known)
        if len(self._cache) >= _MAX_SHARED:
            self._cache.clear()
        self._cache[value] = value
        return value

    def _put(self, known: _Record | None, record: _Record) -> None:
        customer = record[_CUSTOMER]
        self._rentals.setdefault(record[_NAMESPACE], {})[record[_NAME]] = record
        if known is not None and known[_CUSTOMER] != customer:
            self._drop_from_customer(known)
            known = None
        mine = self._by_customer.get(customer, ())
        if known is None:
            self._by_customer[customer] = (*mine, record)
            self._count += 1
        else:
            self._by_customer[customer] = tuple(record if r is known else r for r in mine)

    def _remove(self, record: _Record) -> None:
        records = self._rentals.get(record[_NAMESPACE])
        if records is not None and records.get(record[_NAME]) is record:
            del records[record[_NAME]]
            if not records:
                del self._rentals[record[_NAMESPACE]]
            self._drop_from_customer(record)

    def _drop_from_customer(self, record: _Record) -> None:
        customer = record[_CUSTOMER]
        mine = tuple(r for r in self._by_customer.get(customer, ()) if r is not record)
        if mine:
            self._by_customer[customer] = mine
        else:
            self._by_customer.pop(customer, None)
        self._count -= 1

    def _view(self, record: _Record) -> Rental:
        namespace, name, customer, summary, tracking, packed, texts = record
        purifier, phase, message, payment_phase, amount, currency, delivery_phase, terms = summary
        catalog = self._purifiers.get((namespace, purifier))
        _, updated, flags, count = _HEADER.unpack_from(packed)
        offset = _HEADER.size
        contract: Billing | None = None
        if flags & _HAS_ACCOUNT and terms is not None:
            paid_amount, paid, next_charge, term_ends, withdrawal_ends = _ACCOUNT.unpack_from(packed, offset)
            offset += _ACCOUNT.size
            late: PastDue | None = None
            if flags & _HAS_PAST_DUE:
                period, attempts, since, next_attempt = _PAST_DUE.unpack_from(packed, offset)
                offset += _PAST_DUE.size
                late = PastDue(period, _moment(since), attempts, _moment(next_attempt))
            # The terms are Billing's first five fields, in its order.
            contract = Billing(
                *terms,
                paid,
                paid_amount,
                _moment(next_charge),
                _moment(term_ends),
                _moment(withdrawal_ends),
                late,
            )
        history: list[History] = []
        charges: list[Charge] = []
        steps: Iterable[tuple[int, int, int]]
        if flags & _CONSECUTIVE:
            (first,) = _FIRST_SEQ.unpack_from(packed, offset)
            offset += _FIRST_SEQ.size
            end = offset + count * _STEP.size
            steps = (
                (first + index, code, at)
                for index, (code, at) in enumerate(_STEP.iter_unpack(packed[offset:end]))
            )
        else:
            end = offset + count * _ENTRY.size
            steps = _ENTRY.iter_unpack(packed[offset:end])
        receipts = _receipts(packed, end, flags)
        for index, (seq, code, at) in enumerate(steps):
            kind, entered = self._code_names[code]
            history.append(History(seq, kind, entered, at, texts[index]))
            if (kind, entered) == _RECEIPT_CODE:
                period, paid_in = receipts[len(charges)]
                charges.append(Charge(period or None, None if paid_in == _NO_AMOUNT else paid_in, at))
        return Rental(
            namespace=namespace,
            name=name,
            customer=customer,
            purifier=purifier,
            model=catalog.model if catalog else None,
            display_name=catalog.display_name if catalog else None,
            phase=phase or DEFAULT_PHASE,
            message=message,
            payment_phase=payment_phase,
            amount=amount,
            currency=currency,
            delivery_phase=delivery_phase,
            tracking_number=tracking,
            updated_at=updated,
            history=tuple(history),
            billing=contract,
            charges=tuple(charges),
        )
