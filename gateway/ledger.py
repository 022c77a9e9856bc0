"""The gateway's memory: payments, shipments, messages and idempotency records in one SQLite file.

Everything a partner did must survive the gateway's own restart (a test restarts it with the same
`--db` and expects the same payments), and a retry after a lost answer must find the first answer, so
all of it lives in SQLite rather than in dicts. One connection is shared by the server's threads and
guarded by one re-entrant lock; `atomic()` is the transaction, and it nests, so `idempotency.run_once`
can wrap "look up the key, do the effect, remember the answer" in a single transaction around the
ledger calls the handler makes.

Shipments advance on their own (`auto_advance_seconds` after their last change: shipping ->
delivered, returning -> returned). That happens lazily: every read or transition first applies the
steps that are due, stamped with the time they were due, so a GET always reflects the carrier's
progress without a background thread.

Callers: `partners` and `admin` (through `app.Gateway`), `idempotency`, and `cli`, which opens and
closes it.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from . import lifecycle, models

__all__ = ["CARRIER", "FILTERS", "Ledger", "NotFoundError"]

CARRIER = "reference-express"

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at REAL NOT NULL,
    refunded_at REAL
);
CREATE TABLE IF NOT EXISTS shipments (
    id TEXT PRIMARY KEY,
    tracking_number TEXT NOT NULL UNIQUE,
    carrier TEXT NOT NULL,
    reference TEXT NOT NULL,
    address TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    status_changed_at REAL NOT NULL,
    delivered_at REAL,
    cancelled_at REAL,
    return_requested_at REAL,
    returned_at REAL
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    to_number TEXT NOT NULL,
    text TEXT NOT NULL,
    reference TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
"""

# Which timestamp column records arriving in a status. Column names here are constants, never input.
_STAMPED_AT: dict[lifecycle.ShipmentStatus, str] = {
    lifecycle.ShipmentStatus.DELIVERED: "delivered_at",
    lifecycle.ShipmentStatus.CANCELLED: "cancelled_at",
    lifecycle.ShipmentStatus.RETURNING: "return_requested_at",
    lifecycle.ShipmentStatus.RETURNED: "returned_at",
}

# Admin filters (`/admin/ledger?reference=...`) and the column each means in each table.
_FILTER_COLUMNS: dict[str, dict[str, str]] = {
    "payments": {"id": "id", "reference": "reference", "customerId": "customer_id", "status": "status"},
    "shipments": {
        "id": "id",
        "reference": "reference",
        "status": "status",
        "trackingNumber": "tracking_number",
    },
    "messages": {"id": "id", "reference": "reference", "to": "to_number"},
}
FILTERS = frozenset(name for columns in _FILTER_COLUMNS.values() for name in columns)


class NotFoundError(LookupError):
    """No record with that id; the API answers 404."""


