"""The customer web app's writes on a real API server: the chart's RBAC and ValidatingAdmissionPolicy.

The customer web app runs in MyPage's process, as MyPage's ServiceAccount, and may create Rentals and
patch them (issue 15, item 4). RBAC grants the verbs; the chart's ValidatingAdmissionPolicy
(templates/web-admission.yaml) decides what those writes may say. Here the chart's own RBAC,
ServiceAccounts, policy and binding (`helm template`) are applied to the session's control plane, and
kubectl acts as that ServiceAccount (`--as=system:serviceaccount:<ns>:<sa>`).

Two layers refuse a bad update, in the API server's order: the CRD's own rules first (schema
validation: spec.purifier and spec.customer.id are immutable, spec.months is never lowered,
spec.cancelled never set back; 422 Invalid), then the policy (403 Forbidden, "ValidatingAdmissionPolicy
... denied request"), which holds everything the CRD allows anyone else: a raised term, a new phone or
address, labels, annotations, finalizers, owners. Each case below says which layer answers. A status
sent with a create never reaches admission: the status subresource drops it first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import helm

pytestmark = pytest.mark.cluster

KUBECTL = str(Path(sys.executable).parent / "kubectl")
POLICY_REFUSAL = "ValidatingAdmissionPolicy"
SHOW_ONLY = ("templates/serviceaccounts.yaml", "templates/rbac.yaml", "templates/web-admission.yaml")


def _rental(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rental.purifier.io/v1alpha1",
        "kind": "Rental",
        "metadata": {"name": name, **metadata},
        "spec": {
            "purifier": "aquapure-300",
            "customer": {
                "id": "cust-web-1",
                "name": "김민준",
                "phone": "+821012345678",
                "address": "서울 강남구",
            },
            "months": 12,
        },
    }


@dataclass
class Install:
    """The chart's RBAC and admission objects for one release, and kubectl as admin or the web app."""

    kubeconfig: Path
    release: str
    system: str  # the release's namespace, where the ServiceAccounts live
    shop: str  # where the Rentals are
    manifest: str

    @property
    def policy(self) -> str:
        return f"{self.release}-purifier-rental-operator-web-writes"

    @property
    def web_user(self) -> str:
        return f"system:serviceaccount:{self.system}:{self.release}-purifier-rental-operator-mypage"

    @property
    def operator_user(self) -> str:
        return f"system:serviceaccount:{self.system}:{self.release}-purifier-rental-operator"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [KUBECTL, f"--kubeconfig={self.kubeconfig}", *([f"--as={user}"] if user else []), *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=60, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    def web(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl as the customer web app (MyPage's ServiceAccount), in the shop namespace."""
        return self.kubectl("-n", self.shop, *args, input=input, check=False, user=self.web_user)

    def create(self, rental: dict[str, Any], *, user: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.kubectl(
            "-n", self.shop, "create", "-f", "-", input=json.dumps(rental), check=False, user=user
        )

    def get(self, name: str) -> dict[str, Any] | None:
        result = self.kubectl("-n", self.shop, "get", "rental", name, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None


def _wait_until_the_policy_holds(install: Install, timeout: float = 20) -> None:
    """A new policy is enforced once the API server's informer has it: a known-bad create (dry run,
    so nothing is made while it is not yet enforced) is refused by the policy within `timeout`."""
    probe = _rental("policy-probe")
    probe["spec"]["cancelled"] = True
    deadline = time.monotonic() + timeout
    while True:
        result = install.web("create", "--dry-run=server", "-f", "-", input=json.dumps(probe))
        if POLICY_REFUSAL in result.stderr:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the policy was not enforced after {timeout} s: {result.stderr}{result.stdout}"
            )
        time.sleep(0.5)


@pytest.fixture(scope="module")
def install(kubeconfig: Path, crds: Path) -> Iterator[Install]:
    suffix = uuid.uuid4().hex[:6]
    release, system, shop = f"web-{suffix}", f"web-system-{suffix}", f"web-shop-{suffix}"
    args = ["template", release, str(helm.CHART), "--namespace", system, "--kube-version", helm.KUBE_VERSION]
    args += [
        "--set",
        "partners.payment.url=https://pay.example",
        "--set",
        "partners.shipping.url=https://ship.example",
    ]
    for template in SHOW_ONLY:
        args += ["--show-only", template]
    manifest = helm.run(helm.ensure_helm(), *args).stdout
    made = Install(kubeconfig=kubeconfig, release=release, system=system, shop=shop, manifest=manifest)
    made.kubectl("create", "namespace", system)
    made.kubectl("create", "namespace", shop)
    made.kubectl("apply", "-f", "-", input=manifest)
    try:
        _wait_until_the_policy_holds(made)
        yield made
    finally:
        # The ClusterRoles, bindings and the policy are cluster-wide: leave nothing for other tests.
        made.kubectl("delete", "-f", "-", "--wait=false", "--ignore-not-found", input=manifest, check=False)
        for namespace in (shop, system):
            made.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def test_the_control_plane_serves_validating_admission_policies(install: Install) -> None:
    resources = install.kubectl("api-resources", "--api-group=admissionregistration.k8s.io", "-o", "name")
    names = resources.stdout.split()
    assert "validatingadmissionpolicies.admissionregistration.k8s.io" in names
    assert "validatingadmissionpolicybindings.admissionregistration.k8s.io" in names
    policy = json.loads(
        install.kubectl("get", "validatingadmissionpolicy", install.policy, "-o", "json").stdout
    )
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
    # The API server type-checked every expression and found nothing to warn about.
    assert not policy.get("status", {}).get("typeChecking", {}).get("expressionWarnings")


def test_the_web_app_applies_and_cancels(install: Install) -> None:
    """In the shapes the web app sends: an application labelled with its source, and a cancellation
    guarded by the uid it was decided on."""
    name = _unique("apply")
    created = install.create(
        _rental(name, labels={"rental.purifier.io/source": "web"}), user=install.web_user
    )
    assert created.returncode == 0, created.stderr
    rental = install.get(name)
    assert rental is not None and rental["spec"]["cancelled"] is False and "status" not in rental

    cancel = json.dumps({"metadata": {"uid": rental["metadata"]["uid"]}, "spec": {"cancelled": True}})
    cancelled = install.web("patch", "rental", name, "--type=merge", "-p", cancel)
    assert cancelled.returncode == 0, cancelled.stderr
    rental = install.get(name)
    assert rental is not None and rental["spec"]["cancelled"] is True
    # Cancelling twice (a retried request) changes nothing and is not refused.
    again = install.web("patch", "rental", name, "--type=merge", "-p", cancel)
    assert again.returncode == 0, again.stderr


def test_a_status_sent_with_an_application_is_dropped_before_admission(install: Install) -> None:
    """The policy refuses a status on create too, but the status subresource strips it first."""
    name = _unique("with-status")
    rental = _rental(name)
    rental["status"] = {"phase": "Confirmed"}
    created = install.create(rental, user=install.web_user)
    assert created.returncode == 0, created.stderr
    stored = install.get(name)
    assert stored is not None and "status" not in stored


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"spec": {"cancelled": True}},
            "spec.cancelled must be false or absent on a Rental the customer web app creates",
        ),
        (
            {"metadata": {"finalizers": ["rental.purifier.io/hold"]}},
            "metadata.finalizers must be absent on a Rental the customer web app creates",
        ),
        (
            {
                "metadata": {
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": str(uuid.uuid4())}
                    ]
                }
            },
            "metadata.ownerReferences must be absent on a Rental the customer web app creates",
        ),
    ],
    ids=["cancelled", "finalizers", "ownerReferences"],
)
def test_only_fresh_applications_may_be_created(
    install: Install, change: dict[str, Any], message: str
) -> None:
    name = _unique("bad-create")
    rental = _rental(name)
    rental["spec"].update(change.get("spec", {}))
    rental["metadata"].update(change.get("metadata", {}))
    refused = install.create(rental, user=install.web_user)
    assert refused.returncode != 0
    assert "(Forbidden)" in refused.stderr and POLICY_REFUSAL in refused.stderr, refused.stderr
    assert message in refused.stderr
    assert install.get(name) is None
    # The same object from anyone else (an administrator) is the CRD's business, not the policy's.
    assert install.create(rental).returncode == 0


