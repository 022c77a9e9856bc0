"""A readiness-gated HTTP load balancer on loopback: a Kubernetes Service's endpoints, for tests.

No kubelet runs on the local control plane, so no Service routes to pods. This stands in for one
when a test rolls real processes: each new request goes to one of the registered backends whose
last readiness probe (`GET /readyz`, every `probe_interval` seconds) answered 200, round robin. A
backend is taken out of rotation with `remove()` before its process is stopped, as the endpoints
controller drops a terminating pod before the kubelet's SIGTERM reaches it; `drain()` waits for the
requests already forwarded to it. Nothing is retried: a backend that fails a forwarded request
yields `502` to the client, and no Ready backend at all yields `503`, so a test sees every failure.

Standard library only: a `ThreadingHTTPServer` (HTTP/1.1, keep-alive) forwarding `GET` requests
(what MyPage serves) with `http.client` over a pool of kept-alive connections per backend. Every
forwarded response carries `X-Served-By: <backend name>`.

    with ReadinessBalancer() as balancer:
        balancer.add("a", port_a)
        balancer.wait_ready("a", timeout=30)
        ...  # clients use balancer.url
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import itertools
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Self

__all__ = ["Backend", "ReadinessBalancer"]

# Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), plus the ones we set.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Set by the balancer's own server on every response.
_RESPONSE_OWN = frozenset({"server", "date"})


@dataclass
class Backend:
    """One registered backend and what the balancer knows about it."""

    name: str
    host: str
    port: int
    added_at: float  # time.monotonic() when registered
    in_rotation: bool = True
    ready: bool = False
    ready_at: float | None = None  # time.monotonic() of the first probe that answered 200
    probes: int = 0
    forwarded: int = 0
    failed: int = 0
    in_flight: int = 0
    idle: list[http.client.HTTPConnection] = field(default_factory=list, repr=False)

    @property
    def seconds_to_ready(self) -> float | None:
        """From registration to the first successful probe (None while never ready)."""
        return None if self.ready_at is None else self.ready_at - self.added_at


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    balancer: ReadinessBalancer


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm the body waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.balancer._forward(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ReadinessBalancer:
    """Round robin over the backends that are in rotation and passed their last readiness probe."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        probe_path: str = "/readyz",
        probe_interval: float = 0.2,
        probe_timeout: float = 1.0,
        upstream_timeout: float = 10.0,
    ) -> None:
        self.probe_path = probe_path
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._backends: dict[str, Backend] = {}
        self._turn = itertools.count()
        self._stopping = threading.Event()
        self.unrouted = 0  # requests answered 503 because no backend was Ready
        self._server = _Server((host, 0), _Handler)
        self._server.balancer = self
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        for target in (self._server.serve_forever, self._probe_loop):
            thread = threading.Thread(target=target, daemon=True, name=f"balancer-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            for backend in self._backends.values():
                self._close_idle(backend)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: types.TracebackType | None
    ) -> None:
        self.stop()

    # -- endpoints --------------------------------------------------------------------------------
    def add(self, name: str, port: int, host: str = "127.0.0.1") -> Backend:
        """Register a backend; it receives requests once a probe finds it Ready."""
        with self._lock:
            if name in self._backends:
                raise ValueError(f"backend {name!r} is already registered")
            backend = Backend(name=name, host=host, port=port, added_at=time.monotonic())
            self._backends[name] = backend
            return backend

    def remove(self, name: str) -> None:
        """Take a backend out of rotation: no new request goes to it; forwarded ones finish."""
        with self._lock:
            self._backends[name].in_rotation = False

    def drain(self, name: str, *, timeout: float) -> bool:
        """Wait until a removed backend has no request in flight; close its idle connections."""
        deadline = time.monotonic() + timeout
        with self._changed:
            backend = self._backends[name]
            if backend.in_rotation:
                raise ValueError(f"backend {name!r} is still in rotation; remove() it first")
            while backend.in_flight and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            self._close_idle(backend)
            return backend.in_flight == 0

    def backend(self, name: str) -> Backend:
        with self._lock:
            return self._backends[name]

    def routable(self) -> list[str]:
        """Names of the backends new requests may go to now."""
        with self._lock:
            return [b.name for b in self._backends.values() if b.in_rotation and b.ready]

    def wait_ready(self, name: str, *, timeout: float) -> float:
        """Block until a probe found `name` Ready; its seconds from registration to Ready."""
        deadline = time.monotonic() + timeout
        with self._changed:
            backend = self._backends[name]
            while backend.ready_at is None and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            if backend.ready_at is None:
                raise TimeoutError(
                    f"backend {name!r} not Ready after {timeout:.0f}s ({backend.probes} probes)"
                )
            return backend.ready_at - backend.added_at

    # -- probing ----------------------------------------------------------------------------------
    def _probe_loop(self) -> None:
        while not self._stopping.wait(self.probe_interval):
            with self._lock:
                targets = [b for b in self._backends.values() if b.in_rotation]
            for backend in targets:
                ready = self._probe(backend)
                with self._changed:
                    backend.probes += 1
                    backend.ready = ready
                    if ready and backend.ready_at is None:
                        backend.ready_at = time.monotonic()
                    self._changed.notify_all()

    def _probe(self, backend: Backend) -> bool:
        connection = http.client.HTTPConnection(backend.host, backend.port, timeout=self.probe_timeout)
        try:
            connection.request("GET", self.probe_path)
            response = connection.getresponse()
            response.read()
            return response.status == http.HTTPStatus.OK
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    # -- forwarding -------------------------------------------------------------------------------
    def _pick(self) -> tuple[Backend, http.client.HTTPConnection] | None:
        with self._lock:
            candidates = [b for b in self._backends.values() if b.in_rotation and b.ready]
            if not candidates:
                self.unrouted += 1
                return None
            backend = candidates[next(self._turn) % len(candidates)]
            backend.in_flight += 1
            if backend.idle:
                return backend, backend.idle.pop()
        return backend, http.client.HTTPConnection(backend.host, backend.port, timeout=self.upstream_timeout)

    def _forward(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        picked = self._pick()
        if picked is None:
            self._reply(handler, 503, [("Retry-After", "1")], b"no ready backend\n", served_by="")
            return
        backend, connection = picked
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        keep = failed = False
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            keep = not response.will_close
            status = response.status
            answer = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in _HOP_BY_HOP and k.lower() not in _RESPONSE_OWN
            ]
        except (OSError, http.client.HTTPException) as error:
            failed = True
            status, answer, payload = 502, [], f"backend {backend.name}: {error!r}\n".encode()
        with self._changed:
            backend.in_flight -= 1
            backend.forwarded += 1
            backend.failed += failed
            if keep and backend.in_rotation:
                backend.idle.append(connection)
            else:
                connection.close()
            self._changed.notify_all()
        self._reply(handler, status, answer, payload, served_by=backend.name)

    @staticmethod
    def _reply(
        handler: _Handler, status: int, headers: list[tuple[str, str]], payload: bytes, *, served_by: str
    ) -> None:
        with contextlib.suppress(OSError):  # the client went away: nothing to tell it
            handler.send_response(status)
            for key, value in headers:
                handler.send_header(key, value)
            if served_by:
                handler.send_header("X-Served-By", served_by)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()

    @staticmethod
    def _close_idle(backend: Backend) -> None:
        while backend.idle:
            backend.idle.pop().close()