class Ledger:
    def __init__(
        self,
        path: str | Path,
        *,
        auto_advance_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self.auto_advance_seconds = auto_advance_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        # Autocommit mode: transactions are opened and closed explicitly by `atomic()`.
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # executescript() commits on its own, so the schema is created outside `atomic()`.
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; nested calls join the outermost one. Holds the lock throughout."""
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outermost:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outermost:
                self._db.execute("COMMIT")

    def now(self) -> float:
        return self._clock()

    # Payments.

    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str,
        reference: str,
        declined_reason: str | None,
    ) -> models.Payment:
        status = (
            lifecycle.PaymentStatus.APPROVED if declined_reason is None else lifecycle.PaymentStatus.DECLINED
        )
        payment = models.Payment(
            id=f"pay_{secrets.token_hex(12)}",
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            reference=reference,
            status=status,
            reason=declined_reason,
            created_at=self.now(),
            refunded_at=None,
        )
        with self.atomic():
            self._db.execute(
                "INSERT INTO payments (id, amount, currency, customer_id, reference, status, reason,"
                " created_at, refunded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    payment.id,
                    payment.amount,
                    payment.currency,
                    payment.customer_id,
                    payment.reference,
                    str(payment.status),
                    payment.reason,
                    payment.created_at,
                    payment.refunded_at,
                ),
            )
        return payment

    def get_payment(self, payment_id: str) -> models.Payment:
        with self.atomic():
            row = self._db.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"payment {payment_id} not found")
        return _payment(row)

    def refund_payment(self, payment_id: str) -> models.Payment:
        """Refund once; a second refund returns the refunded payment unchanged."""
        with self.atomic():
            payment = self.get_payment(payment_id)
            target = lifecycle.refund(payment.status)
            if target is not payment.status:
                self._db.execute(
                    "UPDATE payments SET status = ?, refunded_at = ? WHERE id = ?",
                    (str(target), self.now(), payment_id),
                )
            return self.get_payment(payment_id)

    # Shipments.

    def create_shipment(self, *, reference: str, address: str, item: str) -> models.Shipment:
        now = self.now()
        shipment = models.Shipment(
            id=f"shp_{secrets.token_hex(12)}",
            tracking_number=f"RX{secrets.token_hex(5).upper()}",
            carrier=CARRIER,
            reference=reference,
            address=address,
            item=item,
            status=lifecycle.ShipmentStatus.SHIPPING,
            created_at=now,
            status_changed_at=now,
            delivered_at=None,
            cancelled_at=None,
            return_requested_at=None,
            returned_at=None,
        )
        with self.atomic():
            self._db.execute(
                "INSERT INTO shipments (id, tracking_number, carrier, reference, address, item, status,"
                " created_at, status_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    shipment.id,
                    shipment.tracking_number,
                    shipment.carrier,
                    shipment.reference,
                    shipment.address,
                    shipment.item,
                    str(shipment.status),
                    shipment.created_at,
                    shipment.status_changed_at,
                ),
            )
        return shipment

    def get_shipment(self, shipment_id: str) -> models.Shipment:
        with self.atomic():
            self._advance_due()
            row = self._db.execute("SELECT * FROM shipments WHERE id = ?", (shipment_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"shipment {shipment_id} not found")
        return _shipment(row)

    def cancel_shipment(self, shipment_id: str) -> models.Shipment:
        return self._transition(shipment_id, lifecycle.cancel)

    def return_shipment(self, shipment_id: str) -> models.Shipment:
        return self._transition(shipment_id, lifecycle.request_return)

    def advance_shipment(self, shipment_id: str) -> models.Shipment:
        """The carrier's next step now, without waiting for auto-advance (`/admin/.../deliver`)."""
        return self._transition(shipment_id, lifecycle.advance)

    def _transition(
        self,
        shipment_id: str,
        rule: Callable[[lifecycle.ShipmentStatus], lifecycle.ShipmentStatus],
    ) -> models.Shipment:
        with self.atomic():
            shipment = self.get_shipment(shipment_id)
            target = rule(shipment.status)
            if target is not shipment.status:
                self._set_status(shipment_id, target, self.now())
            return self.get_shipment(shipment_id)

    def _set_status(self, shipment_id: str, status: lifecycle.ShipmentStatus, at: float) -> None:
        column = _STAMPED_AT[status]
        self._db.execute(
            f"UPDATE shipments SET status = ?, status_changed_at = ?, {column} = ? WHERE id = ?",
            (str(status), at, at, shipment_id),
        )

    def _advance_due(self) -> None:
        """Apply the carrier's steps that are due, each stamped with the moment it was due."""
        delay = self.auto_advance_seconds
        if delay <= 0:
            return
        now = self.now()
        # Each step ends in a status that waits for the customer (delivered) or is final (returned),
        # so one step per shipment is all that can ever be due.
        for source, target in lifecycle.AUTO_ADVANCING.items():
            column = _STAMPED_AT[target]
            self._db.execute(
                f"UPDATE shipments SET status = ?, status_changed_at = status_changed_at + ?,"
                f" {column} = status_changed_at + ? WHERE status = ? AND status_changed_at + ? <= ?",
                (str(target), delay, delay, str(source), delay, now),
            )

    # Messages.

    def create_message(self, *, to: str, text: str, reference: str) -> models.Message:
        message = models.Message(
            id=f"msg_{secrets.token_hex(12)}", to=to, text=text, reference=reference, created_at=self.now()
        )
        with self.atomic():
            self._db.execute(
                "INSERT INTO messages (id, to_number, text, reference, created_at) VALUES (?, ?, ?, ?, ?)",
                (message.id, message.to, message.text, message.reference, message.created_at),
            )
        return message

    # Idempotency records.

    def find_response(self, scope: str, key: str) -> models.StoredResponse | None:
        with self.atomic():
            row = self._db.execute(
                "SELECT * FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
        if row is None:
            return None
        return models.StoredResponse(
            scope=row["scope"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            status=row["status"],
            body=bytes(row["body"]),
            created_at=row["created_at"],
        )

    def store_response(self, response: models.StoredResponse) -> None:
        with self.atomic():
            self._db.execute(
                "INSERT INTO idempotency (scope, key, fingerprint, status, body, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    response.scope,
                    response.key,
                    response.fingerprint,
                    response.status,
                    response.body,
                    response.created_at,
                ),
            )

    # The admin view.

    def listing(self, filters: Mapping[str, str] | None = None) -> dict[str, list[dict[str, object]]]:
        """Records matching all `filters`, oldest first; a table without a filter's field matches none."""
        filters = dict(filters or {})
        unknown = sorted(set(filters) - FILTERS)
        if unknown:
            raise ValueError(f"unknown filter {unknown[0]!r}; known: {', '.join(sorted(FILTERS))}")
        readers: dict[str, Callable[[sqlite3.Row], models.Payment | models.Shipment | models.Message]] = {
            "payments": _payment,
            "shipments": _shipment,
            "messages": _message,
        }
        result: dict[str, list[dict[str, object]]] = {}
        with self.atomic():
            self._advance_due()
            for table, reader in readers.items():
                columns = _FILTER_COLUMNS[table]
                if any(name not in columns for name in filters):
                    result[table] = []
                    continue
                where = " AND ".join(f"{columns[name]} = ?" for name in filters) or "1"
                rows = self._db.execute(
                    f"SELECT * FROM {table} WHERE {where} ORDER BY created_at, rowid", tuple(filters.values())
                ).fetchall()
                result[table] = [reader(row).to_json() for row in rows]
        return result

    def counts(self) -> dict[str, int]:
        with self.atomic():
            return {
                table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in ("payments", "shipments", "messages", "idempotency")
            }

    def reset(self) -> None:
        """Forget everything (`POST /admin/reset`, between tests)."""
        with self.atomic():
            for table in ("payments", "shipments", "messages", "idempotency"):
                self._db.execute(f"DELETE FROM {table}")


def _payment(row: sqlite3.Row) -> models.Payment:
    return models.Payment(
        id=row["id"],
        amount=row["amount"],
        currency=row["currency"],
        customer_id=row["customer_id"],
        reference=row["reference"],
        status=lifecycle.PaymentStatus(row["status"]),
        reason=row["reason"],
        created_at=row["created_at"],
        refunded_at=row["refunded_at"],
    )


def _shipment(row: sqlite3.Row) -> models.Shipment:
    return models.Shipment(
        id=row["id"],
        tracking_number=row["tracking_number"],
        carrier=row["carrier"],
        reference=row["reference"],
        address=row["address"],
        item=row["item"],
        status=lifecycle.ShipmentStatus(row["status"]),
        created_at=row["created_at"],
        status_changed_at=row["status_changed_at"],
        delivered_at=row["delivered_at"],
        cancelled_at=row["cancelled_at"],
        return_requested_at=row["return_requested_at"],
        returned_at=row["returned_at"],
    )


def _message(row: sqlite3.Row) -> models.Message:
    return models.Message(
        id=row["id"],
        to=row["to_number"],
        text=row["text"],
        reference=row["reference"],
        created_at=row["created_at"],
    )
