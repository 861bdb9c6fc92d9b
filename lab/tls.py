"""A throw-away CA and a server certificate for the lab's HTTPS endpoints (``cryptography``), and on request a
client certificate from the same CA (for servers that ask clients to prove who they are, as Redis's
``tls-auth-clients yes`` does).

Clients verify the lab's certificate against ``ca.pem`` (pypsrp ``cert_validation=<path>``); the
server certificate names 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_NAME = "hvbot lab client"


@dataclass(frozen=True)
class LabTLS:
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path | None = None  # only with make_tls(client=True)
    client_key_file: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class _Issuer:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    start: datetime.datetime
    end: datetime.datetime


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hvbot lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(days: int) -> _Issuer:
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("hvbot lab CA"))
        .issuer_name(_name("hvbot lab CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Issuer(key, cert, start, end)


def _issue(ca: _Issuer, common_name: str, usage: x509.ObjectIdentifier, san: x509.SubjectAlternativeName | None,
           cert_file: Path, key_file: Path) -> None:
    """Write a leaf certificate for one use (server or client) signed by ``ca``, and its key (mode 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.start)
        .not_valid_after(ca.end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert_file.write_bytes(builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def make_tls(directory: Path, days: int = 7, client: bool = False) -> LabTLS:
    """Write ca.pem, server.pem and server-key.pem into ``directory``, and with ``client`` also client.pem and
    client-key.pem (a certificate for client authentication only, from the same CA). The CA's key is not kept."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(days)
    (directory / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    _issue(ca, "localhost", ExtendedKeyUsageOID.SERVER_AUTH, san, directory / "server.pem",
           directory / "server-key.pem")
    tls = LabTLS(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    if not client:
        return tls
    _issue(ca, CLIENT_NAME, ExtendedKeyUsageOID.CLIENT_AUTH, None, directory / "client.pem",
           directory / "client-key.pem")
    return LabTLS(tls.ca_file, tls.cert_file, tls.key_file, directory / "client.pem", directory / "client-key.pem")
