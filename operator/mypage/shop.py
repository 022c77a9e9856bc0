"""The customer web app (CONTRACT §4b): sign-in, the catalog, applying, cancelling, on MyPage's server.

Routes, added to MyPage's aiohttp application by `server.make_app`:

- `GET /signin?token=...[&next=/path]`: a MyPage token (token mode) traded for a session cookie
  (`sessions`), then `303` to `/shop` or `next` when it is a path of this site. In `none` mode
  (demos) `?customer=` names the customer; in `header` mode the proxy's header is the identity on
  every request and no cookie is set.
- `GET /shop`, `GET /shop/{namespace}/{purifier}`: the catalog and a purifier's terms with the apply
  form, from the projection only (no Kubernetes request per view).
- `POST /shop/{namespace}/{purifier}`: apply. The customer id comes from the sign-in, never from the
  form. The form's signed application token names the Rental (`commands.rental_name`), so a double
  submit creates one; fields are checked with the Rental's own model (`api.rental.RentalSpec`) and
  then by the API server, whose 422 lands next to the fields too; more than
  `RENTAL_WEB_OPEN_APPLICATIONS` unsettled applications is `429`. Success: `303` to MyPage.
- `GET|POST /mypage/{customer}/rentals/{namespace}/{name}/cancel`: what cancelling now does (the
  operator's rule, as MyPage's JSON shows it), then `spec.cancelled: true`. Only the customer's own
  rentals (checked against the projection, then on the object itself): `403` and nothing written.
- `GET /static/mypage.js`, `GET /static/shop.css`: the only script and stylesheet.

Every POST carries a CSRF token (`csrf`) and, when the browser sends one, a same-origin Origin or
Referer; otherwise `403` and nothing changes. Without a writing client (`RENTAL_WEB_ENABLED=false`)
or permission to write, a POST is `503` with a page saying so.
Called by `mypage.server` (routes) and reads `mypage.projection`; writes through `mypage.commands`.
"""

from __future__ import annotations

import dataclasses
import html
import importlib.resources
import logging
import re
import secrets
import time
import urllib.parse
from typing import Any, Final

import pydantic
from aiohttp import hdrs, web

from rental_operator import i18n
from rental_operator.api import rental as api_rental
from rental_operator.mypage import auth, commands, csrf, projection, sessions, shop_pages

__all__ = ["PAGE_HEADERS", "WEB", "Web", "install", "session_customer", "validate"]

logger = logging.getLogger(__name__)

_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_CUSTOMER_ID: Final = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")
_PHONE_SEPARATORS: Final = re.compile(r"[\s\-().]")

PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # Own stylesheet and script only; forms post to this site only; never framed.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on a POST, and
    # the same-origin check needs the real one. No page of the shop carries a token in its address.
    "Referrer-Policy": "same-origin",
}
_STATIC: Final = {
    "mypage.js": "text/javascript",
    "shop.css": "text/css",
}


@dataclasses.dataclass
class Web:
    """What the web app's handlers share: the read model, sign-in policy, the writer and the limits."""

    view: projection.Projection
    policy: auth.Policy
    writer: commands.Writer
    # Signs sessions, CSRF and application tokens: the token key, else one per process (then forms
    # only submit to the replica that rendered them: fine for a demo, so say so in the log).
    secret: bytes
    secure_cookies: bool = False
    open_applications: int = 3
    public_origin: str | None = None

    @classmethod
    def build(
        cls,
        view: projection.Projection,
        policy: auth.Policy,
        writer: commands.Writer | None = None,
        *,
        open_applications: int = 3,
        public_url: str | None = None,
    ) -> Web:
        secret = policy.secret
        if secret is None:
            secret = secrets.token_bytes(32)
            if policy.mode != "none":
                logger.warning(
                    "The web app signs its forms with a key of this process (no RENTAL_MYPAGE_TOKEN_SECRET): "
                    "with several MyPage replicas, set one so any replica accepts any form"
                )
        origin = None
        if public_url:
            parts = urllib.parse.urlsplit(public_url)
            origin = f"{parts.scheme}://{parts.netloc}"
        return cls(
            view=view,
            policy=policy,
            writer=writer or commands.Writer(),
            secret=secret,
            secure_cookies=bool(origin and origin.startswith("https://")),
            open_applications=open_applications,
            public_origin=origin,
        )


WEB: Final = web.AppKey("web", Web)


def session_customer(request: web.Request) -> str | None:
    """The customer of the request's valid session cookie, if any."""
    state = request.app[WEB]
    value = request.cookies.get(sessions.COOKIE)
    if not value:
        return None
    try:
        return sessions.verify(state.secret, value)
    except auth.InvalidToken:
        return None


