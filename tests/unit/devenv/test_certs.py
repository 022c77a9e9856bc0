"""The control plane's PKI: the aggregation layer's material, and serving certificates for extension
API servers (`rental_devenv.certs`)."""

from __future__ import annotations

from pathlib import Path

from cryptography import exceptions, x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rental_devenv import certs


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, exceptions.InvalidSignature):
        return False
    return True


def test_front_proxy_client_comes_from_a_ca_of_its_own(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    client = _cert(pki.front_proxy_client_cert)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == certs.FRONT_PROXY_CLIENT
    assert _signed_by(client, _cert(pki.front_proxy_ca_cert))
    # An admin-style client certificate of the cluster CA cannot pose as the front proxy.
    assert not _signed_by(client, _cert(pki.ca_cert))
    usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_directory_from_before_the_aggregation_layer_keeps_its_cluster_ca(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    ca_before = pki.ca_cert.read_bytes()
    admin_before = pki.admin_cert.read_bytes()
    for path in (pki.front_proxy_ca_cert, pki.front_proxy_ca_key, pki.front_proxy_client_cert):
        path.unlink()
    pki.front_proxy_client_key.unlink()

    again = certs.ensure_pki(tmp_path)
    assert again.ca_cert.read_bytes() == ca_before, "a new cluster CA would break existing kubeconfigs"
    assert again.admin_cert.read_bytes() == admin_before
    assert _signed_by(_cert(again.front_proxy_client_cert), _cert(again.front_proxy_ca_cert))


def test_serving_certificate_names_the_service_and_loopback(tmp_path: Path) -> None:
    serving = certs.issue_serving(tmp_path, name="adapter", dns_names=["adapter.monitoring.svc", "localhost"])
    cert = _cert(serving.cert)
    assert _signed_by(cert, _cert(serving.ca_cert))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["adapter.monitoring.svc", "localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert serving.key.stat().st_mode & 0o777 == 0o600
