"""The Idempotency-Key rule of CONTRACT §2: one effect per key, the first answer on every retry.

Every partner POST carries a key. `run_once` looks the key up, and then either replays the stored
answer (same request again: same status, same body bytes, header `Idempotent-Replayed: true`),
refuses with 409 (the key was used for a different request), or runs the handler and stores its
answer, all in one ledger transaction, so two retries racing each other still cause one effect.

Decisions worth knowing, since a client's retry logic depends on them:

- Keys are scoped per partner (`payments`, `shipping`, `sms`): three providers that happen to share
  a base URL here would not share key spaces in the real world.
- "Same request" means same method, same path and the same JSON value as body (key order and
  whitespace do not matter). Reusing the charge's key for its refund is therefore a 409: use one key
  per operation.
- Only successful (2xx) answers are stored. A 400, 404 or 409 had no effect, and an injected 503 never
  reaches this module, so retrying the same key after any of them runs the request for real.

Called by `app.Gateway` for every partner POST.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from . import ledger, models, wire

__all__ = ["MAX_KEY_LENGTH", "REPLAY_HEADER", "fingerprint", "require_key", "run_once"]

MAX_KEY_LENGTH = 255
REPLAY_HEADER = "Idempotent-Replayed"


def require_key(raw: str | None) -> str:
    """The request's Idempotency-Key header, or a 400 naming it."""
    if raw is None or not raw.strip():
        raise wire.HttpError(400, "Idempotency-Key header is required on every POST")
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH:
        raise wire.HttpError(400, f"Idempotency-Key header must be at most {MAX_KEY_LENGTH} characters")
    return key


def fingerprint(method: str, path: str, body: wire.JsonObject) -> str:
    """What makes two requests "the same" for one key."""
    material = "\n".join((method.upper(), path, wire.canonical_json(body)))
    return hashlib.sha256(material.encode()).hexdigest()


def run_once(
    store: ledger.Ledger,
    *,
    scope: str,
    key: str,
    request_fingerprint: str,
    handler: Callable[[], wire.Response],
) -> wire.Response:
    with store.atomic():
        first = store.find_response(scope, key)
        if first is not None:
            if first.fingerprint != request_fingerprint:
                raise wire.HttpError(
                    409, "Idempotency-Key was already used with a different request (method, path or body)"
                )
            return wire.Response(
                status=first.status,
                body=first.body,
                headers={REPLAY_HEADER: "true"},
            )
        response = handler()
        if 200 <= response.status < 300:
            store.store_response(
                models.StoredResponse(
                    scope=scope,
                    key=key,
                    fingerprint=request_fingerprint,
                    status=response.status,
                    body=response.body,
                    created_at=store.now(),
                )
            )
        return response
