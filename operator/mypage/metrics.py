"""MyPage's Prometheus metrics (CONTRACT §5): requests by status code, how long they take, and the
objects the projection could not take.

Module-level collectors in the default registry, so they appear on the operator's metrics endpoint
when MyPage runs inside it, and on the `mypage` command's own metrics port when it runs alone.
The request metrics are updated by the middleware in `mypage.server`, the skipped objects by
`mypage.projection`; nothing else writes them.
"""

from __future__ import annotations

from typing import Final

import prometheus_client

__all__ = ["REQUESTS", "REQUEST_DURATION", "SKIPPED_OBJECTS"]

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

# One malformed object must not stop MyPage for everyone (issue 13): the projection skips it, logs
# which object and field, and counts it here, so an alert can say that someone is not being served.
# `reason` is `out_of_range` (a number MyPage cannot keep, such as a history seq past 2**32) or
# `malformed` (anything else the projection could not read); a small, fixed set of values.
SKIPPED_OBJECTS: Final = prometheus_client.Counter(
    "rental_mypage_skipped_objects",
    "Objects MyPage's projection skipped because it could not read them, by kind and reason.",
    ["kind", "reason"],
)
