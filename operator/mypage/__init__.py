"""MyPage: the read side (CQRS) where customers see their rentals, deliveries and history.

A projection kept in memory from watch events answers every request, so serving never touches the
Kubernetes API (CONTRACT §4). It runs inside the operator (fed by the Kopf event handlers) and as its
own stateless process (`rental-operator mypage`, fed by its own informer), both serving the same
aiohttp application. One module per concern:

- `projection` — compact per-rental records indexed by customer; the only state.
- `informer` — list-then-watch of Rentals and Purifiers outside Kopf, feeding a projection.
- `auth` — who the caller is: signed customer tokens, a trusted proxy header, or nothing (demos).
- `pages` — the HTML page, every user-supplied string escaped.
- `server` — the aiohttp routes (JSON API, page, probes) and starting/stopping the server.
- `metrics` — `rental_mypage_requests_total`, `rental_mypage_request_duration_seconds` and
  `rental_mypage_skipped_objects_total`.
- `embedded` — MyPage inside the operator: fed by Kopf's events, served from Kopf's loop.
- `standalone` — the `rental-operator mypage` process: informer plus server, nothing else.

Import the modules and use them qualified; nothing is re-exported here.
"""
