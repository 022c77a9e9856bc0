"""MyPage over HTTP: the JSON API and the page of CONTRACT §4, the probes, and running the server.

An aiohttp application, because aiohttp is already here (Kopf is built on it) and runs in the event
loop Kopf owns, so MyPage inside the operator needs no thread of its own; the `mypage` command runs
the same application in its own loop. Handlers only read the projection (no Kubernetes request while
serving) and decide access with `mypage.auth`.

- `GET /api/v1/customers/{customerId}/rentals` -> JSON; `GET /mypage/{customerId}` -> the page.
- `GET /healthz` -> 200 while the process serves; `GET /readyz` -> 503 until the initial listing is
  loaded, then 200. Customer routes answer 503 too until then: an empty answer would be a lie. The
  probes say ready or not and nothing else: how many rentals and customers exist is nobody's business
  on a public port.
- Errors are JSON `{"error": ...}` on the API, a short page on `/mypage/`; 401 carries
  `WWW-Authenticate: Bearer`; an identity header sent twice in header mode is 400.
- No `/metrics` here: the application is what the public Service exposes, so the metrics are served
  on a port of their own (the operator's, or the `mypage` command's `--metrics-port`).
- The access log (`--access-log`) never holds a token: each line has the path without its query
  string (the page link's `?token=`) and with any token-shaped path segment replaced by `[redacted]`.
- The customer web app (`mypage.shop`: sign-in, catalog, applying, cancelling) shares the application;
  its session cookie identifies a customer here too (token mode), and the page gains a live section
  (`shop_pages.live_section`: phases kept current by `/static/mypage.js`, Cancel links).

Called by `handlers.lifecycle` (inside the operator) and `mypage.standalone` (on its own).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import abc, hdrs, web

from rental_operator import config, i18n
from rental_operator.mypage import auth, commands, metrics, pages, projection, shop, shop_pages

__all__ = ["PROJECTION", "Server", "make_app", "policy_from_settings", "rental_json", "rfc3339"]

logger = logging.getLogger(__name__)

PROJECTION: Final = web.AppKey("projection", projection.Projection)
POLICY: Final = web.AppKey("policy", auth.Policy)

# The same rule as the Rental schema's spec.customer.id: anything else cannot be anyone's id.
_CUSTOMER_ID: Final = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")

# A MyPage token (`auth.mint`): base64url customer, expiry digits, base64url HMAC-SHA256 (43 chars).
_TOKEN_SHAPED: Final = re.compile(r"[A-Za-z0-9_=-]+\.[0-9]+\.[A-Za-z0-9_=-]{20,}")
_REDACTED: Final = "[redacted]"

_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(pages.STYLE.encode()).digest()).decode()
_PRIVATE: Final = {
    # Someone's rentals: never cached by a proxy or the browser's back-forward store.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_PAGE_HEADERS: Final = {
    **_PRIVATE,
    # Only this origin's script (the live update) and stylesheet, nothing external; the token in
    # the link must not leak through a Referer.
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}' 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def rfc3339(seconds: float) -> str:
    """`2026-11-01T12:00:00Z` (with milliseconds when `seconds` has a fraction).

    `time.strftime` rather than `datetime.isoformat`: twice as fast, and a response has dozens.
    """
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if isinstance(seconds, float) and not seconds.is_integer():
        text += f".{int(seconds * 1000) % 1000:03d}"
    return text + "Z"


def _moment(seconds: int | None) -> str | None:
    return rfc3339(seconds) if seconds else None


_BILLING_FIELDS: Final = (
    "monthlyFee",
    "currency",
    "mandatoryMonths",
    "earlyTerminationPercent",
    "periodsPaid",
    "periodsTotal",
    "paidAmount",
    "nextChargeAt",
    "termEndsAt",
    "withdrawalEndsAt",
    "pastDue",
)


def _billing_json(billing: projection.Billing | None) -> dict[str, Any]:
    # Always an object, like `payment` and `delivery`: null fields until the terms are locked.
    if billing is None:
        return dict.fromkeys(_BILLING_FIELDS)
    late = billing.past_due
    return {
        "monthlyFee": billing.monthly_fee,
        "currency": billing.currency,
        "mandatoryMonths": billing.mandatory_months,
        "earlyTerminationPercent": billing.early_termination_percent,
        "periodsPaid": billing.periods_paid,
        "periodsTotal": billing.periods_total,
        "paidAmount": billing.paid_amount,
        "nextChargeAt": _moment(billing.next_charge_at),
        "termEndsAt": _moment(billing.term_ends_at),
        "withdrawalEndsAt": _moment(billing.withdrawal_ends_at),
        "pastDue": None
        if late is None
        else {
            "period": late.period,
            "since": _moment(late.since),
            "attempts": late.attempts,
            "nextAttemptAt": _moment(late.next_attempt_at),
        },
    }


def rental_json(rental: projection.Rental, *, now: float) -> dict[str, Any]:
    """One rental in the API's shape (CONTRACT §4, plus `message`, `history` and `charges`).

    `now` (Unix seconds) is when the answer is made: `cancellation` says what cancelling then
    would do, which changes with the time alone (the withdrawal window closes).
    """
    cancel = projection.cancellation(rental, now)
    return {
        "namespace": rental.namespace,
        "name": rental.name,
        "purifier": rental.purifier,
        "model": rental.model,
        "phase": rental.phase,
        "message": rental.message,
        "payment": {"phase": rental.payment_phase, "amount": rental.amount, "currency": rental.currency},
        "delivery": {"phase": rental.delivery_phase, "trackingNumber": rental.tracking_number},
        "updatedAt": rfc3339(rental.updated_at) if rental.updated_at else None,
        "history": [
            {
                "seq": entry.seq,
                "kind": entry.kind,
                "phase": entry.phase,
                "at": rfc3339(entry.at) if entry.at else None,
                "message": entry.message,
            }
            for entry in rental.history
        ],
        "billing": _billing_json(rental.billing),
        "charges": [
            {"period": charge.period, "amount": charge.amount, "at": _moment(charge.at)}
            for charge in rental.charges
        ],
        "cancellation": None
        if cancel is None
        else {"ending": cancel.ending, "refund": cancel.refund, "fee": cancel.fee},
    }


def policy_from_settings(settings: config.MyPageSettings) -> auth.Policy:
    policy = auth.Policy(
        mode=settings.mypage_auth,
        secret=settings.token_secret(),
        identity_header=settings.mypage_identity_header,
    )
    if policy.mode == "none":
        logger.warning("MyPage authentication is OFF (RENTAL_MYPAGE_AUTH=none): anyone sees every customer")
    elif policy.mode == "token" and policy.secret is None:
        logger.warning(
            "MyPage answers 503 to customers: RENTAL_MYPAGE_AUTH=token needs RENTAL_MYPAGE_TOKEN_SECRET "
            "(or _FILE), or use RENTAL_MYPAGE_AUTH=header behind an auth proxy"
        )
    return policy


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type="application/json",
        headers={**_PRIVATE, **(headers or {})},
    )


def _error_page(status: int, title: str, text: str, headers: dict[str, str] | None = None) -> web.Response:
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{pages.STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></main></body></html>\n"
    )
    return web.Response(
        status=status,
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={**_PAGE_HEADERS, **(headers or {})},
    )


_REFUSALS: Final = {
    auth.Verdict.UNAUTHENTICATED: (
        401,
        "Sign-in needed",
        "This page needs a valid link or token. Ask for a new MyPage link.",
    ),
    auth.Verdict.FORBIDDEN: (403, "Not yours", "These rentals belong to another customer."),
    auth.Verdict.UNCONFIGURED: (503, "Unavailable", "MyPage sign-in is not configured yet."),
    auth.Verdict.AMBIGUOUS: (400, "Bad request", "The identity header was sent more than once."),
}


def _refusal(request: web.Request, customer: str, *, page: bool) -> web.Response | None:
    """The response refusing this request, or None when it may go ahead."""
    policy = request.app[POLICY]
    if policy.mode == "token" and not request.headers.get("Authorization") and not request.query.get("token"):
        # A browser signed in to the web app carries its session instead of a token.
        session = shop.session_customer(request)
        if session is not None:
            if session == customer:
                return None
            return (
                _error_page(403, *_REFUSALS[auth.Verdict.FORBIDDEN][1:])
                if page
                else _json(403, {"error": _REFUSALS[auth.Verdict.FORBIDDEN][2]})
            )
    decision = policy.check(
        customer,
        authorization=request.headers.get("Authorization"),
        query_token=request.query.get("token") if page else None,
        identities=request.headers.getall(policy.identity_header, ()),
    )
    if decision.verdict is auth.Verdict.ALLOWED:
        return None
    status, title, text = _REFUSALS[decision.verdict]
    # A repeated identity header means the proxy in front lets a client's header through: worth a
    # warning (it is counted as a 400 in rental_mypage_requests_total too); the rest is routine.
    level = logging.WARNING if decision.verdict is auth.Verdict.AMBIGUOUS else logging.DEBUG
    logger.log(level, "MyPage %s for %s: %s", status, _loggable_path(request), decision.reason)
    headers = {"WWW-Authenticate": 'Bearer realm="mypage"'} if status == 401 else None
    if page:
        return _error_page(status, title, text, headers)
    return _json(status, {"error": text}, headers)


def _not_ready(*, page: bool) -> web.Response:
    text = "MyPage is still loading; try again in a moment."
    headers = {"Retry-After": "1"}
    if page:
        return _error_page(503, "Loading", text, headers)
    return _json(503, {"error": text}, headers)


def _bad_id(*, page: bool) -> web.Response:
    text = "Not a customer id."
    return _error_page(404, "Not found", text) if page else _json(404, {"error": text})


async def _customer_rentals(request: web.Request) -> web.Response:
    customer = request.match_info["customer"]
    if not _CUSTOMER_ID.fullmatch(customer):
        return _bad_id(page=False)
    refusal = _refusal(request, customer, page=False)
    if refusal is not None:
        return refusal
    view = request.app[PROJECTION]
    if not view.ready:
        return _not_ready(page=False)
    as_of, now = view.as_of(), view.now()
    rentals = [rental_json(rental, now=now) for rental in view.rentals_of(customer)]
    return _json(200, {"customerId": customer, "rentals": rentals, "asOf": rfc3339(as_of)})


async def _page(request: web.Request) -> web.Response:
    customer = request.match_info["customer"]
    if not _CUSTOMER_ID.fullmatch(customer):
        return _bad_id(page=True)
    refusal = _refusal(request, customer, page=True)
    if refusal is not None:
        return refusal
    view = request.app[PROJECTION]
    if not view.ready:
        return _not_ready(page=True)
    language = i18n.negotiate(request.headers.get(hdrs.ACCEPT_LANGUAGE))  # default: Korean
    rentals = view.rentals_of(customer)
    page = pages.render(customer, rentals, as_of=view.as_of(), now=view.now(), language=language)
    text = _with_live_section(page, customer, rentals, language)
    headers = {**_PAGE_HEADERS, hdrs.CONTENT_LANGUAGE: language, hdrs.VARY: hdrs.ACCEPT_LANGUAGE}
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers=headers)


def _with_live_section(
    page: str, customer: str, rentals: list[projection.Rental], language: i18n.Language
) -> str:
    """The page with the web app's live section (phases, Cancel links), stylesheet and script added."""
    section = shop_pages.live_section(customer, rentals, language=language)
    tail = '<link rel="stylesheet" href="/static/shop.css"><script src="/static/mypage.js" defer></script>'
    if "</main>" in page:
        page = page.replace("</main>", section + "</main>", 1)
    else:
        tail = section + tail
    return page.replace("</body>", tail + "</body>", 1) if "</body>" in page else page + tail


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    view = request.app[PROJECTION]
    if not view.ready:
        return web.Response(status=503, text="loading the initial listing\n")
    return web.Response(text="ready\n")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    code = 500
    try:
        response = await handler(request)
        code = response.status
        return response
    except web.HTTPException as error:
        code = error.status
        raise
    finally:
        metrics.REQUESTS.labels(str(code)).inc()
        metrics.REQUEST_DURATION.observe(time.perf_counter() - started)


