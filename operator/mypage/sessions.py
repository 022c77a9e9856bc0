"""The web app's sign-in: a signed session cookie, so a browser carries the customer's identity.

A customer arrives with MyPage's signed link (`/signin?token=...`, minted by `rental-operator
mypage-link`); the token is verified once and traded for a cookie, so it does not ride along on every
page (nor in the history, the Referer or a bookmark). The cookie has a token's format
(`base64url(customer id) . expiry . base64url(HMAC-SHA256)`, `auth.mint`) under a key derived from
the token secret for this use (HMAC over `rental-web-session-v1`), so a session value is never
accepted as a token or the other way round.
No session store: any replica verifies any cookie. Attributes: HttpOnly (no script reads it),
SameSite=Lax (a cross-site POST does not carry it), Secure when the public URL is https, Path=/.

Pure functions over strings; `mypage.shop` and `mypage.server` read and set the cookie.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Final

from rental_operator.mypage import auth

__all__ = ["COOKIE", "LIFETIME_SECONDS", "cookie_options", "mint", "token_expiry", "verify"]

COOKIE: Final = "rental_session"
# A working day: long enough to apply and watch the delivery, short enough for a shared phone.
LIFETIME_SECONDS: Final = 12 * 3600
_DOMAIN: Final = b"rental-web-session-v1"


@functools.lru_cache(maxsize=4)
def _key(secret: bytes) -> bytes:
    # The session's own key, derived from the token key for this use only: a session is signed like
    # a token (`auth.mint`'s format) but under another key, so neither is accepted as the other.
    return hmac.new(secret, _DOMAIN, hashlib.sha256).digest()


def mint(secret: bytes, customer: str, *, expires: int) -> str:
    """A session value for `customer`, valid until `expires` (Unix seconds)."""
    return auth.mint(_key(secret), customer, expires=expires)


def verify(secret: bytes, value: str, *, now: float | None = None) -> str:
    """The customer of a genuine, unexpired session value; `auth.InvalidToken` otherwise."""
    return auth.verify(_key(secret), value, now=now)


def token_expiry(token: str) -> int:
    """The expiry written in a verified MyPage token (its second field)."""
    return int(token.split(".")[1])


def cookie_options(*, secure: bool, max_age: int) -> dict[str, object]:
    """The cookie's attributes as aiohttp's `set_cookie` takes them."""
    return {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/", "max_age": max_age}
