"""The chart gives the operator its partner keys as files and its partners' CA bundle, without a cluster.

Keys are mounted from the partners Secret and named by `RENTAL_*_API_KEY_FILE` (never environment
values, so they stay out of the pod spec); only the keys the Secret holds are mounted; a CA bundle
from a ConfigMap or a Secret becomes `RENTAL_PARTNER_CA_BUNDLE`; bad combinations fail the render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rental_devenv import helm

CHART = helm.CHART
REQUIRED = ("partners.payment.url=https://pay.example", "partners.shipping.url=https://ship.example")
OPERATOR = "rental-purifier-rental-operator"


def operator_pod(binary: Path, *set_values: str, files: tuple[Path, ...] = ()) -> dict[str, Any]:
    objects = helm.template(binary, *files, set_values=(*(() if files else REQUIRED), *set_values))
    [deployment] = helm.select(objects, "Deployment", OPERATOR)
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def env(pod: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in pod["containers"][0]["env"]}


def volume(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [v for v in pod.get("volumes", []) if v["name"] == name]
    return found[0] if found else None


def mounts(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in pod["containers"][0].get("volumeMounts", [])}


def test_keys_in_values_are_files_of_the_chart_secret(helm_binary: Path) -> None:
    pod = operator_pod(helm_binary, "partners.payment.apiKey=pay-key", "partners.sms.apiKey=sms-key")
    variables = env(pod)
    assert variables["RENTAL_PAYMENT_API_KEY_FILE"] == "/etc/rental/partners/payment-api-key"
    assert variables["RENTAL_SMS_API_KEY_FILE"] == "/etc/rental/partners/sms-api-key"
    assert "RENTAL_SHIPPING_API_KEY_FILE" not in variables, "no shipping key given: none mounted"
    for plain in ("RENTAL_PAYMENT_API_KEY", "RENTAL_SHIPPING_API_KEY", "RENTAL_SMS_API_KEY"):
        assert plain not in variables, "keys never travel as environment values"
    assert "pay-key" not in str(pod), "the key is in the Secret, not in the pod spec"
    keys = volume(pod, "partner-keys")
    assert keys is not None
    assert keys["secret"]["secretName"] == "rental-purifier-rental-operator-partners"
    assert [item["key"] for item in keys["secret"]["items"]] == ["payment-api-key", "sms-api-key"]
    assert mounts(pod)["partner-keys"] == {
        "name": "partner-keys",
        "mountPath": "/etc/rental/partners",
        "readOnly": True,
    }


def test_no_keys_no_secret_volume(helm_binary: Path) -> None:
    pod = operator_pod(helm_binary)
    assert volume(pod, "partner-keys") is None
    assert "partner-keys" not in mounts(pod)
    assert not [name for name in env(pod) if "API_KEY" in name]


def test_an_existing_secret_mounts_the_keys_it_is_said_to_hold(helm_binary: Path) -> None:
    pod = operator_pod(helm_binary, files=(CHART / "ci" / "namespaced-values.yaml",))
    keys = volume(pod, "partner-keys")
    assert keys is not None and keys["secret"]["secretName"] == "partner-keys"
    assert [item["key"] for item in keys["secret"]["items"]] == [
        "payment-api-key",
        "shipping-api-key",
        "sms-api-key",
    ]
    assert {name for name in env(pod) if name.endswith("_API_KEY_FILE")} == {
        "RENTAL_PAYMENT_API_KEY_FILE",
        "RENTAL_SHIPPING_API_KEY_FILE",
        "RENTAL_SMS_API_KEY_FILE",
    }
    only_payment = operator_pod(
        helm_binary,
        "partners.existingSecret=mine",
        "partners.existingSecretKeys={payment-api-key}",
    )
    assert [name for name in env(only_payment) if "API_KEY" in name] == ["RENTAL_PAYMENT_API_KEY_FILE"]


@pytest.mark.parametrize("source", ["configMap", "secret"])
def test_a_ca_bundle_is_mounted_and_named(helm_binary: Path, source: str) -> None:
    pod = operator_pod(
        helm_binary, f"partners.caBundle.{source}=partner-ca", "partners.caBundle.key=bundle.pem"
    )
    assert env(pod)["RENTAL_PARTNER_CA_BUNDLE"] == "/etc/rental/partner-ca/bundle.pem"
    ca = volume(pod, "partner-ca")
    assert ca is not None
    reference = ca[source]
    assert reference.get("name", reference.get("secretName")) == "partner-ca"
    assert reference["items"] == [{"key": "bundle.pem", "path": "bundle.pem"}]
    assert mounts(pod)["partner-ca"]["readOnly"] is True


def test_no_ca_bundle_means_the_system_trust_store(helm_binary: Path) -> None:
    pod = operator_pod(helm_binary)
    assert "RENTAL_PARTNER_CA_BUNDLE" not in env(pod)
    assert volume(pod, "partner-ca") is None


def test_a_changed_ca_bundle_source_restarts_the_operator(helm_binary: Path) -> None:
    def checksum(*values: str) -> str:
        pod_template = helm.select(
            helm.template(helm_binary, set_values=(*REQUIRED, *values)), "Deployment", OPERATOR
        )
        return str(pod_template[0]["spec"]["template"]["metadata"]["annotations"]["checksum/partners"])

    assert checksum() != checksum("partners.caBundle.configMap=partner-ca")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ("partners.caBundle.configMap=a", "partners.caBundle.secret=b"),
            "set configMap or secret, not both",
        ),
        (("partners.caBundle.key=../etc/passwd",), "caBundle"),
        (("partners.existingSecretKeys={api-key}",), "existingSecretKeys"),
        (("partners.caBundle.verify=false",), "verify"),
    ],
)
def test_bad_combinations_fail_the_render(helm_binary: Path, values: tuple[str, ...], message: str) -> None:
    with pytest.raises(RuntimeError) as caught:  # helm's output is in the message
        helm.template(helm_binary, set_values=(*REQUIRED, *values))
    assert message in str(caught.value), str(caught.value)