class _Refused(Exception):  # noqa: N818
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _language(request: web.Request) -> i18n.Language:
    """The pages' language, from `Accept-Language` (Korean by default, as MyPage's page)."""
    return i18n.negotiate(request.headers.get(hdrs.ACCEPT_LANGUAGE))


def _words(language: i18n.Language, key: str) -> str:
    return i18n.messages(language).gettext(shop_pages.TEXTS[key])


def _page(
    text: str, status: int = 200, headers: dict[str, str] | None = None, *, language: i18n.Language = "en"
) -> web.Response:
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        charset="utf-8",
        headers={
            **PAGE_HEADERS,
            hdrs.CONTENT_LANGUAGE: language,
            hdrs.VARY: hdrs.ACCEPT_LANGUAGE,
            **(headers or {}),
        },
    )


def _see_other(location: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=303, headers={**(headers or PAGE_HEADERS), "Location": location})


def _message(
    request: web.Request,
    status: int,
    title_key: str,
    text_key: str,
    *,
    customer: str | None = None,
    **values: str,
) -> web.Response:
    language = _language(request)
    text = html.escape(_words(language, text_key), quote=True)
    if values:
        text = text.format_map({key: html.escape(value, quote=True) for key, value in values.items()})
    headers = {"WWW-Authenticate": 'Bearer realm="mypage"'} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    page = shop_pages.message_page(_words(language, title_key), text, customer=customer, language=language)
    return _page(page, status, headers, language=language)


def _identity(request: web.Request) -> str | None:
    """Who is signed in: the proxy's header (header mode), else the session cookie or a bearer token.

    Raises `_Refused` (400) for an identity header sent twice: neither value is believed.
    """
    state = request.app[WEB]
    policy = state.policy
    if policy.mode == "header":
        values = request.headers.getall(policy.identity_header, ())
        if len(values) > 1 or any("," in value for value in values):
            logger.warning("Web app 400: %s sent more than once", policy.identity_header)
            raise _Refused(_page(shop_pages.message_page("Bad request", "Bad request"), 400))
        return values[0] if values and _CUSTOMER_ID.fullmatch(values[0]) else None
    customer = session_customer(request)
    if customer is None and policy.mode == "token" and policy.secret is not None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                customer = auth.verify(policy.secret, token.strip())
            except auth.InvalidToken:
                customer = None
    return customer


def _signed_in(request: web.Request) -> str:
    customer = _identity(request)
    if customer is None:
        raise _Refused(_message(request, 401, "sign_in_title", "sign_in_text"))
    return customer


def _check_post(request: web.Request, customer: str, form: Any) -> None:
    """Refuse (403) a POST without this customer's CSRF token or from another origin."""
    state = request.app[WEB]
    allowed = {f"{request.scheme}://{request.host}"}
    if state.public_origin:
        allowed.add(state.public_origin)
    origin_ok = csrf.same_origin(
        request.headers.get("Origin"), request.headers.get("Referer"), frozenset(allowed)
    )
    if not origin_ok or not csrf.valid(state.secret, customer, form.get("csrf")):
        logger.info(
            "Web app 403: %s %s without a valid CSRF token or from another origin",
            request.method,
            request.path,
        )
        raise _Refused(_message(request, 403, "forbidden_title", "forbidden_text", customer=customer))


def _purifier_of(request: web.Request) -> projection.Purifier:
    namespace, name = request.match_info["namespace"], request.match_info["purifier"]
    found = request.app[WEB].view.purifier(namespace, name) if _NAME.fullmatch(name) else None
    if found is None:
        raise _Refused(_message(request, 404, "not_found_title", "not_found"))
    return found


