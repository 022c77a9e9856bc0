"""What every helper server a test starts as a child process has in common: a free loopback port, a
log file, a polite stop (SIGTERM, then SIGKILL after a grace period) and the end of its log to show
when a test fails.

Used by `rental_devenv.mypage` and `rental_devenv.autoscaling`.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

__all__ = ["ChildProcess", "free_port"]


def free_port() -> int:
    """A port nothing listens on right now, on 127.0.0.1 (servers in tests bind loopback only)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChildProcess:
    """A server started by a subclass's `start()` into `self.process`, logging to `log_path`."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