# (patch, the message naming the field, who refuses it)
POLICY = "policy"
CRD = "crd"
UPDATES = {
    "months-raised": (
        {"spec": {"months": 24}},
        "spec.months may not be changed by the customer web app: on an existing Rental it may only set "
        "spec.cancelled to true",
        POLICY,
    ),
    "customer-phone": (
        {"spec": {"customer": {"phone": "+821099998888"}}},
        "spec.customer may not be changed by the customer web app",
        POLICY,
    ),
    "customer-address": (
        {"spec": {"customer": {"address": "부산 해운대구"}}},
        "spec.customer may not be changed by the customer web app",
        POLICY,
    ),
    "cancelled-with-months": (
        {"spec": {"cancelled": True, "months": 24}},
        "spec.months may not be changed by the customer web app",
        POLICY,
    ),
    "label": ({"metadata": {"labels": {"tier": "gold"}}}, "metadata.labels may not be changed", POLICY),
    "annotation": (
        {"metadata": {"annotations": {"note": "x"}}},
        "metadata.annotations may not be changed",
        POLICY,
    ),
    "finalizer": (
        {"metadata": {"finalizers": ["rental.purifier.io/hold"]}},
        "metadata.finalizers may not be changed",
        POLICY,
    ),
    # The CRD's own rules answer these first (schema validation runs before validating admission).
    "months-lowered": ({"spec": {"months": 6}}, "spec.months cannot be lowered", CRD),
    "customer-id": ({"spec": {"customer": {"id": "cust-web-2"}}}, "spec.customer.id is immutable", CRD),
    "purifier": ({"spec": {"purifier": "aquapure-500"}}, "spec.purifier is immutable", CRD),
}


