"""Run the gateway as a real process from a test: `with testing.GatewayProcess(...) as gateway: ...`.

The gateway's own process tests and the operator's end-to-end tests need the same thing: start
`python -m rental_gateway --port 0` on 127.0.0.1, learn the URL from the first stdout line, steer it
through `/admin/`, and stop it with SIGTERM as an orchestrator would. This module is that harness,
shipped with the package (like `kopf.testing`) so every suite starts the gateway the same way.
Standard library only, like the gateway.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

__all__ = ["GatewayProcess", "GatewayStartError"]

_PACKAGE = __name__.rpartition(".")[0]


class GatewayStartError(RuntimeError):
    """The gateway did not print its URL in time; the message carries its log."""


class GatewayProcess:
    """One gateway process. `flags` are extra CLI flags, e.g. `("--error-rate", "0.5")`.

    Its stderr (one line per request) goes to `log_path`, by default a fresh temporary directory that
    is left behind for inspection; `api_key` is passed as GATEWAY_API_KEY and sent by `admin()`;
    `ca_bundle` is what `admin()` trusts when the flags include `--tls-cert`.
    """

    def __init__(
        self,
        *flags: str,
        db: str | os.PathLike[str] = ":memory:",
        api_key: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        startup_timeout: float = 20.0,
        ca_bundle: str | os.PathLike[str] | None = None,
    ) -> None:
        self.flags: Sequence[str] = flags
        self.db = str(db)
        self.api_key = api_key
        self.log_path = (
            Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="rental-gateway-")) / "gateway.log"
        )
        self._env = dict(env or {})
        self._python = python
        self._startup_timeout = startup_timeout
        # With `--tls-cert`, `admin()` verifies the gateway's certificate against this CA bundle.
        self._tls = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle is not None else None
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: types.TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start the process and return its URL once it listens."""
        command = [
            self._python,
            "-m",
            _PACKAGE,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            self.db,
            *self.flags,
        ]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, env=self._environment()
            )
        first_line = self._first_line()
        prefix = "listening on "
        if not first_line.startswith(prefix):
            self.kill()
            raise GatewayStartError(
                f"gateway did not start (exit status {self.process.returncode}, first line {first_line!r});"
                f" log:\n{self.log_text()}"
            )
        self.url = first_line.removeprefix(prefix)
        return self.url

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit status (None if it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    # The admin API (README.md in the package lists it).

    def admin(self, method: str, path: str, body: object = None, **query: str) -> Any:
        """Call `/admin/...` (or `/healthz`) and return the decoded JSON answer; raises on 4xx/5xx."""
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=10, context=self._tls) as answer:
            return json.loads(answer.read())

    def set_faults(self, **changes: object) -> dict[str, Any]:
        """E.g. `set_faults(errorRate=1.0)`; fields not named keep their values."""
        settings: dict[str, Any] = self.admin("PUT", "/admin/faults", changes)
        return settings

    def set_declines(self, *customer_ids: str) -> list[str]:
        """Decline these customers' payments from now on (`insufficient_funds`); none: decline nobody."""
        answer: dict[str, list[str]] = self.admin(
            "PUT", "/admin/declines", {"customerIds": list(customer_ids)}
        )
        return answer["customerIds"]

    def ledger(self, **filters: str) -> dict[str, list[dict[str, Any]]]:
        listing: dict[str, list[dict[str, Any]]] = self.admin("GET", "/admin/ledger", **filters)
        return listing

    def stats(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.admin("GET", "/admin/stats")
        return snapshot

    def deliver(self, shipment_id: str) -> dict[str, Any]:
        shipment: dict[str, Any] = self.admin("POST", f"/admin/shipments/{shipment_id}/deliver")
        return shipment

    def reset(self) -> None:
        self.admin("POST", "/admin/reset")

    def _environment(self) -> dict[str, str]:
        environment = {key: value for key, value in os.environ.items() if key != "GATEWAY_API_KEY"}
        if self.api_key:
            environment["GATEWAY_API_KEY"] = self.api_key
        # Imported from a folder that carries the package's own name (an installed copy, or a symlink
        # to gateway/): the child finds the package the same way. Otherwise it must be installed.
        here = Path(__file__).parent
        if here.name == _PACKAGE:
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(here.parent), os.environ.get("PYTHONPATH")])
            )
        environment.update(self._env)
        return environment

    def _first_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            return lines.get(timeout=self._startup_timeout).strip()
        except queue.Empty:
            return f"nothing on stdout after {self._startup_timeout}s"
