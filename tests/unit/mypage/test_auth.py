"""mypage.auth: signed tokens bind one customer until an expiry; each mode decides 200, 401 or 403."""

from __future__ import annotations

import pytest

from rental_operator.mypage import auth

SECRET = b"k" * 32
NOW = 1_800_000_000


def _token(customer: str = "cust-1", *, expires: int = NOW + 3600, secret: bytes = SECRET) -> str:
    return auth.mint(secret, customer, expires=expires)


def test_a_minted_token_verifies_to_its_customer() -> None:
    assert auth.verify(SECRET, _token(), now=NOW) == "cust-1"
    # Customer ids may contain the token's own separator and other URL-unfriendly characters.
    assert auth.verify(SECRET, _token("a.b:c@d+e"), now=NOW) == "a.b:c@d+e"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (_token(secret=b"x" * 32), "bad signature"),
        (_token(expires=NOW), "expired"),
        (_token(expires=NOW - 1), "expired"),
        ("not-a-token", "not a MyPage token"),
        ("a.b.c.d", "not a MyPage token"),
        ("!!!.123.abc", "malformed token"),
        ("Y3VzdC0x.+123.abc", "malformed token"),
        ("Y3VzdC0x.12a.abc", "malformed token"),
        ("x" * 600, "not a MyPage token"),
    ],
)
def test_bad_tokens_are_refused(token: str, why: str) -> None:
    with pytest.raises(auth.InvalidToken, match=why):
        auth.verify(SECRET, token, now=NOW)


def test_a_token_cannot_be_moved_to_another_customer_or_expiry() -> None:
    encoded, expires, signature = _token("cust-1").split(".")
    other = auth.mint(SECRET, "cust-2", expires=NOW + 3600).split(".")[0]
    with pytest.raises(auth.InvalidToken, match="bad signature"):
        auth.verify(SECRET, f"{other}.{expires}.{signature}", now=NOW)
    with pytest.raises(auth.InvalidToken, match="bad signature"):
        auth.verify(SECRET, f"{encoded}.{int(expires) + 86400}.{signature}", now=NOW)


def test_mint_refuses_impossible_customer_ids() -> None:
    with pytest.raises(ValueError):
        auth.mint(SECRET, "", expires=NOW)
    with pytest.raises(ValueError):
        auth.mint(SECRET, "x" * 129, expires=NOW)


def test_page_link_escapes_the_customer_and_carries_the_token() -> None:
    link = auth.page_link("https://my.example/", "a/b c", "t.1.s")
    assert link == "https://my.example/mypage/a%2Fb%20c?token=t.1.s"


TOKEN = auth.Policy(mode="token", secret=SECRET)


def test_token_mode_accepts_a_bearer_or_a_query_token_of_the_customer() -> None:
    token = _token()
    assert TOKEN.check("cust-1", authorization=f"Bearer {token}", now=NOW).verdict is auth.Verdict.ALLOWED
    assert TOKEN.check("cust-1", authorization=f"bearer  {token} ", now=NOW).verdict is auth.Verdict.ALLOWED
    assert TOKEN.check("cust-1", query_token=token, now=NOW).verdict is auth.Verdict.ALLOWED


@pytest.mark.parametrize(
    ("kwargs", "verdict"),
    [
        ({}, auth.Verdict.UNAUTHENTICATED),
        ({"authorization": "Basic Y3VzdC0xOng="}, auth.Verdict.UNAUTHENTICATED),
        ({"authorization": "Bearer "}, auth.Verdict.UNAUTHENTICATED),
        ({"authorization": "Bearer garbage"}, auth.Verdict.UNAUTHENTICATED),
        ({"query_token": _token(expires=NOW - 1)}, auth.Verdict.UNAUTHENTICATED),
        ({"authorization": f"Bearer {_token('cust-2')}"}, auth.Verdict.FORBIDDEN),
        ({"query_token": _token("cust-2")}, auth.Verdict.FORBIDDEN),
        # The identity header means nothing in token mode: it cannot stand in for a token.
        ({"identities": ["cust-1"]}, auth.Verdict.UNAUTHENTICATED),
    ],
)
def test_token_mode_refusals(kwargs: dict[str, str], verdict: auth.Verdict) -> None:
    assert TOKEN.check("cust-1", now=NOW, **kwargs).verdict is verdict  # type: ignore[arg-type]


def test_a_bad_authorization_header_is_not_rescued_by_a_query_token() -> None:
    decision = TOKEN.check("cust-1", authorization="Bearer nonsense", query_token=_token(), now=NOW)
    assert decision.verdict is auth.Verdict.UNAUTHENTICATED


def test_token_mode_without_a_secret_serves_nobody() -> None:
    policy = auth.Policy(mode="token", secret=None)
    decision = policy.check("cust-1", authorization=f"Bearer {_token()}", now=NOW)
    assert decision.verdict is auth.Verdict.UNCONFIGURED


def test_header_mode_trusts_the_proxy_header_only() -> None:
    policy = auth.Policy(mode="header", identity_header="X-Customer-Id")
    assert policy.check("cust-1", identities=["cust-1"]).verdict is auth.Verdict.ALLOWED
    assert policy.check("cust-1", identities=["cust-2"]).verdict is auth.Verdict.FORBIDDEN
    assert policy.check("cust-1").verdict is auth.Verdict.UNAUTHENTICATED
    # A token is no identity here: the proxy is the only authority.
    bearer = f"Bearer {_token()}"
    assert policy.check("cust-1", authorization=bearer, now=NOW).verdict is auth.Verdict.UNAUTHENTICATED


@pytest.mark.parametrize(
    "identities",
    [
        # A proxy that appends its header: the client's value first, then the proxy's (or the reverse).
        ["cust-1", "cust-1"],
        ["cust-2", "cust-1"],
        ["cust-1", "cust-2"],
        ["cust-1", ""],
        # The same appended into one value.
        ["cust-2, cust-1"],
        ["cust-1,cust-1"],
    ],
)
def test_header_mode_refuses_an_identity_header_sent_more_than_once(identities: list[str]) -> None:
    decision = auth.Policy(mode="header").check("cust-1", identities=identities)
    assert decision.verdict is auth.Verdict.AMBIGUOUS
    assert decision.reason == "X-Customer-Id sent more than once"


def test_none_mode_allows_everyone() -> None:
    assert auth.Policy(mode="none").check("anyone").verdict is auth.Verdict.ALLOWED
