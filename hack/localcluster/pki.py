"""Certificates, keys and kubeconfigs for the local control plane.

One CA signs the API server's serving certificate and a client certificate per
identity. The identities are the ones kubeadm uses, so RBAC's bootstrap roles
apply to them unchanged.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate's subject: CN is the user, O the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


CLIENTS = (
    ClientIdentity("admin", "kubernetes-admin", ("system:masters",)),
    ClientIdentity("controller-manager", "system:kube-controller-manager"),
    ClientIdentity("scheduler", "system:kube-scheduler"),
    # The simulators act for many nodes at once, so they run as administrators.
    ClientIdentity("kwok", "edgeml:kwok", ("system:masters",)),
    ClientIdentity("node-agent", "edgeml:node-agent", ("system:masters",)),
    # What the API server presents to kubelets (logs, exec, port-forward, proxy), so
    # they can authenticate and authorize it instead of allowing anonymous requests.
    ClientIdentity(
        "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
    ),
)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/16"
"""Virtual addresses only (no kube-proxy): room for 65,534 Services, as the load bench
needs (one per EdgeDeployment; a /24 refused the 255th with "range is full")."""
KUBERNETES_SERVICE_IP = "10.0.0.1"


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _sign(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names or server_ips:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_pki(pki: Path) -> None:
    """Create the CA, serving and client certificates and SA keys unless already there
    (a client identity added later is issued on the next call)."""
    if (pki / ".complete").exists():
        _ensure_clients(pki, *_load_ca(pki))
        return
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("edgeml-local-ca")
    ca_cert = _sign(ca_name, ca_key, ca_name, ca_key, ca=True)
    _write_key(pki / "ca.key", ca_key)
    (pki / "ca.crt").write_bytes(_pem(ca_cert))

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _sign(
        _name("kube-apiserver"),
        server_key,
        ca_name,
        ca_key,
        server_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        server_ips=("127.0.0.1", KUBERNETES_SERVICE_IP),
    )
    _write_key(pki / "apiserver.key", server_key)
    (pki / "apiserver.crt").write_bytes(_pem(server_cert))

    _ensure_clients(pki, ca_name, ca_key)

    # Service-account tokens are signed with RSA, the algorithm every client verifies.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (pki / ".complete").write_text("ok\n")


def _load_ca(pki: Path) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{pki / 'ca.key'} is not the EC key this module writes")
    return cert.subject, key


def _issue_client(
    pki: Path,
    stem: str,
    ident: ClientIdentity,
    ca_name: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_name(ident.user, ident.groups), key, ca_name, ca_key, client=True)
    (pki / stem).parent.mkdir(parents=True, exist_ok=True)
    _write_key(pki / f"{stem}.key", key)
    (pki / f"{stem}.crt").write_bytes(_pem(cert))


def _ensure_clients(pki: Path, ca_name: x509.Name, ca_key: ec.EllipticCurvePrivateKey) -> None:
    for ident in CLIENTS:
        if not (pki / f"{ident.file_stem}.crt").exists():
            _issue_client(pki, ident.file_stem, ident, ca_name, ca_key)


def node_identity(node: str) -> ClientIdentity:
    """A kubelet's identity: the Node authorizer and NodeRestriction know it by these."""
    return ClientIdentity(f"nodes/{node}", f"system:node:{node}", ("system:nodes",))


def ensure_node_cert(pki: Path, node: str) -> ClientIdentity:
    """Issue a real kubelet's client certificate (once); return its identity."""
    ident = node_identity(node)
    if not (pki / f"{ident.file_stem}.crt").exists():
        _issue_client(pki, ident.file_stem, ident, *_load_ca(pki))
    return ident


def write_kubeconfig(path: Path, pki: Path, identity: str, server: str) -> None:
    """Write a kubeconfig for `identity` (a ClientIdentity file stem) against `server`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "edgeml-local",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": identity,
                "user": {
                    "client-certificate": str(pki / f"{identity}.crt"),
                    "client-key": str(pki / f"{identity}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "edgeml-local", "context": {"cluster": "edgeml-local", "user": identity}}
        ],
        "current-context": "edgeml-local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
