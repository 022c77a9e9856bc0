"""Tokens a form carries: against cross-site requests (CSRF) and to make an application idempotent.

- CSRF: every form of the web app carries `nonce.expiry.HMAC(secret, session identity, nonce,
  expiry)`; a POST is accepted only with a genuine, unexpired token for the identity making it, and
  with an Origin (or, without one, a Referer) of this site when the browser sends one. SameSite=Lax
  cookies already keep most cross-site POSTs unauthenticated; the token covers header-mode proxies
  and older browsers too. Stateless: any replica checks any token.
- Application: the apply form carries a random token, signed for the customer, generated when the
  form is rendered. The Rental's name is derived from it (`commands.rental_name`), so submitting the
  same form twice (double click, reload, a retry after a lost answer) names the same Rental.

Each use signs over its own domain string, so one kind of token is never accepted as another.
Called by `mypage.shop`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse
from typing import Final

__all__ = ["LIFETIME_SECONDS", "application_nonce", "issue", "issue_application", "same_origin", "valid"]

# A form left open over lunch still submits; an old copy in a cache does not for long.
LIFETIME_SECONDS: Final = 4 * 3600
_CSRF_DOMAIN: Final = b"rental-web-csrf-v1"
_APPLICATION_DOMAIN: Final = b"rental-web-application-v1"


def _mac(secret: bytes, *parts: str | bytes) -> str:
    message = b"\n".join(part if isinstance(part, bytes) else part.encode("utf-8") for part in parts)
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(secret: bytes, identity: str, *, now: float | None = None) -> str:
    """A CSRF token for a form shown to `identity` (the signed-in customer)."""
    nonce = secrets.token_urlsafe(12)
    expires = int(time.time() if now is None else now) + LIFETIME_SECONDS
    return f"{nonce}.{expires}.{_mac(secret, _CSRF_DOMAIN, identity, nonce, str(expires))}"


def valid(secret: bytes, identity: str, token: str | None, *, now: float | None = None) -> bool:
    """Was `token` issued to `identity` by this secret, and is it unexpired?"""
    if not token or len(token) > 256:
        return False
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit():
        return False
    nonce, expires, mac = parts
    if not hmac.compare_digest(mac, _mac(secret, _CSRF_DOMAIN, identity, nonce, expires)):
        return False
    return int(expires) > (time.time() if now is None else now)


def issue_application(secret: bytes, customer: str) -> str:
    """A fresh application token for `customer`'s form: `nonce.signature`."""
    nonce = secrets.token_hex(16)
    return f"{nonce}.{_mac(secret, _APPLICATION_DOMAIN, customer, nonce)}"


def application_nonce(secret: bytes, customer: str, token: str | None) -> str | None:
    """The nonce of a genuine application token of `customer`, None for anything else."""
    if not token or len(token) > 128:
        return None
    nonce, _, mac = token.partition(".")
    if len(nonce) != 32 or not all(c in "0123456789abcdef" for c in nonce):
        return None
    return nonce if hmac.compare_digest(mac, _mac(secret, _APPLICATION_DOMAIN, customer, nonce)) else None


def same_origin(origin: str | None, referer: str | None, allowed: frozenset[str]) -> bool:
    """Does the request come from one of the `allowed` origins (`scheme://host[:port]`)?

    The Origin header decides when present (`null`, sent by sandboxed or privacy-stripped requests, is
    refused); without it the Referer's origin does; without either (some privacy settings strip
    both) the CSRF token alone decides.
    """
    if origin is not None:
        return origin.rstrip("/") in allowed
    if referer:
        parts = urllib.parse.urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" in allowed
    return True
