"""The socket side: `http.server` threads reading requests and writing what `app.Gateway` answers.

Standard library only, on purpose: the gateway must start anywhere the project's Python runs,
including inside the operator's test image. One thread per connection (`ThreadingHTTPServer`),
HTTP/1.1 keep-alive so a client's connection pool behaves as it would against a real provider, and
one log line per request on stderr (through the `rental_gateway` logger that `cli` configures).
Started and stopped by `cli`.
"""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import sys
import time
import urllib.parse
from typing import Any, cast

from . import __version__, app, wire

__all__ = ["MAX_BODY_BYTES", "GatewayServer"]

MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger("rental_gateway")


class GatewayServer(http.server.ThreadingHTTPServer):
    """Binds at construction, so `url` is known (with the real port when asked for port 0)."""

    daemon_threads = True
    # The default listen backlog of 5 stalls the extra connections of a busy client (an operator
    # with a pool of 20) for a second each.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], gateway: app.Gateway, *, tls: ssl.SSLContext | None = None
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.gateway = gateway
        self.tls = tls
        super().__init__(address, _RequestHandler)

    @property
    def url(self) -> str:
        host, port = cast(tuple[str, int], self.server_address[:2])
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def get_request(self) -> tuple[socket.socket, object]:
        connection, client = super().get_request()
        if self.tls is None:
            return connection, client
        # The handshake runs on the connection's first read, in its own thread: a slow or failing
        # client never stalls the accept loop.
        return self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), client

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionResetError):
            # A client that does not trust our certificate hangs up mid-handshake: one line, no trace.
            logger.warning("%s TLS handshake failed: %s", client_address[0], error)
            return
        super().handle_error(request, client_address)


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"rental-gateway/{__version__}"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds

    # http.server dispatches on these names.
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        started = time.monotonic()
        gateway = cast(GatewayServer, self.server).gateway
        result: wire.Response | wire.Drop
        try:
            body = self._read_body()
        except wire.HttpError as error:
            # The unread body is still on the socket: this connection cannot carry another request.
            self.close_connection = True
            result = error.to_response()
        else:
            split = urllib.parse.urlsplit(self.path)
            request = wire.Request(
                method=self.command,
                path=split.path,
                query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                client=str(self.client_address[0]),
            )
            try:
                result = gateway.handle(request)
            except Exception:
                logger.exception("unhandled error in %s %s", self.command, self.path)
                result = wire.HttpError(500, "internal error in the reference gateway").to_response()
        if isinstance(result, wire.Drop):
            self.close_connection = True
            outcome = "dropped"
        else:
            self._send(result)
            outcome = str(result.status)
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(
            '%s "%s %s" %s %.1fms', self.client_address[0], self.command, self.path, outcome, elapsed_ms
        )

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise wire.HttpError(411, "send the body with a Content-Length, not chunked")
        raw_length = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            raise wire.HttpError(400, f"Content-Length is not a number: {raw_length!r}") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise wire.HttpError(413, f"request body must be between 0 and {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _send(self, response: wire.Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (typically its timeout ran out during injected latency).
            self.close_connection = True
            logger.info(
                "%s went away before the answer to %s %s", self.client_address[0], self.command, self.path
            )

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (malformed request line, unknown method) in the contract's JSON."""
        self.close_connection = True
        phrase = self.responses.get(code, ("error", ""))[0]
        logger.warning('%s "%s" %s %s', self.client_address[0], self.requestline, code, message or phrase)
        self._send(wire.HttpError(code, message or phrase).to_response())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: `_dispatch` logs one line per request with the outcome and duration."""

    def log_message(self, format: str, *args: object) -> None:
        logger.warning("%s %s", self.client_address[0], format % args)
