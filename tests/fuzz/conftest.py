"""The fuzz tests' report: the counts of the last admission fuzz run, shown with pytest's summary.

`test_admission.py` writes `artifacts/fuzz-summary.json`; printing it here (rather than from the test)
shows the figures in CI logs without `-s`, and only when the fuzz test ran in this session.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

SUMMARY = Path(__file__).resolve().parents[2] / "artifacts" / "fuzz-summary.json"
_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SUMMARY.exists() or SUMMARY.stat().st_mtime < _STARTED:
        return
    summary = json.loads(SUMMARY.read_text())
    figures = {key: value for key, value in summary.items() if key not in ("problems", "sample_rejections")}
    terminalreporter.write_sep("-", "admission fuzz")
    terminalreporter.write_line(json.dumps(figures, ensure_ascii=False))
    terminalreporter.write_line(f"problems: {len(summary['problems'])}; full summary: {SUMMARY}")
