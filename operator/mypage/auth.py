"""Who is asking: a customer sees only their own rentals on MyPage.

Three modes, chosen by `RENTAL_MYPAGE_AUTH` (docs/mypage.md explains when to use which):

- `token`: the business hands each customer a signed link (`/mypage/{id}?token=...`) or bearer token
  (`Authorization: Bearer ...` for the API). A token is `<customer id, base64url>.<expiry, Unix
  seconds>.<HMAC-SHA256 signature, base64url>` over a versioned message, keyed by a secret only the
  business holds; no server-side session or database, so any number of MyPage replicas verify it.
- `header`: an authenticating proxy in front (an ingress with OAuth2/OIDC) puts the signed-in customer's
  id in a header (`X-Customer-Id` by default); MyPage trusts it, so the proxy must strip any such header
  a client sends, and MyPage must be reachable only through it. A request carrying the header more
  than once (or one value listing several, comma-joined) is refused with 400: that is what a proxy
  that appends its header instead of replacing it lets through, and taking either value would let the
  client's win.
- `none`: no check at all, for local demos only; it has to be chosen explicitly.

No credentials (or bad or expired ones) is 401; valid credentials for another customer is 403; an
ambiguous identity header is 400.
Pure functions over strings, no HTTP framework: `mypage.server` passes in what the request carries.
Called by `mypage.server` and by the `rental-operator mypage-link` command.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import hmac
import re
import time
import urllib.parse
from collections.abc import Sequence
from typing import Final, Literal

__all__ = [
    "Decision",
    "InvalidToken",
    "Policy",
    "Verdict",
    "mint",
    "page_link",
    "verify",
]

_DOMAIN: Final = b"rental-mypage-v1"  # binds a signature to this use and format
_MAX_CUSTOMER_LENGTH: Final = 128
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


class InvalidToken(Exception):  # noqa: N818
    """A token is malformed, forged or expired; `str()` says which, for logs (never shown to clients)."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, customer: str, expires: int) -> bytes:
    message = b"\n".join((_DOMAIN, customer.encode("utf-8"), str(expires).encode("ascii")))
    return hmac.new(secret, message, hashlib.sha256).digest()


def mint(secret: bytes, customer: str, *, expires: int) -> str:
    """A token that lets its holder read `customer`'s rentals until `expires` (Unix seconds)."""
    if not customer or len(customer) > _MAX_CUSTOMER_LENGTH:
        raise ValueError("customer id must be 1 to 128 characters")
    signature = _signature(secret, customer, expires)
    return f"{_b64encode(customer.encode('utf-8'))}.{expires}.{_b64encode(signature)}"


def page_link(base_url: str, customer: str, token: str) -> str:
    """The customer's MyPage address carrying `token` (what the business texts or mails them)."""
    path = urllib.parse.quote(customer, safe="")
    return f"{base_url.rstrip('/')}/mypage/{path}?token={urllib.parse.quote(token, safe='')}"


def verify(secret: bytes, token: str, *, now: float | None = None) -> str:
    """The customer id a genuine, unexpired token was issued for; `InvalidToken` otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 512:
        raise InvalidToken("not a MyPage token")
    encoded_customer, expires_text, encoded_signature = parts
    if not expires_text.isdigit() or not expires_text.isascii():
        raise InvalidToken("malformed token")
    try:
        customer = _b64decode(encoded_customer).decode("utf-8")
        signature = _b64decode(encoded_signature)
        expires = int(expires_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidToken("malformed token") from None
    if not hmac.compare_digest(signature, _signature(secret, customer, expires)):
        raise InvalidToken("bad signature")
    if expires <= (time.time() if now is None else now):
        raise InvalidToken("expired")
    return customer


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    # No usable credentials: 401.
    UNAUTHENTICATED = "unauthenticated"
    # Credentials of another customer: 403.
    FORBIDDEN = "forbidden"
    # Token mode without a secret: nobody can be identified, so nobody is served (503).
    UNCONFIGURED = "unconfigured"
    # Header mode with the identity header sent more than once: which one the proxy set is unknown,
    # so neither is believed (400).
    AMBIGUOUS = "ambiguous"


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: Verdict
    # Why, for the log line (never the token itself).
    reason: str


@dataclasses.dataclass(frozen=True)
class Policy:
    """The configured way of identifying callers; `check` decides one request."""

    mode: Literal["token", "header", "none"]
    secret: bytes | None = None
    identity_header: str = "X-Customer-Id"

    def check(
        self,
        customer: str,
        *,
        authorization: str | None = None,
        query_token: str | None = None,
        identities: Sequence[str] = (),
        now: float | None = None,
    ) -> Decision:
        """May the caller read `customer`'s rentals?

        `authorization` is the Authorization header, `query_token` the `?token=` parameter (the page
        link), `identities` every value of the trusted identity header, as the request carries them.
        """
        if self.mode == "none":
            return Decision(Verdict.ALLOWED, "authentication is off")
        if self.mode == "header":
            if len(identities) > 1 or any("," in value for value in identities):
                return Decision(Verdict.AMBIGUOUS, f"{self.identity_header} sent more than once")
            identity = identities[0] if identities else ""
            if not identity:
                return Decision(Verdict.UNAUTHENTICATED, f"no {self.identity_header} header")
            if identity != customer:
                return Decision(Verdict.FORBIDDEN, "identity header names another customer")
            return Decision(Verdict.ALLOWED, "identity header")
        if self.secret is None:
            return Decision(Verdict.UNCONFIGURED, "token mode without RENTAL_MYPAGE_TOKEN_SECRET")
        token = query_token
        if authorization:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                return Decision(Verdict.UNAUTHENTICATED, "Authorization is not a bearer token")
            token = credentials.strip()
        if not token:
            return Decision(Verdict.UNAUTHENTICATED, "no token")
        try:
            holder = verify(self.secret, token, now=now)
        except InvalidToken as error:
            return Decision(Verdict.UNAUTHENTICATED, f"token rejected: {error}")
        if holder != customer:
            return Decision(Verdict.FORBIDDEN, "token of another customer")
        return Decision(Verdict.ALLOWED, "token")