def make_app(
    view: projection.Projection,
    policy: auth.Policy,
    *,
    writer: commands.Writer | None = None,
    open_applications: int = 3,
    public_url: str | None = None,
) -> web.Application:
    """The MyPage application over `view`, checking access with `policy`; with the web app, whose
    commands go through `writer` (None, or one without a client: they answer 503)."""
    app = web.Application(middlewares=[_measure], client_max_size=64 * 1024)
    shop.install(
        app,
        shop.Web.build(view, policy, writer, open_applications=open_applications, public_url=public_url),
    )
    app[PROJECTION] = view
    app[POLICY] = policy
    app.router.add_get("/api/v1/customers/{customer}/rentals", _customer_rentals)
    app.router.add_get("/mypage/{customer}", _page)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


def _loggable_path(request: web.BaseRequest) -> str:
    """The request's path as logs may keep it: no query string, no token-shaped segment."""
    segments = request.rel_url.raw_path.split("/")
    path = "/".join(_REDACTED if _TOKEN_SHAPED.fullmatch(part) else part for part in segments)
    return f"{path}?{_REDACTED}" if request.rel_url.raw_query_string else path


class _AccessLog(abc.AbstractAccessLogger):
    """aiohttp's access log without what could let a reader of the logs act as a customer.

    aiohttp's default line has the request line (`%r`), query string included, and the Referer,
    either of which can carry the page link's token. This one logs the client address, method,
    path (`_loggable_path`), status, size and time, and no header.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.1fms',
            request.remote,
            request.method,
            _loggable_path(request),
            response.status,
            response.body_length,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class Server:
    """The application listening on host:port, started and stopped inside a running event loop."""

    def __init__(self, app: web.Application, *, host: str, port: int, access_log: bool = False) -> None:
        self._runner = web.AppRunner(
            app, access_log_class=_AccessLog, access_log=logger if access_log else None
        )
        self._host = host
        self._port = port
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await self._site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        logger.info("MyPage listening on http://%s:%d", self._host, self.port)

    @property
    def port(self) -> int:
        """The port actually bound (useful when 0 was asked for)."""
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                port: int = address[1]
                return port
        return self._port

    async def stop(self) -> None:
        await self._runner.cleanup()
