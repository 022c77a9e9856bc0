"""A scriptable partner: a real HTTP server on 127.0.0.1 (stdlib `http.server`) started per test.

Not a mock of requests: the clients open real sockets, time out on real slow answers, and see real
refused and dropped connections. A test queues the answers it wants (`partner.script(...)`), falls
back to `partner.default`, and reads what arrived in `partner.received`. Test modules cannot import
this conftest, so what they need comes through fixtures: `partner.Reply` is the answer type, and
`make_settings(url, **RENTAL_variables)` builds `config.Settings` the way the operator does.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from rental_operator import config


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = dataclasses.field(default_factory=dict)  # dict/list -> JSON, str/bytes as given
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    drip: float = 0.0  # send the body a byte at a time, this many seconds apart (a partner trickling)
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclasses.dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Script = Reply | Callable[[Received], Reply]


class FakePartner:
    Reply = Reply

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.default: Script = Reply()
        self._queue: list[Script] = []
        self._lock = threading.Lock()
        partner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = partner._next(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.drip:
                        for byte in payload:  # bounded by the payload; a client that hung up ends it
                            self.wfile.write(bytes((byte,)))
                            time.sleep(reply.drip)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64  # the default 5 would make concurrent connects wait for SYN retries

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def script(self, *replies: Script) -> None:
        with self._lock:
            self._queue.extend(replies)

    def _next(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            script = self._queue.pop(0) if self._queue else self.default
        return script(request) if callable(script) else script

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    server = FakePartner()
    yield server
    server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A URL nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


MakeSettings = Callable[..., config.Settings]


@pytest.fixture
def make_settings() -> MakeSettings:
    def make(url: str, **variables: str) -> config.Settings:
        """Every partner at `url`; `variables` are more RENTAL_* values, named without the prefix."""
        environ = {"RENTAL_PAYMENT_URL": url, "RENTAL_SHIPPING_URL": url}
        environ.update({f"RENTAL_{name.upper()}": value for name, value in variables.items()})
        return config.load(environ)

    return make
