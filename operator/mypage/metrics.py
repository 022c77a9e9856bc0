"""MyPage's Prometheus metrics (CONTRACT §5): requests by status code, and how long they take.

Module-level collectors in the default registry, so they appear on the operator's metrics endpoint
when MyPage runs inside it, and on the `mypage` command's own metrics port when it runs alone.
Updated by the request middleware in `mypage.server`; nothing else writes them.
"""

from __future__ import annotations

from typing import Final

import prometheus_client

__all__ = ["REQUESTS", "REQUEST_DURATION"]

REQUESTS: Final = prometheus_client.Counter(
    "rental_mypage_requests",
    "MyPage HTTP requests answered, by status code.",
    ["code"],
)

# Requests are answered from memory, so the interesting range is well below a second.
REQUEST_DURATION: Final = prometheus_client.Histogram(
    "rental_mypage_request_duration_seconds",
    "Time MyPage took to answer a request, from receiving it to the response being ready.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
