"""The HTTP plumbing the three partner clients share, so each of them is only its endpoints and models.

CONTRACT §2 fixes the wire rules for every partner: JSON bodies, `Authorization: Bearer <key>` when a
key is configured, an `Idempotency-Key` on every POST, `{"error": "<message>"}` on errors, and the
fault/answer split (5xx, timeout, refused connection vs. 4xx). `Transport` applies those rules and
turns every outcome into either an `Answer` (a 2xx) or one of the exceptions in `errors`; `decode`
parses an answer strictly into a pydantic model. Used by `payments`, `shipping` and `sms`.

Decisions worth knowing:

- One urllib3 pool per client, shared by the scheduler's worker threads, sized for `POOL_SIZE`
  concurrent calls. urllib3 directly, not `requests`: requests' per-call work (merging environment
  settings, netrc lookups, cookies, hooks, its own response object) cost more CPU than the exchange
  itself, 10% of the operator's CPU during a burst with seven partner calls per rental. Retries are
  off: a retry of a POST is the operator's decision (with the same Idempotency-Key), and every
  attempt must count for the breaker.
- A proxy from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, with NO_PROXY) is honoured as
  requests honoured it, decided once per client rather than on every call.
- Redirects are not followed (a redirected POST would silently become a GET); a 3xx is a protocol error.
- `Timeout.deadline` (RENTAL_*_TIMEOUT_SECONDS) bounds the whole call: connect, send, the status
  line, the headers and every read of the body. A per-read timeout alone let a partner that sends a
  byte every 0.8 s hold a worker forever (and never count as a failure). urllib3 has no such
  deadline, so the pool's connections read their answers through `_DeadlineResponse`: each wait for
  bytes is given only the time left, and none once it is gone.
- An answer is at most `max_response_bytes` (`MAX_RESPONSE_BYTES`) and is never content-decoded:
  no compression is offered (http.client sends `Accept-Encoding: identity`), and a body larger than
  the cap or with a `Content-Encoding` is not read, the connection is dropped and the call fails with
  `errors.UnacceptableAnswer`, which the breaker counts. A partner's whole answer read into memory,
  or gzip inflated by urllib3 unasked, took the operator from 34 to 635 MiB with one 300 MiB body
  (or a 298 KiB gzip bomb), past the chart's memory limit, and the retried charge did it again.
- Whether a failed POST may have taken effect is decided conservatively: only a refused connection,
  a failed name lookup or a connect timeout prove the request never left.
- The API key is sent, never logged, and never part of an exception message: what a partner says
  (its error text, the ids it made up that end up in paths) has the key removed before it is cut
  to length, and so do fragments of 8 characters or more of it (a partner that cuts its own echo).
- Certificates of https partners are always verified: against `ca_bundle` (RENTAL_PARTNER_CA_BUNDLE
  or a per-partner one) when given, else REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's
  bundle (what requests used). There is no way to turn verification off. A failed handshake is a
  fault (`kind="tls"`): the breaker counts it and the message says which check failed, so a wrong
  CA shows up as such and not as an outage.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.client
import io
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import certifi
import pydantic
import urllib3
import urllib3.connection
import urllib3.exceptions

from rental_operator.partners import errors

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_KEY_LENGTH",
    "MAX_RESPONSE_BYTES",
    "POOL_SIZE",
    "Answer",
    "PartnerModel",
    "Timeout",
    "Transport",
    "build_headers",
    "check_idempotency_key",
    "derive_key",
    "join_url",
    "path_segment",
]

POOL_SIZE = 64  # as many as the operator's reconciliation workers (handlers.lifecycle.WORKERS)
DEFAULT_TIMEOUT_SECONDS = 5.0  # for partners whose timeout the settings do not name (shipping, SMS)
MAX_KEY_LENGTH = 255
# The contract's answers are JSON objects of a few hundred bytes, and a proxy's error page a few KiB;
# 256 KiB leaves ample room for either. It is also what bounds the memory a hostile partner can
# take: each of the POOL_SIZE calls in flight holds at most this much (twice while it is joined),
# 32 MiB in all, against the chart's 384 Mi limit.
MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = "rental-operator (purifier rental; partners client)"

_KEY = re.compile(r"[\x21-\x7e]+")  # visible ASCII: safe in a header, no whitespace to be trimmed
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")
_MAX_ERROR_CHARS = 300
_CHUNK_BYTES = 64 * 1024
_REDACTED = "[redacted]"
# A run of this many characters of the key is redacted even where the whole key is not there (a
# partner or proxy that cut its own echo short). Seven characters of a key (at least 32 random
# ones in practice) still leave its guessing out of reach, and shorter runs would start to match
# ordinary words in test and development keys.
_KEY_FRAGMENT_CHARS = 8

# The deadline of the call this thread is making. urllib3 builds the response deep inside the pool,
# with no way to hand it a value; a call runs in one thread from start to end, so the thread is
# where `_DeadlineResponse` finds it.
_calls = threading.local()

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=pydantic.BaseModel)
E = TypeVar("E", bound=BaseException)


class PartnerModel(pydantic.BaseModel):
    """Base of every parsed answer: strict types, camelCase aliases, unknown fields ignored.

    Unknown fields are ignored because the contract may be extended; strict types because an amount
    sent as `"1000"` or `1000.0` means the partner is not the one the contract describes.
    """

    model_config = pydantic.ConfigDict(frozen=True, strict=True, extra="ignore", populate_by_name=True)


@dataclasses.dataclass(frozen=True)
class Timeout:
    """Seconds for one call: `connect` to connect, `read` for each wait for bytes, `total` for all of it.

    `total` defaults to the longer of the other two, so a `Timeout(s, s)` built from one
    RENTAL_*_TIMEOUT_SECONDS is a deadline of `s` for the whole call (`deadline`).
    """

    connect: float
    read: float
    total: float | None = None

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0 or (self.total is not None and self.total <= 0):
            raise ValueError("timeouts must be positive")

    @property
    def deadline(self) -> float:
        """Seconds the whole call may take, from asking for a connection to the last byte read."""
        return self.total if self.total is not None else max(self.connect, self.read)


@dataclasses.dataclass(frozen=True)
class Answer:
    """A 2xx answer, with what was asked, so a parse error can say which request it was."""

    method: str
    path: str
    status: int
    body: bytes


def join_url(base: str, path: str) -> str:
    """`base` (with or without a trailing slash, possibly with a path prefix) joined with `path`.

    Not `urllib.parse.urljoin`: that drops the last segment of a prefix without a trailing slash
    (`http://h/api` + `v1/x` is `http://h/v1/x`), and an absolute `path` would drop the prefix.
    """
    split = urllib.parse.urlsplit(base)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ValueError(f"not an http(s) base URL: {base!r}")
    if split.query or split.fragment:
        raise ValueError(f"a base URL cannot have a query or fragment: {base!r}")
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def path_segment(value: str) -> str:
    """An id made safe as one path segment: percent-encoded, never empty, never `.` or `..`."""
    if not value or value in (".", ".."):
        raise ValueError(f"not a usable id: {value!r}")
    return urllib.parse.quote(value, safe="")


def check_idempotency_key(key: str) -> str:
    """The key itself, or a ValueError: 1..255 visible ASCII characters (no spaces)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError("an idempotency key must be a non-empty string of visible ASCII characters")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key must be at most {MAX_KEY_LENGTH} characters")
    return key


