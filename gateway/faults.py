"""Fault injection: the failures the operator's circuit breaker and "pay later" path must survive.

A failure the operator must treat as a fault (CONTRACT §2: a 5xx, a timeout, a refused or dropped
connection) is produced here on demand, always *before* the request has any effect:

- `errorRate`: the fraction of requests answered 503;
- `latencyMs` (+ `spikeMs` with probability `spikeProbability`): added delay, enough to trip a client's
  timeout (the request still takes effect afterwards, as with a real slow provider; the
  Idempotency-Key makes the client's retry safe);
- `outage`: `off`, `unavailable` (every request 503) or `drop` (the connection is closed unanswered);
- `partners`: which partners all of the above applies to (default all three), so payments can fail
  while shipping and SMS keep working.

Settings come from the CLI flags and are replaced at runtime with `PUT /admin/faults` (`admin`);
`app.Gateway` asks `FaultInjector.decide` once per partner request. `/admin/...` and `/healthz` are
never faulted.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import threading
from collections.abc import Mapping

__all__ = ["PARTNERS", "Action", "Decision", "FaultInjector", "FaultSettings", "Outage", "parse_outage"]

PARTNERS = ("payments", "shipping", "sms")


class Outage(enum.StrEnum):
    OFF = "off"
    UNAVAILABLE = "unavailable"
    DROP = "drop"


class Action(enum.Enum):
    PASS = "pass"
    FAIL = "fail"  # answer 503
    DROP = "drop"  # close the connection unanswered


@dataclasses.dataclass(frozen=True)
class Decision:
    action: Action
    delay_seconds: float = 0.0
    # Which faults this decision injects (`drop`, `outage`, `error`, `latency`, `spike`), counted in
    # /admin/stats so a chaos run can report what it survived. Not part of equality: two decisions
    # with the same effect are the same decision.
    injected: tuple[str, ...] = dataclasses.field(default=(), compare=False)


@dataclasses.dataclass(frozen=True)
class FaultSettings:
    error_rate: float = 0.0
    latency_ms: int = 0
    spike_probability: float = 0.0
    spike_ms: int = 0
    outage: Outage = Outage.OFF
    partners: frozenset[str] = frozenset(PARTNERS)

    def __post_init__(self) -> None:
        for name, value in (("errorRate", self.error_rate), ("spikeProbability", self.spike_probability)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number between 0 and 1")
        for name, amount in (("latencyMs", self.latency_ms), ("spikeMs", self.spike_ms)):
            if amount < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        unknown = sorted(self.partners - set(PARTNERS))
        if unknown:
            raise ValueError(f"partners: unknown partner {unknown[0]!r}; known: {', '.join(PARTNERS)}")

    def to_json(self) -> dict[str, object]:
        return {
            "errorRate": self.error_rate,
            "latencyMs": self.latency_ms,
            "spikeProbability": self.spike_probability,
            "spikeMs": self.spike_ms,
            "outage": str(self.outage),
            "partners": [partner for partner in PARTNERS if partner in self.partners],
        }

    def updated(self, changes: Mapping[str, object]) -> FaultSettings:
        """These settings with the given JSON fields replaced; a ValueError names a bad field."""
        unknown = sorted(set(changes) - set(self.to_json()))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known: {', '.join(self.to_json())}")
        return FaultSettings(
            error_rate=_fraction("errorRate", changes["errorRate"])
            if "errorRate" in changes
            else self.error_rate,
            latency_ms=_milliseconds("latencyMs", changes["latencyMs"])
            if "latencyMs" in changes
            else self.latency_ms,
            spike_probability=(
                _fraction("spikeProbability", changes["spikeProbability"])
                if "spikeProbability" in changes
                else self.spike_probability
            ),
            spike_ms=_milliseconds("spikeMs", changes["spikeMs"]) if "spikeMs" in changes else self.spike_ms,
            outage=parse_outage(changes["outage"]) if "outage" in changes else self.outage,
            partners=_partners(changes["partners"]) if "partners" in changes else self.partners,
        )


def parse_outage(value: object) -> Outage:
    """`off` / `unavailable` / `drop`; `true` and `false` are accepted as on (503) and off."""
    if value is True:
        return Outage.UNAVAILABLE
    if value is False or value is None:
        return Outage.OFF
    if isinstance(value, str) and value in set(Outage):
        return Outage(value)
    raise ValueError(f"outage must be one of {', '.join(Outage)} (or true/false)")


def _fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1")
    return float(value)


def _milliseconds(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _partners(value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"partners must be a list drawn from {', '.join(PARTNERS)}")
    chosen = frozenset(str(item) for item in value)
    unknown = sorted(chosen - set(PARTNERS))
    if unknown:
        raise ValueError(f"partners: unknown partner {unknown[0]!r}; known: {', '.join(PARTNERS)}")
    return chosen


class FaultInjector:
    """The current settings and the dice; safe to use from every request thread."""

    def __init__(self, settings: FaultSettings | None = None, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = settings or FaultSettings()
        self._random = random.Random(seed)

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def replace(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings

    def decide(self, partner: str) -> Decision:
        with self._lock:
            settings = self._settings
            if partner not in settings.partners:
                return Decision(Action.PASS)
            if settings.outage is Outage.DROP:
                return Decision(Action.DROP, injected=("drop",))
            if settings.outage is Outage.UNAVAILABLE:
                return Decision(Action.FAIL, injected=("outage",))
            injected: list[str] = ["latency"] if settings.latency_ms else []
            delay_ms = settings.latency_ms
            if settings.spike_probability and self._random.random() < settings.spike_probability:
                delay_ms += settings.spike_ms
                injected.append("spike")
            failing = bool(settings.error_rate) and self._random.random() < settings.error_rate
            if failing:
                injected.append("error")
        return Decision(Action.FAIL if failing else Action.PASS, delay_ms / 1000, tuple(injected))
