"""Everything a controller needs, built once at start-up and handed to every handler via Kopf's memo.

Holding the clients, stores and scheduler in one object (instead of module globals) lets tests build a
context of their own and lets the process own exactly one payment breaker, whose state is the point.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from rental_operator import config, kubeapi, metrics
from rental_operator.controllers import typical
from rental_operator.partners import payments, shipping, sms
from rental_operator.reconcilers import contract
from rental_operator.runtime import batching, locks, scheduler, store

__all__ = ["Context", "utcnow"]


def utcnow() -> datetime.datetime:
    # Kubernetes timestamps have second precision; matching it keeps equal statuses equal after a read.
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclasses.dataclass
class Context:
    settings: config.Settings
    kube: kubeapi.Kube
    events: kubeapi.EventRecorder
    payment_client: payments.PaymentClient
    shipping_client: shipping.ShippingClient
    sms_sender: sms.SmsSender
    scheduler: scheduler.Scheduler
    rentals: store.Store[metrics.RentalSummary] = dataclasses.field(
        default_factory=lambda: store.Store(metrics.rental_summary, zdict=typical.RENTAL)
    )
    purifiers: store.Store[None] = dataclasses.field(
        default_factory=lambda: store.Store(zdict=typical.PURIFIER)
    )
    payments: store.Store[None] = dataclasses.field(
        default_factory=lambda: store.Store(zdict=typical.PAYMENT)
    )
    deliveries: store.Store[None] = dataclasses.field(
        default_factory=lambda: store.Store(zdict=typical.DELIVERY)
    )
    locks: locks.KeyedLocks = dataclasses.field(default_factory=locks.KeyedLocks)
    # Reservations and releases queued per Purifier, committed in batches (see controllers.stock).
    stock_changes: batching.GroupCommit[Any] = dataclasses.field(default_factory=batching.GroupCommit)
    # Highest history seq texted per rental uid, in this process (see controllers.notifier).
    notified: dict[str, int] = dataclasses.field(default_factory=dict)
    clock: Callable[[], datetime.datetime] = utcnow
    # The billing settings as the contract reads them, parsed on first use (controllers.rentals.terms).
    billing_terms: contract.Terms | None = None
