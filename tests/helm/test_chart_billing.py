"""The chart's billing settings (CONTRACT §3) reach the operator, bad ones are refused at install, and the
operator may delete Payments (the history it prunes) and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rental_devenv import helm
from rental_operator import config

REQUIRED = ("partners.payment.url=https://pay.example", "partners.shipping.url=https://ship.example")
OPERATOR = "rental-purifier-rental-operator"


def _operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [o for o in helm.select(objects, "Deployment") if o["metadata"]["name"] == OPERATOR]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value") for item in container["env"]}


def test_the_default_billing_settings_are_the_contracts(helm_binary: Path) -> None:
    env = _operator_env(helm.template(helm_binary, set_values=REQUIRED))
    assert env["RENTAL_BILLING_PERIOD"] == "month"
    assert env["RENTAL_DUNNING_SCHEDULE"] == "1d,3d,5d,7d,9d,11d,14d"
    assert env["RENTAL_WITHDRAWAL_PERIOD"] == "14d"
    assert env["RENTAL_PAYMENT_HISTORY"] == "3"
    # What the chart renders, the operator accepts.
    settings = config.load({**{k: v for k, v in env.items() if v is not None and k.startswith("RENTAL_")}})
    assert settings.billing_period_length is None and len(settings.dunning_delays) == 7


def test_billing_settings_for_a_demo(helm_binary: Path) -> None:
    values = (
        *REQUIRED,
        "billing.period=30s",
        "billing.dunningSchedule=2s\\,4s",
        "billing.withdrawalPeriod=1m",
        "billing.paymentHistory=5",
    )
    env = _operator_env(helm.template(helm_binary, set_values=values))
    assert (env["RENTAL_BILLING_PERIOD"], env["RENTAL_DUNNING_SCHEDULE"]) == ("30s", "2s,4s")
    assert (env["RENTAL_WITHDRAWAL_PERIOD"], env["RENTAL_PAYMENT_HISTORY"]) == ("1m", "5")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("billing.period=monthly", "period"),
        ("billing.dunningSchedule=1 day", "dunningSchedule"),
        ("billing.withdrawalPeriod=two weeks", "withdrawalPeriod"),
        ("billing.paymentHistory=0", "paymentHistory"),
        ("billing.grace=1d", "grace"),
    ],
)
def test_a_bad_billing_value_is_refused_at_install_naming_it(
    helm_binary: Path, value: str, field: str
) -> None:
    with pytest.raises(RuntimeError, match="schema") as refused:
        helm.template(helm_binary, set_values=(*REQUIRED, value))
    assert field in str(refused.value)


def test_the_operator_may_delete_payments_and_nothing_else(helm_binary: Path) -> None:
    objects = helm.template(helm_binary, set_values=REQUIRED)
    deleting = [
        (rule["apiGroups"], rule["resources"], rule["verbs"])
        for role in helm.select(objects, "ClusterRole") + helm.select(objects, "Role")
        for rule in role["rules"]
        if {"delete", "deletecollection"} & set(rule["verbs"])
    ]
    assert deleting == [(["rental.purifier.io"], ["payments"], ["delete"])]
