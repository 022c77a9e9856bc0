"""mypage.sessions: the web app's signed session cookie."""

from __future__ import annotations

import time

import pytest

from rental_operator.mypage import auth, sessions

SECRET = b"k" * 32


def test_a_session_names_its_customer_until_it_expires() -> None:
    now = int(time.time())
    value = sessions.mint(SECRET, "cust-1", expires=now + 60)
    assert sessions.verify(SECRET, value, now=now) == "cust-1"
    with pytest.raises(auth.InvalidToken, match="expired"):
        sessions.verify(SECRET, value, now=now + 61)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v.replace(v.split(".")[0], "Y3VzdC0y"),  # another customer (cust-2)
        lambda v: v.replace(v.split(".")[1], str(int(v.split(".")[1]) + 1000)),  # a longer life
        # A different signature: its last two characters changed (never to what they already were,
        # which a random signature ends in about once in a thousand runs).
        lambda v: v[:-2] + ("AA" if v[-2:] != "AA" else "BA"),
        lambda v: "garbage",
        lambda v: v + ".x",
    ],
)
def test_a_forged_or_malformed_session_is_refused(tamper: object) -> None:
    value = sessions.mint(SECRET, "cust-1", expires=int(time.time()) + 60)
    with pytest.raises(auth.InvalidToken):
        sessions.verify(SECRET, tamper(value))  # type: ignore[operator]


def test_a_session_and_a_token_are_not_interchangeable() -> None:
    expires = int(time.time()) + 60
    token = auth.mint(SECRET, "cust-1", expires=expires)
    session = sessions.mint(SECRET, "cust-1", expires=expires)
    assert token != session
    with pytest.raises(auth.InvalidToken):
        sessions.verify(SECRET, token)
    with pytest.raises(auth.InvalidToken):
        auth.verify(SECRET, session)


def test_another_key_refuses_it() -> None:
    value = sessions.mint(SECRET, "cust-1", expires=int(time.time()) + 60)
    with pytest.raises(auth.InvalidToken, match="signature"):
        sessions.verify(b"o" * 32, value)


def test_cookie_attributes() -> None:
    options = sessions.cookie_options(secure=True, max_age=60)
    assert options == {"httponly": True, "samesite": "Lax", "secure": True, "path": "/", "max_age": 60}
    assert sessions.token_expiry(auth.mint(SECRET, "c", expires=1234567890)) == 1234567890
