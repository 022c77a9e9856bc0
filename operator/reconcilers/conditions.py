"""The one condition helper every reconciler uses.

cert-manager's rule, copied: `lastTransitionTime` moves only when a condition's status flips,
`observedGeneration` is always the generation the decision was made for, and callers can tell whether
anything changed, so an unchanged status is never written back. Conditions are kept sorted by type so
two equal sets compare equal regardless of the order they were set in.
"""

from __future__ import annotations

import datetime

from rental_operator.api import conditions

__all__ = ["find", "is_true", "reason_of", "set_condition"]


def find(items: list[conditions.Condition], type_: str) -> conditions.Condition | None:
    return next((c for c in items if c.type == type_), None)


def is_true(items: list[conditions.Condition], type_: str) -> bool:
    found = find(items, type_)
    return found is not None and found.status == conditions.ConditionStatus.TRUE


def reason_of(items: list[conditions.Condition], type_: str) -> str | None:
    found = find(items, type_)
    return found.reason if found else None


def set_condition(
    items: list[conditions.Condition],
    *,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime.datetime,
) -> list[conditions.Condition]:
    """Return `items` with the condition `type_` set; the input list is not modified."""
    wanted = {
        True: conditions.ConditionStatus.TRUE,
        False: conditions.ConditionStatus.FALSE,
        None: conditions.ConditionStatus.UNKNOWN,
    }[status]
    current = find(items, type_)
    transition = current.last_transition_time if current is not None and current.status == wanted else now
    updated = conditions.Condition(
        type=type_,
        status=wanted,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=transition,
    )
    others = [c for c in items if c.type != type_]
    return sorted([*others, updated], key=lambda c: c.type)