@pytest.mark.parametrize("case", list(UPDATES))
def test_an_update_may_only_cancel(install: Install, case: str) -> None:
    patch, message, layer = UPDATES[case]
    name = _unique("update")
    install.create(_rental(name), user=install.web_user).check_returncode()
    before = install.get(name)
    refused = install.web("patch", "rental", name, "--type=merge", "-p", json.dumps(patch))
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    if layer == POLICY:
        assert "(Forbidden)" in refused.stderr and f"'{install.policy}'" in refused.stderr, refused.stderr
    else:
        assert "is invalid" in refused.stderr, refused.stderr
    after = install.get(name)
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "nothing changed"


def test_a_cancellation_cannot_be_taken_back(install: Install) -> None:
    name = _unique("taken-back")
    install.create(_rental(name), user=install.web_user).check_returncode()
    install.web(
        "patch", "rental", name, "--type=merge", "-p", '{"spec":{"cancelled":true}}'
    ).check_returncode()
    refused = install.web("patch", "rental", name, "--type=merge", "-p", '{"spec":{"cancelled":false}}')
    assert refused.returncode != 0
    # The CRD's transition rule answers before the policy's own (which says the same for this identity).
    assert "spec.cancelled cannot be set back to false once true" in refused.stderr, refused.stderr
    rental = install.get(name)
    assert rental is not None and rental["spec"]["cancelled"] is True


def test_the_operator_and_administrators_are_not_held_by_the_policy(install: Install) -> None:
    """The policy matches the web app's identity only: the operator still adds its finalizer, and an
    administrator may still raise a term."""
    name = _unique("others")
    install.create(_rental(name), user=install.web_user).check_returncode()
    finalizer = '{"metadata":{"finalizers":["rental.purifier.io/compensation"]}}'
    added = install.kubectl(
        "-n",
        install.shop,
        "patch",
        "rental",
        name,
        "--type=merge",
        "-p",
        finalizer,
        user=install.operator_user,
    )
    assert added.returncode == 0, added.stderr
    raised = install.kubectl(
        "-n", install.shop, "patch", "rental", name, "--type=merge", "-p", '{"spec":{"months":24}}'
    )
    assert raised.returncode == 0, raised.stderr
    rental = install.get(name)
    assert rental is not None and rental["spec"]["months"] == 24
    install.kubectl(
        "-n", install.shop, "patch", "rental", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        # kubectl patch reads the subresource first (and `get` on rentals/status is refused too), so the
        # write itself is sent raw: a PUT of the status.
        (("replace", "--raw", "{status}", "-f", "-"), 'cannot update resource "rentals/status"'),
        (("delete", "rental", "{name}", "--wait=false"), 'cannot delete resource "rentals"'),
        (("replace", "-f", "-"), 'cannot update resource "rentals"'),
        (("create", "-f", "-"), 'cannot create resource "payments"'),
        (("get", "secrets"), 'cannot list resource "secrets"'),
    ],
    ids=["status", "delete", "update", "payment", "secrets"],
)
def test_rbac_refuses_the_web_app_everything_else(
    install: Install, args: tuple[str, ...], refusal: str
) -> None:
    name = _unique("rbac")
    install.create(_rental(name), user=install.web_user).check_returncode()
    before = install.get(name)
    assert before is not None
    stdin = None
    status_path = f"/apis/rental.purifier.io/v1alpha1/namespaces/{install.shop}/rentals/{name}/status"
    if args[0] == "replace":
        before["spec"]["cancelled"] = True
        before["status"] = {"phase": "Cancelled"}
        stdin = json.dumps(before)
    elif args[0] == "create":
        stdin = json.dumps(
            {
                "apiVersion": "rental.purifier.io/v1alpha1",
                "kind": "Payment",
                "metadata": {"name": f"{name}-p1"},
                "spec": {
                    "rental": name,
                    "amount": 29900,
                    "currency": "KRW",
                    "customerId": "cust-web-1",
                    "idempotencyKey": f"rental-{uuid.uuid4().hex[:8]}",
                },
            }
        )
    refused = install.web(
        *({"{name}": name, "{status}": status_path}.get(arg, arg) for arg in args), input=stdin
    )
    assert refused.returncode != 0
    assert "(Forbidden)" in refused.stderr and refusal in refused.stderr, refused.stderr
    after = install.get(name)
    assert after is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_the_web_app_may_create_and_patch_rentals_and_nothing_more(install: Install) -> None:
    def can(*question: str) -> str:
        return install.web("auth", "can-i", *question).stdout.strip()

    rentals = "rentals.rental.purifier.io"
    assert [can(verb, rentals) for verb in ("create", "patch", "get", "list", "watch")] == ["yes"] * 5
    assert [can(verb, rentals) for verb in ("update", "delete", "deletecollection")] == ["no"] * 3
    assert [can(verb, rentals, "--subresource=status") for verb in ("patch", "update")] == ["no"] * 2
    for kind in ("payments", "deliveries", "purifiers"):
        assert can("create", f"{kind}.rental.purifier.io") == "no"
        assert can("patch", f"{kind}.rental.purifier.io") == "no"
