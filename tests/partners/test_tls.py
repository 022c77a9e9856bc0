"""The partner clients against the reference gateway served over https, with and without its CA.

The gateway runs with `--tls-cert/--tls-key` from a throwaway CA (`rental_devenv.certs`, the same code
that makes the control plane's certificates). With that CA as `RENTAL_PARTNER_CA_BUNDLE` (or a
per-partner bundle) every client works; with the system's trust store or another CA, the call fails
as a TLS fault naming the certificate check, counts for the breaker, and never reaches the gateway's
ledger: nothing is ever sent unverified.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rental_devenv import certs
from rental_operator import config
from rental_operator.partners import errors, payments, shipping, sms

API_KEY = "gw-test-key"  # the key conftest's `make_settings` configures
MakeSettings = Callable[..., config.Settings]
CHARGE = {"amount": 120_000, "currency": "KRW", "customer_id": "cust-tls", "reference": "tls/rent-1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[certs.PKI, certs.PKI]:
    """The gateway's CA (its serving certificate names 127.0.0.1) and an unrelated one."""
    return (
        certs.ensure_pki(tmp_path_factory.mktemp("gateway-ca")),
        certs.ensure_pki(tmp_path_factory.mktemp("other-ca")),
    )


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory, pki: tuple[certs.PKI, certs.PKI]) -> Iterator[Any]:
    from rental_gateway import testing  # noqa: PLC0415 - importable after tests/partners/conftest.py

    own, _ = pki
    directory = tmp_path_factory.mktemp("tls-gateway")
    gateway = testing.GatewayProcess(
        "--auto-deliver-seconds",
        "0",
        "--tls-cert",
        str(own.serving_cert),
        "--tls-key",
        str(own.serving_key),
        db=directory / "ledger.sqlite3",
        api_key=API_KEY,
        log_path=directory / "gateway.log",
        ca_bundle=own.ca_cert,
    )
    gateway.start()
    yield gateway
    assert gateway.stop() == 0, gateway.log_text()


@pytest.fixture
def gateway(tls_gateway: Any) -> Any:
    """Overrides conftest's: `make_settings` then points every partner at the https gateway."""
    tls_gateway.reset()
    return tls_gateway


@pytest.fixture
def settings_for(make_settings: MakeSettings) -> MakeSettings:
    # A low threshold so two TLS faults show the breaker opening.
    return functools.partial(make_settings, breaker_failure_threshold="2", breaker_reset_seconds="60")


def test_the_gateway_serves_https(gateway: Any) -> None:
    assert gateway.url.startswith("https://127.0.0.1:")
    assert gateway.ledger()["payments"] == []  # the harness itself verified the certificate


def test_every_partner_works_with_the_gateways_ca(
    settings_for: MakeSettings, gateway: Any, pki: tuple[certs.PKI, certs.PKI]
) -> None:
    settings = settings_for(partner_ca_bundle=str(pki[0].ca_cert))
    with payments.PaymentClient(settings) as client:
        charge = client.charge(**CHARGE, idempotency_key="tls-charge-1")
        assert charge.approved
    with shipping.ShippingClient(settings) as carrier:
        shipment = carrier.create(
            reference="tls/rent-1", address="Seoul", item="AquaPure", idempotency_key="tls-ship-1"
        )
        assert shipment.status == "shipping"
    sender = sms.HttpSmsSender(settings)
    try:
        assert sender.send(to="+821012345678", text="hello", reference="tls/1", idempotency_key="tls-sms-1")
    finally:
        sender.close()
    ledger = gateway.ledger()
    assert [len(ledger[kind]) for kind in ("payments", "shipments", "messages")] == [1, 1, 1]


def test_a_per_partner_bundle_overrides_the_shared_one(
    settings_for: MakeSettings, gateway: Any, pki: tuple[certs.PKI, certs.PKI]
) -> None:
    own, other = pki
    settings = settings_for(partner_ca_bundle=str(other.ca_cert), payment_ca_bundle=str(own.ca_cert))
    with payments.PaymentClient(settings) as client:
        assert client.charge(**CHARGE, idempotency_key="tls-charge-2").approved
    with shipping.ShippingClient(settings) as carrier, pytest.raises(errors.PartnerUnavailable) as caught:
        carrier.create(reference="tls/rent-2", address="Seoul", item="AquaPure", idempotency_key="tls-ship-2")
    assert caught.value.kind == "tls"