def _guarded(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if not request.app[WEB].view.ready:
            return _page(
                shop_pages.message_page("Loading", "Loading; try again in a moment."),
                503,
                {"Retry-After": "1"},
            )
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except _Refused as refused:
            return refused.response

    return wrapped


# --- sign-in ----------------------------------------------------------------------------------------
def _next_path(value: str | None) -> str:
    """`next` if it is a path on this site (`/...`, not `//host` or `/\\host`), else the catalog."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) < 1024:
        parts = urllib.parse.urlsplit(value)
        if not parts.scheme and not parts.netloc:
            return value
    return "/shop"


async def _signin(request: web.Request) -> web.StreamResponse:
    state = request.app[WEB]
    policy = state.policy
    target = _next_path(request.query.get("next"))
    headers = {**PAGE_HEADERS, "Referrer-Policy": "no-referrer"}  # the address holds the token
    if policy.mode == "header":
        return _see_other(target, headers)
    now = int(time.time())
    expires = now + sessions.LIFETIME_SECONDS
    if policy.mode == "none":
        customer = request.query.get("customer", "")
        if not _CUSTOMER_ID.fullmatch(customer):
            return _message(request, 401, "sign_in_title", "sign_in_text")
    else:
        if policy.secret is None:
            return _message(request, 503, "unavailable_title", "unavailable_text")
        token = request.query.get("token", "")
        try:
            customer = auth.verify(policy.secret, token)
        except auth.InvalidToken as error:
            logger.info("Web app sign-in refused: %s", error)
            return _message(request, 401, "sign_in_title", "sign_in_text")
        expires = min(expires, sessions.token_expiry(token))
    response = _see_other(target, headers)
    response.set_cookie(
        sessions.COOKIE,
        sessions.mint(state.secret, customer, expires=expires),
        **sessions.cookie_options(secure=state.secure_cookies, max_age=expires - now),  # type: ignore[arg-type]
    )
    return response


async def _signout(request: web.Request) -> web.StreamResponse:
    customer = _signed_in(request)
    _check_post(request, customer, await request.post())
    response = _see_other("/shop")
    response.del_cookie(sessions.COOKIE, path="/")
    return response


# --- catalog and applying ----------------------------------------------------------------------------
async def _catalog(request: web.Request) -> web.StreamResponse:
    view = request.app[WEB].view
    language = _language(request)
    page = shop_pages.catalog(view.purifiers(), customer=_identity(request), language=language)
    return _page(page, language=language)


def _form_page(
    request: web.Request,
    purifier: projection.Purifier,
    customer: str | None,
    *,
    status: int = 200,
    application: str | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> web.Response:
    state = request.app[WEB]
    language = _language(request)
    text = shop_pages.purifier_page(
        purifier,
        customer=customer,
        csrf_token=csrf.issue(state.secret, customer) if customer else "",
        application=application or (csrf.issue_application(state.secret, customer) if customer else ""),
        values=values,
        errors=errors,
        language=language,
    )
    return _page(text, status, language=language)


async def _purifier(request: web.Request) -> web.StreamResponse:
    return _form_page(request, _purifier_of(request), _identity(request))


_RULES: Final = {
    "name": "rule_name",
    "phone": "rule_phone",
    "address": "rule_address",
    "months": "rule_months",
    "purifier": "rule_purifier",
}


def _rule(field: str, language: i18n.Language, detail: str = "") -> str:
    if field in _RULES:
        return html.escape(_words(language, _RULES[field]), quote=True)
    return html.escape(_words(language, "rule_form").format_map({"detail": detail}), quote=True)


def validate(
    purifier: projection.Purifier, customer: str, values: dict[str, str], language: i18n.Language = "en"
) -> tuple[api_rental.RentalSpec | None, dict[str, str]]:
    """The application as a `RentalSpec`, or the rule in words for each bad field (escaped HTML)."""
    errors: dict[str, str] = {}
    months_text = values.get("months", "")
    months = (
        int(months_text) if months_text.isascii() and months_text.isdigit() and len(months_text) < 4 else 0
    )
    if months not in shop_pages.terms_for(purifier):
        errors["months"] = _rule("months", language)
    candidate = {
        "purifier": purifier.name,
        "customer": {
            "id": customer,
            "name": values.get("name") or None,
            "phone": values.get("phone", ""),
            "address": values.get("address", ""),
        },
        "months": months or 1,
    }
    try:
        spec = api_rental.RentalSpec.model_validate(candidate)
    except pydantic.ValidationError as error:
        for problem in error.errors():
            path = "spec." + ".".join(str(part) for part in problem["loc"])
            field = commands.field_of(path)
            errors.setdefault(field, _rule(field, language, str(problem["msg"])))
        return None, errors
    return (None, errors) if errors else (spec, {})


def _values(form: Any) -> dict[str, str]:
    values = {key: str(form.get(key, ""))[:1000] for key in ("name", "phone", "address", "months")}
    values["name"] = values["name"].strip()
    values["address"] = values["address"].strip()
    values["phone"] = _PHONE_SEPARATORS.sub("", values["phone"])
    return values


async def _apply(request: web.Request) -> web.StreamResponse:
    state = request.app[WEB]
    customer = _signed_in(request)
    form = await request.post()
    _check_post(request, customer, form)
    purifier = _purifier_of(request)
    if not state.writer.available:
        return _message(request, 503, "unavailable_title", "unavailable_text", customer=customer)
    application = str(form.get("application", ""))
    nonce = csrf.application_nonce(state.secret, customer, application)
    if nonce is None:
        return _message(request, 403, "forbidden_title", "forbidden_text", customer=customer)
    name = commands.rental_name(state.secret, customer, nonce)
    mypage = f"/mypage/{urllib.parse.quote(customer, safe='')}"
    known = state.view.rental(purifier.namespace, name)
    if known is not None and known.customer == customer:
        return _see_other(mypage)  # this form was applied already
    unsettled = sum(1 for rental in state.view.rentals_of(customer) if rental.phase in projection.UNSETTLED)
    if unsettled >= state.open_applications:
        return _message(
            request,
            429,
            "too_many_title",
            "too_many",
            customer=customer,
            count=str(unsettled),
            limit=str(state.open_applications),
        )
    values = _values(form)
    spec, errors = validate(purifier, customer, values, _language(request))
    if spec is None:
        return _form_page(
            request, purifier, customer, status=422, application=application, values=values, errors=errors
        )
    outcome = await state.writer.apply(purifier.namespace, name, spec)
    if outcome.result == "done":
        return _see_other(mypage)
    if outcome.result == "invalid":
        language = _language(request)
        errors = {field: _rule(field, language, message) for field, message in outcome.fields.items()}
        return _form_page(
            request, purifier, customer, status=422, application=application, values=values, errors=errors
        )
    if outcome.result == "forbidden":
        return _message(request, 403, "forbidden_title", "not_yours", customer=customer)
    return _message(request, 503, "unavailable_title", "unavailable_text", customer=customer)


# --- cancelling ---------------------------------------------------------------------------------------
def _own_rental(request: web.Request) -> tuple[str, projection.Rental]:
    """The signed-in customer and their rental named in the path; 401, 403 or 404 otherwise."""
    state = request.app[WEB]
    customer = _signed_in(request)
    if request.match_info["customer"] != customer:
        raise _Refused(_message(request, 403, "forbidden_title", "not_yours", customer=customer))
    rental = state.view.rental(request.match_info["namespace"], request.match_info["name"])
    if rental is None:
        raise _Refused(_message(request, 404, "not_found_title", "not_found", customer=customer))
    if rental.customer != customer:
        logger.info("Web app 403: %s asked to cancel another customer's rental", customer)
        raise _Refused(_message(request, 403, "forbidden_title", "not_yours", customer=customer))
    return customer, rental


async def _cancel_page(request: web.Request) -> web.StreamResponse:
    state = request.app[WEB]
    customer, rental = _own_rental(request)
    token = csrf.issue(state.secret, customer)
    language = _language(request)
    page = shop_pages.cancel_page(customer, rental, now=state.view.now(), csrf_token=token, language=language)
    return _page(page, language=language)


async def _cancel(request: web.Request) -> web.StreamResponse:
    state = request.app[WEB]
    customer = _signed_in(request)
    _check_post(request, customer, await request.post())
    customer, rental = _own_rental(request)
    if rental.phase not in shop_pages.CANCELLABLE:
        return _see_other(f"/mypage/{urllib.parse.quote(customer, safe='')}")
    if not state.writer.available:
        return _message(request, 503, "unavailable_title", "unavailable_text", customer=customer)
    outcome = await state.writer.cancel(rental.namespace, rental.name, customer)
    if outcome.result == "done":
        return _see_other(f"/mypage/{urllib.parse.quote(customer, safe='')}")
    if outcome.result == "forbidden":
        return _message(request, 403, "forbidden_title", "not_yours", customer=customer)
    if outcome.result == "missing":
        return _message(request, 404, "not_found_title", "not_found", customer=customer)
    return _message(request, 503, "unavailable_title", "unavailable_text", customer=customer)


# --- static -------------------------------------------------------------------------------------------
def _static_files() -> dict[str, bytes]:
    folder = importlib.resources.files("rental_operator.mypage") / "static"
    return {name: (folder / name).read_bytes() for name in _STATIC}


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    return web.Response(
        body=_FILES[name],
        content_type=_STATIC[name],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


_FILES: Final = _static_files()


def install(app: web.Application, state: Web) -> None:
    """Add the web app's routes to MyPage's application."""
    app[WEB] = state
    app.router.add_get("/signin", _guarded(_signin))
    app.router.add_post("/signout", _guarded(_signout))
    app.router.add_get("/shop", _guarded(_catalog))
    app.router.add_get("/shop/{namespace}/{purifier}", _guarded(_purifier))
    app.router.add_post("/shop/{namespace}/{purifier}", _guarded(_apply))
    cancel = "/mypage/{customer}/rentals/{namespace}/{name}/cancel"
    app.router.add_get(cancel, _guarded(_cancel_page))
    app.router.add_post(cancel, _guarded(_cancel))
    app.router.add_get("/static/{file}", _static)
