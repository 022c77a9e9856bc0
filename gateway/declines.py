"""Which payments the reference gateway declines: deterministic, so tests can ask for a decline.

A real provider declines for reasons a test cannot control. Here a payment is declined (201 with
`"status": "declined"`) when, checked in this order:

1. its `customerId` starts with `decline-` -> reason `card_declined`;
2. its `customerId` is on the decline list (`PUT /admin/declines`, changed at run time: a card that runs
   dry and is topped up again, for tests of monthly billing's dunning) -> reason `insufficient_funds`;
3. a limit is configured (`--decline-above AMOUNT`) and `amount` exceeds it -> reason
   `amount_limit_exceeded`.

Everything else is approved. A decline is an answer, not a fault: it is stored in the ledger, it is
final for its Idempotency-Key, and it cannot be refunded. Called by `partners` on every new payment.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

__all__ = [
    "AMOUNT_LIMIT_EXCEEDED",
    "CARD_DECLINED",
    "DECLINING_PREFIX",
    "INSUFFICIENT_FUNDS",
    "DeclineList",
    "DeclineRule",
]

DECLINING_PREFIX = "decline-"
CARD_DECLINED = "card_declined"
INSUFFICIENT_FUNDS = "insufficient_funds"
AMOUNT_LIMIT_EXCEEDED = "amount_limit_exceeded"


class DeclineList:
    """Customers whose payments are declined for now; replaced whole by the admin API."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: frozenset[str] = frozenset()

    def replace(self, customer_ids: Iterable[str]) -> None:
        with self._lock:
            self._ids = frozenset(customer_ids)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._ids

    def listing(self) -> list[str]:
        return sorted(self._ids)


@dataclasses.dataclass(frozen=True)
class DeclineRule:
    amount_above: int | None = None
    customer_prefix: str = DECLINING_PREFIX
    declining: DeclineList = dataclasses.field(default_factory=DeclineList)

    def reason(self, *, customer_id: str, amount: int) -> str | None:
        """The decline reason for this payment, or None to approve it."""
        if customer_id.startswith(self.customer_prefix):
            return CARD_DECLINED
        if customer_id in self.declining:
            return INSUFFICIENT_FUNDS
        if self.amount_above is not None and amount > self.amount_above:
            return AMOUNT_LIMIT_EXCEEDED
        return None
