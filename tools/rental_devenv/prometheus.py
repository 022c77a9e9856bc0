"""A real Prometheus (Debian's package) scraping our processes on loopback, for tests and benchmarks.

Checks of the metrics must go through what users run: Prometheus scraping `/metrics` over HTTP and
PromQL over the result, not a parse of the text format in the test. Started with a scrape interval
of one second and a throwaway TSDB; every query is an instant query against its HTTP API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import processes

__all__ = ["PrometheusProcess", "binary"]


def binary() -> str | None:
    return shutil.which("prometheus")


class PrometheusProcess:
    def __init__(
        self,
        targets: dict[str, list[str]],
        *,
        directory: Path | None = None,
        labels: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """`targets`: job name -> list of `127.0.0.1:port` addresses to scrape.

        `labels`: job name -> target labels to attach to its series, standing in for what service
        discovery attaches in a cluster (a ServiceMonitor scrape adds `namespace`, `service`, `pod`),
        which prometheus-adapter's rules rely on to tie a series to a Kubernetes object.
        """
        self.targets = targets
        self.labels = labels or {}
        self.directory = directory or Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        executable = binary()
        if executable is None:
            raise RuntimeError("prometheus is not installed (scripts/setup installs Debian's package)")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": addresses, "labels": self.labels.get(job, {})}],
                }
                for job, addresses in self.targets.items()
            ],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = processes.free_port()
        with (self.directory / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    f"--config.file={self.directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited: {(self.directory / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (each with `metric` labels and `value`)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        if answer.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {answer}")
        return list(answer["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The single value of a query (None when the vector is empty)."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None
