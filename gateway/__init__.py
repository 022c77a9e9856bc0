"""The reference partner gateway: payments, shipping and SMS of CONTRACT §2 behind one base URL.

The operator talks to three partner systems over HTTP. Real deployments point its URLs at real
providers; the demo and the end-to-end tests point all three at this gateway instead, run as a real
process (`python -m rental_gateway --port 0`). It is a strict implementation of the contract, so an
operator that works here works against any other implementation, plus what a test needs to provoke
failures and check effects: fault injection, a readable ledger and request counters under `/admin/`.

Reading order, one module per concern:

- `cli` parses flags and runs `server` until SIGTERM;
- `server` adapts `http.server` to `app.Gateway`, which routes a request through faults, auth and
  idempotency to the handlers in `partners` (the contract) and `admin` (tests and demos);
- `validation` checks request bodies, `declines` decides which payments are declined, `lifecycle`
  holds the allowed status transitions, `idempotency` the Idempotency-Key policy;
- `ledger` is the SQLite storage of `models`; `faults` and `stats` are the runtime knobs and counters;
- `wire` holds the request and response values everything above passes around;
- `testing.GatewayProcess` starts the gateway as a process for test suites (this one's and the
  operator's end-to-end tests).

README.md next to this file documents the flags, the admin API and the contract's open choices.

The folder is `gateway/`, installed as the package `rental_gateway`; modules import each other
relatively so both names work.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