def derive_key(base: str, operation: str) -> str:
    """The key of a follow-up operation on the object created under `base` (e.g. its refund).

    The contract's 409 makes one key per operation a must: the refund reuses nothing of the charge's
    key but its origin. Deterministic, so a retried refund sends the same key again.
    """
    check_idempotency_key(base)
    check_idempotency_key(operation)
    derived = f"{base}/{operation}"
    if len(derived) <= MAX_KEY_LENGTH:
        return derived
    digest = hashlib.sha256(base.encode()).hexdigest()
    return check_idempotency_key(f"{digest}/{operation}")


def build_headers(
    *, api_key: pydantic.SecretStr | None, idempotency_key: str | None = None, has_body: bool = False
) -> dict[str, str]:
    """The headers of one request; an empty key counts as no key."""
    headers = {"Accept": "application/json"}
    secret = api_key.get_secret_value() if api_key is not None else ""
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = check_idempotency_key(idempotency_key)
    if has_body:
        headers["Content-Type"] = "application/json"
    return headers


class Transport:
    """One partner's base URL, key, timeouts and connection pool; safe to share between threads."""

    def __init__(
        self,
        *,
        partner: str,
        base_url: str,
        api_key: pydantic.SecretStr | None,
        timeout: Timeout,
        pool_size: int = POOL_SIZE,
        ca_bundle: str | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        join_url(base_url, "")  # validates
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        secret = api_key.get_secret_value() if api_key is not None else ""
        if secret and not _HEADER_VALUE.fullmatch(secret):
            # Checked here, because http.client would put the whole header value in its error.
            raise ValueError(f"the {partner} API key has characters an HTTP header cannot carry")
        self.partner = partner
        self.base_url = base_url
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._api_key = api_key
        # A configured bundle is never overridden by REQUESTS_CA_BUNDLE from the environment, and no
        # setting turns verification off.
        ca_certs = (
            ca_bundle
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or certifi.where()
        )
        proxy = _proxy_for(base_url)
        manager: Callable[..., urllib3.PoolManager] = (
            functools.partial(urllib3.ProxyManager, proxy) if proxy else urllib3.PoolManager
        )
        self._pool = manager(
            num_pools=2,
            maxsize=pool_size,
            block=False,
            retries=False,
            cert_reqs=ssl.CERT_REQUIRED,
            ca_certs=ca_certs,
            headers={"User-Agent": USER_AGENT},
        )
        # Our pools' connections read their answers within the call's deadline (`_DeadlineResponse`).
        self._pool.pool_classes_by_scheme = _POOL_CLASSES
        self._connect_seconds = min(timeout.connect, timeout.deadline)
        self._timeouts = urllib3.Timeout(connect=self._connect_seconds, read=timeout.read)

    def __repr__(self) -> str:
        return f"<Transport {self.partner} {self.base_url}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._pool.clear()

    def get(self, path: str) -> Answer:
        return self._request("GET", path, body=None, idempotency_key=None, creates=False)

    def post(self, path: str, body: Mapping[str, object], *, idempotency_key: str, creates: bool) -> Answer:
        """POST `body` as JSON under `idempotency_key`.

        `creates` tells what a 409 means: for a create endpoint the contract's only 409 is an
        idempotency conflict; for an action (refund, cancel, return) it may also be a state conflict,
        told apart by the partner's message mentioning the idempotency key.
        """
        check_idempotency_key(idempotency_key)
        return self._request("POST", path, body=body, idempotency_key=idempotency_key, creates=creates)

    def decode(self, answer: Answer, model: type[M]) -> M:
        """The answer's body as `model`, or a `PartnerProtocolError` naming the fields that broke it."""
        try:
            return model.model_validate_json(answer.body)
        except pydantic.ValidationError as error:
            problems = "; ".join(
                f"{_location(problem['loc'])}: {problem['msg']}"
                for problem in error.errors(include_input=False, include_url=False)[:5]
            )
            raise errors.PartnerProtocolError(
                f"{self.partner} answered {answer.status} to {answer.method} {answer.path} with a body "
                f"the contract does not allow ({problems})",
                partner=self.partner,
                status_code=answer.status,
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, object] | None,
        idempotency_key: str | None,
        creates: bool,
    ) -> Answer:
        posting = method == "POST"
        data = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = build_headers(
            api_key=self._api_key, idempotency_key=idempotency_key, has_body=data is not None
        )
        # Ids in paths come from partners' answers: they are shown only as anything else they say.
        shown = self._redact(path)
        started = time.monotonic()
        _calls.deadline = started + self.timeout.deadline
        try:
            response = self._pool.request(
                method,
                join_url(self.base_url, path),
                body=data,
                headers=headers,
                timeout=self._timeouts,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
            )
            content = self._receive(response, method, shown, posting=posting)
        except (urllib3.exceptions.HTTPError, ValueError) as error:
            failure = self._failure(method, shown, error, posting=posting)
            logger.debug("%s %s %s: %s", self.partner, method, shown, failure.message)
            # The cause (socket and urllib3 details) helps debugging, except for the generic case,
            # whose cause may quote a header.
            raise failure from (None if type(failure) is errors.PartnerError else error)
        finally:
            _calls.deadline = None
        logger.debug(
            "%s %s %s: %s in %.3fs",
            self.partner,
            method,
            shown,
            response.status,
            time.monotonic() - started,
        )
        status = response.status
        if 200 <= status < 300:
            return Answer(method=method, path=shown, status=status, body=content)
        message = self._excerpt(_error_text(content, response.reason))
        if 400 <= status < 500:
            raise self._rejection(method, shown, status, message, creates=creates)
        if 500 <= status < 600:
            raise errors.PartnerUnavailable(
                f"{self.partner} failed {method} {shown}: {status} {message}",
                partner=self.partner,
                kind="server_error",
                outcome_unknown=posting,
                status_code=status,
            )
        raise errors.PartnerProtocolError(
            f"{self.partner} answered {method} {shown} with status {status}, "
            "which the contract does not have",
            partner=self.partner,
            status_code=status,
        )

    def _receive(self, response: urllib3.BaseHTTPResponse, method: str, path: str, *, posting: bool) -> bytes:
        """The body of `response`: plain, at most `max_response_bytes`, read in chunks within the deadline.

        Each read waits only for the time the call has left (`_DeadlineResponse`), so the loop ends by
        the deadline however slowly bytes come, and by the cap however fast.
        """
        cap = self.max_response_bytes
        where = f"{method} {path}"
        try:
            encoding = response.headers.get("Content-Encoding", "").strip()
            if encoding and encoding.lower() != "identity":
                raise self._unacceptable(
                    f"answered {where} with {response.status} in content encoding "
                    f"{self._excerpt(encoding, limit=40)!r}, which was not asked for",
                    response.status,
                    posting=posting,
                )
            length = response.length_remaining if isinstance(response, urllib3.HTTPResponse) else None
            if length is not None and length > cap:
                raise self._unacceptable(
                    f"answered {where} with {response.status} and a body of {length} bytes, "
                    f"over the {cap} accepted",
                    response.status,
                    posting=posting,
                )
            chunks: list[bytes] = []
            received = 0
            while chunk := response.read(min(_CHUNK_BYTES, cap + 1 - received), decode_content=False):
                received += len(chunk)
                if received > cap:
                    raise self._unacceptable(
                        f"answered {where} with {response.status} and a body over the {cap} bytes accepted",
                        response.status,
                        posting=posting,
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        except BaseException:
            # What is left unread would be taken for the next answer on this connection: drop it.
            response.close()
            raise
        finally:
            response.release_conn()

    def _unacceptable(self, what: str, status: int, *, posting: bool) -> errors.UnacceptableAnswer:
        return errors.UnacceptableAnswer(
            f"{self.partner} {what}; not read",
            partner=self.partner,
            status_code=status,
            outcome_unknown=posting,
        )

    def _excerpt(self, text: str, *, limit: int = _MAX_ERROR_CHARS) -> str:
        """What a partner said, fit to be shown: one line, without our key, at most `limit` characters.

        The key goes before the cut: a key cut in two by the limit would no longer match, and most of
        it would be shown. Fragments are looked for after the cut, in the few characters kept.
        """
        text = " ".join(text.split())
        secret = self._secret()
        if secret:
            text = text.replace(secret, _REDACTED)
        cut = len(text) > limit
        text = text[:limit]
        if secret:
            text = _without_fragments(text, secret)
        if cut or len(text) > limit:  # a fragment's marker may be longer than the fragment
            text = text[: limit - 1] + "…"
        return text or "(no message)"

    def _redact(self, text: str) -> str:
        """`text` without our key: a partner that echoes the Authorization header must not leak it."""
        secret = self._secret()
        return _without_fragments(text.replace(secret, _REDACTED), secret) if secret else text

    def _secret(self) -> str:
        return self._api_key.get_secret_value() if self._api_key is not None else ""

    def _rejection(
        self, method: str, path: str, status: int, message: str, *, creates: bool
    ) -> errors.PartnerRejected:
        kind: type[errors.PartnerRejected] = errors.PartnerRejected
        if status == 409:
            idempotency = creates or "idempotency" in message.lower()
            kind = errors.IdempotencyConflict if idempotency else errors.StateConflict
        return kind(
            f"{self.partner} rejected {method} {path}: {status} {message}",
            partner=self.partner,
            status_code=status,
            error=message,
        )

    def _failure(self, method: str, path: str, error: Exception, *, posting: bool) -> errors.PartnerError:
        where = f"{method} {path}"

        def unavailable(
            what: str, kind: errors.UnavailableKind, *, outcome_unknown: bool
        ) -> errors.PartnerUnavailable:
            return errors.PartnerUnavailable(
                f"{self.partner} {what}", partner=self.partner, kind=kind, outcome_unknown=outcome_unknown
            )

        # NewConnectionError is a subclass of ConnectTimeoutError in urllib3: test for it first.
        never_sent = isinstance(error, urllib3.exceptions.NewConnectionError) or (
            isinstance(error, urllib3.exceptions.ProxyError)
            and isinstance(error.original_error, urllib3.exceptions.NewConnectionError)
        )
        if never_sent:
            return unavailable(
                f"is unreachable for {where}: connection refused or host not found",
                "connection",
                outcome_unknown=False,
            )
        if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
            return unavailable(
                f"did not accept a connection for {where} within {self._connect_seconds}s",
                "timeout",
                outcome_unknown=False,
            )
        if isinstance(error, urllib3.exceptions.ReadTimeoutError):
            # The deadline, or a wait for bytes longer than `read` (when that is the shorter).
            deadline, read = self.timeout.deadline, self.timeout.read
            within = f"{deadline}s" if read >= deadline else f"{deadline}s ({read}s between bytes)"
            return unavailable(f"did not answer {where} within {within}", "timeout", outcome_unknown=posting)
        if isinstance(error, urllib3.exceptions.SSLError):
            # A refused certificate proves nothing was sent.
            verification = _find_cause(error, ssl.SSLCertVerificationError)
            if verification is not None:
                reason = verification.verify_message or verification.reason or "certificate verify failed"
                what = f"certificate verify failed ({reason}; see RENTAL_PARTNER_CA_BUNDLE)"
            else:
                what = "the TLS handshake or session failed"
            return unavailable(
                f"TLS error for {where}: {what}", "tls", outcome_unknown=posting and verification is None
            )
        if isinstance(error, urllib3.exceptions.ProtocolError | urllib3.exceptions.ProxyError):
            return unavailable(
                f"is unreachable for {where}: connection failed or was dropped",
                "connection",
                outcome_unknown=posting,
            )
        # An invalid URL or header and the like: configuration, not the partner. The exception's own
        # text is left out on purpose: it may quote header values, and one of them is the key.
        return errors.PartnerError(
            f"cannot send {where} to {self.partner}: {type(error).__name__}", partner=self.partner
        )


def _proxy_for(base_url: str) -> str | None:
    """The proxy the environment names for `base_url` (NO_PROXY respected), as requests decided it."""
    split = urllib.parse.urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(split.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(split.hostname or ""):
        return None
    return proxy


def _find_cause(error: BaseException, kind: type[E]) -> E | None:
    """The first exception of type `kind` among `error`'s arguments, causes and contexts (bounded walk)."""
    pending: list[object] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        pending.extend(
            [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
        )
    return None


def _error_text(content: bytes, reason: str | None) -> str:
    """The partner's `error` message, else the body as text, else the reason; uncut (`_excerpt` cuts)."""
    try:
        payload = json.loads(content)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"].strip():
        return str(payload["error"])
    return content.decode("utf-8", errors="replace") or reason or ""


def _without_fragments(text: str, secret: str) -> str:
    """`text` with every run of `_KEY_FRAGMENT_CHARS` or more characters of `secret` redacted.

    Every window of that width that is part of the key is marked; overlapping and touching windows
    merge into one run, replaced by one marker. Linear in `text` (called on short texts only).
    """
    width = min(_KEY_FRAGMENT_CHARS, len(secret))
    pieces = {secret[index : index + width] for index in range(len(secret) - width + 1)}
    runs: list[tuple[int, int]] = []
    for index in range(len(text) - width + 1):
        if text[index : index + width] in pieces:
            if runs and index <= runs[-1][1]:
                runs[-1] = (runs[-1][0], index + width)
            else:
                runs.append((index, index + width))
    if not runs:
        return text
    parts: list[str] = []
    kept_from = 0
    for begin, end in runs:
        parts += [text[kept_from:begin], _REDACTED]
        kept_from = end
    parts.append(text[kept_from:])
    return "".join(parts)


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, each wait for them bounded by the time left before `deadline` (monotonic).

    http.client reads the status line and headers line by line and a body until it has all it asked
    for; the socket's own timeout bounds each wait, so bytes trickling in just faster than it would
    keep a reader busy forever. Here every wait is given only what is left of the call's time, and
    past the deadline a read fails at once with `TimeoutError`, which urllib3 reports as a read
    timeout.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline
        self._read_timeout = sock.gettimeout()  # urllib3 set the call's read timeout just before

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the call's deadline has passed")
        self._sock.settimeout(remaining if self._read_timeout is None else min(self._read_timeout, remaining))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading through a `_DeadlineReader` when the thread's call has a deadline."""

    def __init__(
        self, sock: socket.socket, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        deadline: float | None = getattr(_calls, "deadline", None)
        if deadline is not None:
            self.fp.close()  # http.client's reader of the same socket; nothing was read through it
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


# A proxy's pool is of the proxy's scheme, so proxied calls (and https tunnels) are covered too.
_POOL_CLASSES: dict[str, type[urllib3.HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"
