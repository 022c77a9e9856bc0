"""The operator's clients of the three partner systems of CONTRACT §2: payments, shipping and SMS.

Called from the Kopf handlers (sync handlers, in Kopf's worker threads); the clients are built once at
start-up from `config.Settings` and shared by every handler thread. One module per concern:

- `errors`: the exception hierarchy every client raises (drawn in its docstring);
- `transport`: URLs, headers, Idempotency-Key, timeouts and turning HTTP answers into values or errors;
- `breakers`: the circuit breaker (pybreaker's state machine, without its call-wide lock);
- `payments`: `PaymentClient` (charge, refund, get) behind the breaker;
- `shipping`: `ShippingClient` (create, get, cancel, return);
- `sms`: the `SmsSender` protocol, its HTTP and logging implementations, and SMS text helpers.

Import the modules and use them qualified (`payments.PaymentClient(settings)`,
`errors.BreakerOpen`); nothing is re-exported here.
"""

__all__: list[str] = []
