"""`rental-operator mypage` as a child process on loopback, with its own metrics endpoint.

Tests that scrape MyPage with a real Prometheus, or drive autoscaling with its request rate, need MyPage
running as it does in its own pod: its own list-and-watch, its HTTP port and its metrics port, both on
127.0.0.1. Called by `tests/autoscaling/` and `tests/e2e/test_metrics.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from rental_devenv import processes, testkit

__all__ = ["TOKEN_SECRET", "MyPageProcess"]

# The key MyPage signs customers' links with in these tests (tests mint tokens with it).
TOKEN_SECRET = "mypage-metrics-test-key-0123456789abcdef"


class MyPageProcess(processes.ChildProcess):
    """MyPage alone, serving `namespace`, with signed-link auth under a test key."""

    def __init__(self, kubeconfig: Path, *, namespace: str, log_path: Path) -> None:
        super().__init__(log_path)
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.port = processes.free_port()
        self.metrics_port = processes.free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, *, token: str | None = None) -> int:
        """GET `path` as a client would (with a customer's bearer token, if given); the status code
        (0 when nothing answered)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(self.url + path, headers=headers), timeout=5
            ) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def start(self, *, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "PYTHONSAFEPATH": "1",
            "RENTAL_NAMESPACES": self.namespace,
            "RENTAL_MYPAGE_HOST": "127.0.0.1",
            "RENTAL_MYPAGE_PORT": str(self.port),
            "RENTAL_MYPAGE_TOKEN_SECRET": TOKEN_SECRET,
        }
        env.pop("KUBECONFIG", None)
        command = [
            str(Path(sys.executable).parent / "rental-operator"),
            "mypage",
            f"--kubeconfig={self.kubeconfig}",
            f"--metrics-port={self.metrics_port}",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"mypage exited with {self.process.returncode}:\n{self.log_tail()}")
            return self.get("/readyz") == 200

        testkit.wait_for(ready, timeout=timeout, what="MyPage's /readyz")
