"""The chart's customer web app (issue 15, item 4) as `helm template` renders it.

`web.enabled` (default true) gives MyPage's ServiceAccount exactly create and patch on Rentals, cluster-wide
or in each watched namespace, and renders the ValidatingAdmissionPolicy and its binding that hold those
writes to fresh applications and setting spec.cancelled; without it (or without MyPage) neither the rule
nor the policy exists. MyPage's Deployment is told both settings. What the policy does on a real API
server is shown by tests/integration/test_web_admission.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rental_devenv import helm

REQUIRED = ("partners.payment.url=https://pay.example", "partners.shipping.url=https://ship.example")
FULLNAME = "rental-purifier-rental-operator"
MYPAGE = f"{FULLNAME}-mypage"
POLICY = f"{FULLNAME}-web-writes"
READ = [(["rental.purifier.io"], ["rentals", "purifiers"], ["get", "list", "watch"])]
WRITE = [(["rental.purifier.io"], ["rentals"], ["create", "patch"])]


def _render(helm_binary: Path, *values: str, files: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    return helm.template(helm_binary, *files, set_values=(*REQUIRED, *values))


def _rules(role: dict[str, Any]) -> list[tuple[list[str], list[str], list[str]]]:
    return [(rule["apiGroups"], rule["resources"], rule["verbs"]) for rule in role["rules"]]


def _mypage_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = helm.select(objects, "Deployment", MYPAGE)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value") for item in container["env"]}


def _admission(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    return [o for o in objects if o["kind"] in kinds]


# -- RBAC -------------------------------------------------------------------------------------------------


def test_mypage_may_create_and_patch_rentals_and_nothing_more(helm_binary: Path) -> None:
    objects = _render(helm_binary)
    (role,) = helm.select(objects, "ClusterRole", MYPAGE)
    assert _rules(role) == READ + WRITE
    (binding,) = helm.select(objects, "ClusterRoleBinding", MYPAGE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": MYPAGE, "namespace": "rental-system"}]


def test_without_the_web_app_mypage_only_reads(helm_binary: Path) -> None:
    objects = _render(helm_binary, "web.enabled=false")
    (role,) = helm.select(objects, "ClusterRole", MYPAGE)
    assert _rules(role) == READ


def test_a_namespaced_install_grants_the_writes_in_each_watched_namespace(helm_binary: Path) -> None:
    objects = _render(helm_binary, files=(helm.CHART / "ci" / "namespaced-values.yaml",))
    roles = [role for role in helm.select(objects, "Role") if role["metadata"]["name"] == MYPAGE]
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["shop-east", "shop-west"]
    assert all(_rules(role) == READ + WRITE for role in roles)
    assert not helm.select(objects, "ClusterRole", MYPAGE)
    # The operator's cluster-wide reads are unchanged: MyPage's writes are never cluster-wide here.
    (cluster_role,) = helm.select(objects, "ClusterRole", FULLNAME)
    assert all("rentals" not in resources for _, resources, _ in _rules(cluster_role))


def test_the_write_rule_is_explained_in_the_template() -> None:
    lines = (helm.CHART / "templates" / "_rbac.tpl").read_text().splitlines()
    start = lines.index('{{- define "purifier-rental-operator.webRules" -}}')
    block = lines[start + 1 : lines.index("{{- end }}", start)]
    comment = " ".join(line.lstrip("# ") for line in block if line.startswith("#"))
    assert (
        "customer web app" in comment
        and "spec.cancelled" in comment
        and "ValidatingAdmissionPolicy" in comment
    )
    assert [line for line in block if not line.startswith("#")] == [
        '- apiGroups: ["rental.purifier.io"]',
        '  resources: ["rentals"]',
        '  verbs: ["create", "patch"]',
    ]


# -- the admission policy -----------------------------------------------------------------------------


def test_the_policy_and_its_binding_hold_the_web_apps_writes(helm_binary: Path) -> None:
    objects = _render(helm_binary)
    (policy,) = helm.select(objects, "ValidatingAdmissionPolicy")
    (binding,) = helm.select(objects, "ValidatingAdmissionPolicyBinding")
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert policy["metadata"]["name"] == binding["metadata"]["name"] == POLICY
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": ["rental.purifier.io"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["rentals"],
        }
    ]
    assert spec["matchConditions"] == [
        {
            "name": "customer-web-app",
            "expression": f'request.userInfo.username == "system:serviceaccount:rental-system:{MYPAGE}"',
        }
    ]
    # Every refusal is a 403 whose message names the field.
    for validation in spec["validations"]:
        assert validation["reason"] == "Forbidden"
        text = validation.get("message", validation.get("messageExpression", ""))
        assert "spec." in text or "metadata." in text or text.startswith("status")
    assert binding["spec"] == {"policyName": POLICY, "validationActions": ["Deny"]}


def test_the_policy_follows_the_release_and_the_service_account(helm_binary: Path) -> None:
    objects = helm.template(
        helm_binary,
        set_values=(*REQUIRED, "fullnameOverride=shop-rentals", "mypage.serviceAccount.name=web-app"),
        namespace="customers",
    )
    (policy,) = helm.select(objects, "ValidatingAdmissionPolicy")
    (binding,) = helm.select(objects, "ValidatingAdmissionPolicyBinding")
    assert policy["metadata"]["name"] == binding["spec"]["policyName"] == "shop-rentals-web-writes"
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == 'request.userInfo.username == "system:serviceaccount:customers:web-app"'


@pytest.mark.parametrize(
    "values", [("web.enabled=false",), ("mypage.enabled=false",)], ids=["web-off", "mypage-off"]
)
def test_no_policy_without_the_web_app(helm_binary: Path, values: tuple[str, ...]) -> None:
    assert _admission(_render(helm_binary, *values)) == []


@pytest.mark.parametrize(
    "values", sorted((helm.CHART / "ci").glob("*-values.yaml")), ids=lambda path: path.stem
)
def test_every_ci_combination_with_mypage_ships_the_policy(helm_binary: Path, values: Path) -> None:
    objects = helm.template(helm_binary, values)
    with_mypage = bool(helm.select(objects, "Deployment", MYPAGE))
    assert len(_admission(objects)) == (2 if with_mypage else 0)


# -- MyPage's settings --------------------------------------------------------------------------------


def test_mypage_is_told_the_web_settings(helm_binary: Path) -> None:
    env = _mypage_env(_render(helm_binary))
    assert (env["RENTAL_WEB_ENABLED"], env["RENTAL_WEB_OPEN_APPLICATIONS"]) == ("true", "3")
    env = _mypage_env(_render(helm_binary, "web.enabled=false", "web.openApplications=5"))
    assert (env["RENTAL_WEB_ENABLED"], env["RENTAL_WEB_OPEN_APPLICATIONS"]) == ("false", "5")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("web.openApplications=0", "openApplications"),
        ("web.openApplications=three", "openApplications"),
        ("web.enabled=yes", "enabled"),
        ("web.admission=false", "admission"),
    ],
)
def test_a_bad_web_value_is_refused_naming_it(helm_binary: Path, value: str, field: str) -> None:
    with pytest.raises(RuntimeError, match="schema") as refused:
        _render(helm_binary, value)
    assert field in str(refused.value)
