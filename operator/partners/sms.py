"""Text messages to customers: a pluggable sender, and the helpers that keep messages sendable.

Called by the operator's notification step (rental confirmed, shipped, cancelled, ...). Which sender
runs is configuration (CONTRACT §3): with `RENTAL_SMS_URL` set, `HttpSmsSender` posts to the SMS
partner (CONTRACT §2 "SMS"); unset, `LoggingSmsSender` writes one log line per message instead, so a
demo or a cluster without an SMS provider still shows what would have been sent.
`sender_from_settings` picks one at start-up.

Both senders keep the contract's promise that a repeated Idempotency-Key sends no second message.
Neither shortens a text: what fits the channel is the caller's decision, made with
`truncate_for_sms` (which counts the way the network does: GSM-7 septets, or UTF-16 units for texts
GSM-7 cannot carry, such as Korean). Phone numbers appear in logs only through `mask_phone`.

No circuit breaker: a notification is best effort and has no fallback for a breaker to select; a
failed send raises from `errors` and the caller counts it (`rental_notifications_total{outcome}`).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from typing import Annotated, Final, Literal, Protocol

import pydantic

from rental_operator import config
from rental_operator.partners import transport
from rental_operator.reconcilers import notifications

__all__ = [
    "GSM7_SEGMENT",
    "PARTNER",
    "UCS2_SEGMENT",
    "HttpSmsSender",
    "LoggingSmsSender",
    "SmsEncoding",
    "SmsSender",
    "mask_phone",
    "sender_from_settings",
    "sms_encoding",
    "sms_length",
    "truncate_for_sms",
]

PARTNER: Final = "sms"

GSM7_SEGMENT = 160  # septets in one SMS
UCS2_SEGMENT = 70  # UTF-16 code units in one SMS

SmsEncoding = Literal["gsm-7", "ucs-2"]

# GSM 03.38: the default alphabet (one septet each; 0x1B is the escape, not a character) and its
# extension table (two septets each: the escape and the character).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

logger = logging.getLogger(__name__)


class SmsSender(Protocol):
    """Sends one text message; the id the partner gave it, or None when nothing was sent to one."""

    def send(self, *, to: str, text: str, reference: str, idempotency_key: str) -> str | None: ...

    def close(self) -> None: ...


class _Message(transport.PartnerModel):
    id: Annotated[str, pydantic.StringConstraints(min_length=1)]


class HttpSmsSender:
    """Posts `/v1/messages` to the SMS partner; thread-safe."""

    def __init__(
        self,
        settings: config.Settings,
        *,
        timeout_seconds: float = transport.DEFAULT_TIMEOUT_SECONDS,
        pool_size: int = transport.POOL_SIZE,
    ) -> None:
        if settings.sms_url is None:
            raise ValueError("HttpSmsSender needs RENTAL_SMS_URL")
        self._transport = transport.Transport(
            partner=PARTNER,
            base_url=str(settings.sms_url),
            api_key=settings.sms_api_key,
            timeout=transport.Timeout(connect=timeout_seconds, read=timeout_seconds),
            pool_size=pool_size,
            ca_bundle=settings.ca_bundle(PARTNER),
        )

    def send(self, *, to: str, text: str, reference: str, idempotency_key: str) -> str:
        if not to or not text or not reference:
            raise ValueError("to, text and reference must not be empty")
        body = {"to": to, "text": text, "reference": reference}
        answer = self._transport.post("v1/messages", body, idempotency_key=idempotency_key, creates=True)
        message_id = self._transport.decode(answer, _Message).id
        logger.info("SMS %s sent to %s (reference %s)", message_id, mask_phone(to), reference)
        return message_id

    def close(self) -> None:
        self._transport.close()


class LoggingSmsSender:
    """Logs each message as one line instead of sending it (`RENTAL_SMS_URL` unset).

    Remembers the last `remembered` keys, so a handler retried after a crash logs a message once,
    as the real partner would send it once.
    """

    def __init__(self, *, log: logging.Logger | None = None, remembered: int = 10_000) -> None:
        self._log = log or logger
        self._lock = threading.Lock()
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remembered = remembered

    def send(self, *, to: str, text: str, reference: str, idempotency_key: str) -> None:
        if not to or not text or not reference:
            raise ValueError("to, text and reference must not be empty")
        transport.check_idempotency_key(idempotency_key)
        with self._lock:
            if idempotency_key in self._seen:
                return
            self._seen[idempotency_key] = None
            while len(self._seen) > self._remembered:
                self._seen.popitem(last=False)
        self._log.info(
            "SMS not sent (RENTAL_SMS_URL is unset) to %s, reference %s: %s",
            mask_phone(to),
            reference,
            json.dumps(text, ensure_ascii=False),  # quoted and escaped: always one line
        )

    def close(self) -> None:
        pass


def sender_from_settings(
    settings: config.Settings, *, timeout_seconds: float = transport.DEFAULT_TIMEOUT_SECONDS
) -> SmsSender:
    """The HTTP sender when `RENTAL_SMS_URL` is set, else the logging one."""
    if settings.sms_url is None:
        return LoggingSmsSender()
    return HttpSmsSender(settings, timeout_seconds=timeout_seconds)


def mask_phone(number: str) -> str:
    """`+821012345678` -> `+82******5678`: enough to tell messages apart, not to call anyone."""
    if len(number) >= 10:
        return number[:3] + "*" * (len(number) - 7) + number[-4:]
    if len(number) >= 4:
        return "*" * (len(number) - 2) + number[-2:]
    return "*" * len(number)


def sms_encoding(text: str) -> SmsEncoding:
    """GSM-7 when every character is in the GSM 03.38 alphabet, else UCS-2 (what phones do)."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in text):
        return "gsm-7"
    return "ucs-2"


def sms_length(text: str, encoding: SmsEncoding | None = None) -> int:
    """Length in the encoding's units: septets for GSM-7, UTF-16 code units for UCS-2."""
    encoding = encoding or sms_encoding(text)
    if encoding == "gsm-7":
        return sum(2 if char in _GSM7_EXTENSION else 1 for char in text)
    return len(text.encode("utf-16-le")) // 2


def truncate_for_sms(text: str, limit: int | None = None) -> str:
    """`text` if it fits `limit`, else its longest head that fits with an ellipsis appended.

    `limit` is in the units of the text's own encoding (see `sms_length`); by default one SMS:
    160 for GSM-7, 70 for UCS-2. Cuts fall between user-perceived characters, never inside one
    (accents, emoji with modifiers or joiners, flags, decomposed Hangul, CRLF). A GSM-7 text gets
    `...`, because `…` is not in GSM-7 and would turn the whole message into UCS-2.
    """
    encoding = sms_encoding(text)
    if limit is None:
        limit = GSM7_SEGMENT if encoding == "gsm-7" else UCS2_SEGMENT
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if sms_length(text, encoding) <= limit:
        return text
    ellipsis = "..." if encoding == "gsm-7" else "…"
    budget = limit - sms_length(ellipsis, encoding)
    if budget <= 0:
        return ellipsis[:limit]
    kept: list[str] = []
    used = 0
    for cluster in notifications.clusters(text):
        cost = sms_length(cluster, encoding)
        if used + cost > budget:
            break
        kept.append(cluster)
        used += cost
    return "".join(kept).rstrip() + ellipsis
