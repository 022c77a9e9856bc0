"""Sends the customer one text message per transition recorded in a Rental's history.

Messages go out after the transition is written (so nothing is announced that did not happen), under
an idempotency key made of the rental's uid and the entry's seq (so a message resent after a crash is
recognised by the provider and not delivered twice). What was sent is remembered in memory and
persisted as `status.notifiedSeq` with the rental's next status write; after a restart only entries
past that mark are sent again, and the provider drops those it already has. Each text is in the
customer's `spec.customer.language`, else `RENTAL_DEFAULT_LANGUAGE`.
Called by the Rental controller after each status write.
"""

from __future__ import annotations

import logging

from rental_operator import metrics
from rental_operator.api import purifier as api_purifier
from rental_operator.api import rental as api_rental
from rental_operator.controllers import context
from rental_operator.partners import errors, sms
from rental_operator.reconcilers import notifications

__all__ = ["notify"]

logger = logging.getLogger(__name__)
# At most three concatenated segments (153 GSM-7 or 67 UCS-2 characters each): long enough for a
# tracking number and a customer's name in Hangul, short enough to cost little. Korean texts are always
# UCS-2, so they get 201 units: the catalog's Korean is written to fit with the longest values.
_LIMITS: dict[sms.SmsEncoding, int] = {"gsm-7": 3 * 153, "ucs-2": 3 * 67}


def notify(ctx: context.Context, rental: api_rental.Rental) -> bool:
    """Send what is pending; True when everything is sent (False: retry later)."""
    uid = rental.metadata.uid or ""
    entries = notifications.pending(rental, ctx.notified.get(uid, 0))
    if not entries:
        return True
    namespace = rental.metadata.namespace or ""
    purifier_body = ctx.purifiers.get(namespace, rental.spec.purifier)
    model = None
    if purifier_body is not None:
        spec = api_purifier.Purifier.from_body(purifier_body).spec
        model = spec.display_name or spec.model
    # The customer's own language, else the operator's default (RENTAL_DEFAULT_LANGUAGE).
    language = notifications.language_of(rental, ctx.settings.default_language)
    for entry in entries:
        full = notifications.text(rental, entry, model, language=language)
        text = sms.truncate_for_sms(full, _LIMITS[sms.sms_encoding(full)])
        try:
            message_id = ctx.sms_sender.send(
                to=rental.spec.customer.phone,
                text=text,
                reference=f"{namespace}/{rental.metadata.name}/{entry.seq}",
                idempotency_key=notifications.idempotency_key(rental, entry),
            )
        except errors.PartnerError as error:
            metrics.NOTIFICATIONS.labels("failed").inc()
            logger.warning("text message for %s/%s not sent yet: %s", namespace, rental.metadata.name, error)
            return False
        metrics.NOTIFICATIONS.labels("sent" if message_id else "logged").inc()
        ctx.notified[uid] = entry.seq
    return True
