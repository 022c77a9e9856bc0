"""Which payments the reference gateway declines: deterministic, so tests can ask for a decline.

A real provider declines for reasons a test cannot control. Here a payment is declined (201 with
`"status": "declined"`) when, checked in this order:

1. its `customerId` starts with `decline-` -> reason `card_declined`;
2. a limit is configured (`--decline-above AMOUNT`) and `amount` exceeds it -> reason
   `amount_limit_exceeded`.

Everything else is approved. A decline is an answer, not a fault: it is stored in the ledger, it is
final for its Idempotency-Key, and it cannot be refunded. Called by `partners` on every new payment.
"""

from __future__ import annotations

import dataclasses

__all__ = ["AMOUNT_LIMIT_EXCEEDED", "CARD_DECLINED", "DECLINING_PREFIX", "DeclineRule"]

DECLINING_PREFIX = "decline-"
CARD_DECLINED = "card_declined"
AMOUNT_LIMIT_EXCEEDED = "amount_limit_exceeded"


@dataclasses.dataclass(frozen=True)
class DeclineRule:
    amount_above: int | None = None
    customer_prefix: str = DECLINING_PREFIX

    def reason(self, *, customer_id: str, amount: int) -> str | None:
        """The decline reason for this payment, or None to approve it."""
        if customer_id.startswith(self.customer_prefix):
            return CARD_DECLINED
        if self.amount_above is not None and amount > self.amount_above:
            return AMOUNT_LIMIT_EXCEEDED
        return None