@pytest.mark.parametrize("bundle", ["system trust store", "another CA"])
def test_an_unverifiable_certificate_is_a_tls_fault_that_sends_nothing(
    settings_for: MakeSettings, gateway: Any, pki: tuple[certs.PKI, certs.PKI], bundle: str
) -> None:
    variables = {"partner_ca_bundle": str(pki[1].ca_cert)} if bundle == "another CA" else {}
    outcomes: list[str] = []
    settings = settings_for(**variables)
    with payments.PaymentClient(
        settings, observe=lambda operation, outcome, seconds: outcomes.append(outcome)
    ) as client:
        for attempt in range(2):
            with pytest.raises(errors.PartnerUnavailable) as caught:
                client.charge(**CHARGE, idempotency_key=f"tls-charge-bad-{attempt}")
            error = caught.value
            assert error.kind == "tls"
            assert "certificate" in str(error) and "verify failed" in str(error), str(error)
            assert error.outcome_unknown is False  # refused before anything was sent
            assert API_KEY not in str(error)
        # Two TLS faults reach the threshold: the breaker opens like for any other outage.
        assert client.breaker_state() == "open"
        with pytest.raises(errors.BreakerOpen):
            client.charge(**CHARGE, idempotency_key="tls-charge-bad-3")
    assert outcomes == ["tls_error", "tls_error", "breaker_open"]
    assert gateway.ledger()["payments"] == []
    assert "TLS handshake failed" in gateway.log_text()


def test_a_rotated_bundle_is_trusted_without_a_restart(
    settings_for: MakeSettings, gateway: Any, pki: tuple[certs.PKI, certs.PKI], tmp_path: Path
) -> None:
    # The chart mounts the CA ConfigMap or Secret as a directory, which the kubelet updates in place
    # (a new file swapped in by rename); each new connection reads the bundle again, so a rotated CA
    # is trusted at the next call, with no restart and no checksum annotation to roll the pod.
    own, other = pki
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(other.ca_cert.read_bytes())
    settings = settings_for(partner_ca_bundle=str(bundle))
    with payments.PaymentClient(settings) as client:
        with pytest.raises(errors.PartnerUnavailable) as caught:
            client.charge(**CHARGE, idempotency_key="tls-rotate-1")
        assert caught.value.kind == "tls"
        rotated = tmp_path / "ca.crt.new"
        rotated.write_bytes(own.ca_cert.read_bytes())
        rotated.replace(bundle)
        assert client.charge(**CHARGE, idempotency_key="tls-rotate-2").approved
    assert len(gateway.ledger()["payments"]) == 1


def test_the_requests_ca_bundle_variable_cannot_replace_a_configured_bundle(
    settings_for: MakeSettings,
    gateway: Any,
    pki: tuple[certs.PKI, certs.PKI],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests lets REQUESTS_CA_BUNDLE override `verify=True`; a configured bundle is passed as a path,
    # which it does not override, so an environment variable cannot widen what the operator trusts.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki[0].ca_cert))
    settings = settings_for(partner_ca_bundle=str(pki[1].ca_cert))
    with payments.PaymentClient(settings) as client, pytest.raises(errors.PartnerUnavailable) as caught:
        client.charge(**CHARGE, idempotency_key="tls-charge-env")
    assert caught.value.kind == "tls"


def test_a_bundle_that_is_not_pem_stops_start_up(
    settings_for: MakeSettings, tmp_path: Path, gateway: Any
) -> None:
    junk = tmp_path / "bundle.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(config.ConfigError) as caught:
        settings_for(partner_ca_bundle=str(junk))
    assert str(caught.value).startswith("configuration error: RENTAL_PARTNER_CA_BUNDLE: ")
    assert "no PEM certificate" in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (("--tls-cert", "/nonexistent/cert.pem"), "--tls-cert and --tls-key go together"),
        (
            ("--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"),
            "error: --tls-cert/--tls-key",
        ),
    ],
)
def test_the_gateway_refuses_tls_flags_it_cannot_use(
    tmp_path: Path, flags: tuple[str, ...], problem: str
) -> None:
    from rental_gateway import testing  # noqa: PLC0415 - importable after tests/partners/conftest.py

    gateway = testing.GatewayProcess(*flags, log_path=tmp_path / "gateway.log", startup_timeout=10)
    with pytest.raises(testing.GatewayStartError) as raised:
        gateway.start()
    assert "exit status 2" in str(raised.value)
    assert problem in gateway.log_text()
