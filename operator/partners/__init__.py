"""The operator's clients of the three partner systems of CONTRACT §2: payments, shipping and SMS.

Called by the controllers (`controllers.payments`, `controllers.deliveries`, `controllers.notifier`),
which run on the scheduler's worker threads (`runtime.scheduler`), never in Kopf's handlers: those
are async and only queue work. The clients are built once at start-up from `config.Settings`
(`controllers.context`) and shared by every worker, so each is thread-safe, and a call blocks its
worker for at most its timeout (a deadline for the whole call). One module per concern:

- `errors`: the exception hierarchy every client raises (drawn in its docstring);
- `transport`: URLs, headers, Idempotency-Key, the deadline, the size cap and turning HTTP answers into
  values or errors;
- `breakers`: the circuit breaker (pybreaker's state machine, without its call-wide lock);
- `payments`: `PaymentClient` (charge, refund, get) behind the breaker;
- `shipping`: `ShippingClient` (create, get, cancel, return);
- `sms`: the `SmsSender` protocol, its HTTP and logging implementations, and SMS text helpers.

Import the modules and use them qualified (`payments.PaymentClient(settings)`,
`errors.BreakerOpen`); nothing is re-exported here.
"""

__all__: list[str] = []
