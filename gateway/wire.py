"""The request and response values passed between the HTTP server and the gateway's handlers.

`server` turns what `http.server` reads off a socket into a `Request` and writes back whatever
`app.Gateway.handle` returns: a `Response`, or `Drop` to close the connection unanswered (a simulated
outage). Keeping the handlers on these plain values, not on `BaseHTTPRequestHandler`, is what lets the
unit tests drive the whole gateway without a socket. Every error a client sees is an `HttpError`
turned into the contract's `{"error": "<message>"}` body.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

__all__ = [
    "Call",
    "Drop",
    "HttpError",
    "JsonObject",
    "Request",
    "Response",
    "canonical_json",
    "parse_json_object",
]

JsonObject = dict[str, object]


@dataclasses.dataclass(frozen=True)
class Request:
    """One HTTP request as read by the server. Header names are lower-cased."""

    method: str
    path: str
    query: Mapping[str, list[str]] = dataclasses.field(default_factory=dict)
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""
    client: str = "-"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclasses.dataclass(frozen=True)
class Response:
    """One HTTP response; `body` is the exact bytes sent, so a replay can send them again."""

    status: int
    body: bytes
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status=status, body=body, headers=dict(headers or {}))


@dataclasses.dataclass(frozen=True)
class Drop:
    """Close the connection without answering: the client sees a dropped connection."""


@dataclasses.dataclass(frozen=True)
class Call:
    """What a route handler gets: the request, the path parameters and the parsed JSON body."""

    request: Request
    params: Mapping[str, str]
    body: JsonObject


class HttpError(Exception):
    """An answer other than success, raised anywhere below `app.Gateway.handle` and sent as JSON."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        return Response.json(self.status, {"error": self.message}, self.headers)


def canonical_json(payload: object) -> str:
    """One spelling per JSON value (sorted keys, no spaces): what "the same body" is compared in."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(body: bytes) -> JsonObject:
    """The body as a JSON object; an empty body reads as `{}` (the contract's action bodies)."""
    if not body.strip():
        return {}
    try:
        parsed: object = json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise HttpError(400, "request body is not valid JSON") from error
    if not isinstance(parsed, dict):
        raise HttpError(400, "request body must be a JSON object")
    return {str(key): value for key, value in parsed.items()}
