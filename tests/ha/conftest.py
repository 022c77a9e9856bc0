"""High-availability tests run on the session's control plane; fixtures live with the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Let fixtures see whether the test failed, to print the replicas' logs only then.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
