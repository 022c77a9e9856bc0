"""Certificates and keys for the local control plane.

The API server serves TLS and authenticates the admin with a client certificate (O=system:masters);
service-account tokens are signed with an RSA key shared by kube-apiserver and kube-controller-manager.
Everything is generated once per control-plane directory with the `cryptography` package, so no
`openssl` binary is needed.

The aggregation layer (custom and external metrics APIs served by prometheus-adapter) needs two more
things: a front-proxy CA of its own and a client certificate from it, which kube-apiserver presents when
it forwards a request to an extension API server (a separate CA, as Kubernetes recommends, so that no
ordinary client certificate can pose as the front proxy); and serving certificates for those extension
servers, each with a CA of its own that the APIService's caBundle names (`issue_serving`).

The development node (`rental_devenv.node`) adds client certificates from the cluster CA for the kubelet
(`system:node:<name>` in `system:nodes`, which the Node authorizer recognises), kube-proxy, kube-scheduler
and the API server's own client for kubelets (`ensure_client`), and asks for the node's address in the
API server's serving certificate (`ensure_pki(..., addresses=...)`).

Called by `rental_devenv.controlplane`, `rental_devenv.node` and `rental_devenv.adapter`.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["FRONT_PROXY_CLIENT", "PKI", "Serving", "ensure_client", "ensure_pki", "issue_serving"]

_VALIDITY = datetime.timedelta(days=365)
# The name kube-apiserver's front-proxy client certificate carries (--requestheader-allowed-names).
FRONT_PROXY_CLIENT = "front-proxy-client"


@dataclass(frozen=True)
class PKI:
    """Paths of the files the control plane components and the kubeconfig need."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path
    front_proxy_ca_cert: Path
    front_proxy_ca_key: Path
    front_proxy_client_cert: Path
    front_proxy_client_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    is_ca: bool,
    usages: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _new_ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return _issue(subject=name, key=key, issuer=name, issuer_key=key, is_ca=True, usages=[], sans=[]), key


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    *,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _issue(
        subject=subject, key=key, issuer=ca.subject, issuer_key=ca_key, is_ca=False, usages=[usage], sans=sans
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_pki(directory: Path, *, addresses: tuple[str, ...] = ()) -> PKI:
    """Create the CA, serving, admin and service-account material in `directory` unless present.

    `addresses`: extra IP addresses the API server's serving certificate must name (the node's); a
    certificate without one of them is re-issued from the same CA, so existing kubeconfigs stay valid.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = PKI(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
        front_proxy_ca_cert=directory / "front-proxy-ca.crt",
        front_proxy_ca_key=directory / "front-proxy-ca.key",
        front_proxy_client_cert=directory / "front-proxy-client.crt",
        front_proxy_client_key=directory / "front-proxy-client.key",
    )
    # Two independent sets: a directory made before the aggregation layer was configured gets the
    # front-proxy material added without a new cluster CA (which would invalidate its kubeconfig).
    if not all(pki_file.exists() for pki_file in (pki.ca_cert, pki.ca_key, pki.admin_cert, pki.sa_key)):
        _cluster_material(pki)
    if not pki.front_proxy_client_key.exists():
        _front_proxy_material(pki)
    if addresses and not set(addresses) <= _ip_sans(pki.serving_cert):
        _reissue_serving(pki, addresses)
    return pki


def _ip_sans(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(address) for address in sans.get_values_for_type(x509.IPAddress)}


def _load_ca(pki: PKI) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return ca, key


def _serving_sans(addresses: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        # The first address of --service-cluster-ip-range: the in-cluster `kubernetes` Service.
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    ]
    return names + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses if a not in {"127.0.0.1"}]


def _reissue_serving(pki: PKI, addresses: tuple[str, ...]) -> None:
    ca, ca_key = _load_ca(pki)
    cert, key = _leaf(
        ca, ca_key, "kube-apiserver", ExtendedKeyUsageOID.SERVER_AUTH, sans=_serving_sans(addresses)
    )
    _write_key(pki.serving_key, key)
    pki.serving_cert.write_bytes(_pem(cert))


def ensure_client(pki: PKI, name: str, *, common_name: str, organization: str = "") -> tuple[Path, Path]:
    """A client certificate and key from the cluster CA (`<name>.crt`, `<name>.key` beside it)."""
    cert_path, key_path = pki.ca_cert.parent / f"{name}.crt", pki.ca_cert.parent / f"{name}.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    ca, ca_key = _load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _issue(
        subject=subject,
        key=key,
        issuer=ca.subject,
        issuer_key=ca_key,
        is_ca=False,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=[],
    )
    _write_key(key_path, key)
    cert_path.write_bytes(_pem(cert))
    return cert_path, key_path


def _front_proxy_material(pki: PKI) -> None:
    ca, ca_key = _new_ca("purifier-rental-front-proxy-ca")
    client, client_key = _leaf(ca, ca_key, FRONT_PROXY_CLIENT, ExtendedKeyUsageOID.CLIENT_AUTH, sans=[])
    _write_key(pki.front_proxy_ca_key, ca_key)
    pki.front_proxy_ca_cert.write_bytes(_pem(ca))
    pki.front_proxy_client_cert.write_bytes(_pem(client))
    _write_key(pki.front_proxy_client_key, client_key)


@dataclass(frozen=True)
class Serving:
    """A serving certificate and key, and the CA that signed it (the bundle clients must trust)."""

    ca_cert: Path
    cert: Path
    key: Path


def issue_serving(directory: Path, *, name: str, dns_names: list[str]) -> Serving:
    """A serving certificate for `dns_names` and 127.0.0.1, from a CA of its own, in `directory`.

    For an extension API server behind an APIService: the aggregator checks the certificate against
    the APIService's caBundle (this CA) and the name `<service>.<namespace>.svc`. A CA per server keeps
    it independent of the cluster's PKI, as a cert-manager issuer would in a real cluster.
    """
    ca, ca_key = _new_ca(f"{name}-ca")
    sans = [*(x509.DNSName(dns) for dns in dns_names), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert, key = _leaf(ca, ca_key, name, ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)
    directory.mkdir(parents=True, exist_ok=True)
    serving = Serving(
        ca_cert=directory / f"{name}-ca.crt", cert=directory / f"{name}.crt", key=directory / f"{name}.key"
    )
    serving.ca_cert.write_bytes(_pem(ca))
    serving.cert.write_bytes(_pem(cert))
    _write_key(serving.key, key)
    return serving


def _cluster_material(pki: PKI) -> None:
    """The cluster CA, the API server's serving certificate, the admin and the service-account key."""
    ca, ca_key = _new_ca("purifier-rental-local-ca")
    ca_name = ca.subject

    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _issue(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        key=serving_key,
        issuer=ca_name,
        issuer_key=ca_key,
        is_ca=False,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=_serving_sans(()),
    )

    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "purifier-rental-admin"),
            ]
        ),
        key=admin_key,
        issuer=ca_name,
        issuer_key=ca_key,
        is_ca=False,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=[],
    )

    # Service-account tokens are RS256 by default; an RSA key avoids any algorithm flags.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    _write_key(pki.ca_key, ca_key)
    pki.ca_cert.write_bytes(_pem(ca))
    _write_key(pki.serving_key, serving_key)
    pki.serving_cert.write_bytes(_pem(serving))
    _write_key(pki.admin_key, admin_key)
    pki.admin_cert.write_bytes(_pem(admin))
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
