"""A throwaway certificate authority for TLS tests, made with `cryptography` in a temp dir."""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class KeyPair:
    """PEM text and file paths of a key and its certificate."""

    key_pem: str
    cert_pem: str
    key_path: pathlib.Path
    cert_path: pathlib.Path


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates.

    Args:
      directory: where PEM files are written.
      name: the CA's common name (and file prefix).
    """

    def __init__(self, directory: pathlib.Path, name: str = "tfrelay-test-ca") -> None:
        self.directory = directory
        self.name = name
        self._key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            # Key identifiers: Python 3.13's default client context verifies with
            # VERIFY_X509_STRICT, which refuses a chain without them ("Missing Authority Key
            # Identifier", issue 14).
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self._cert.public_bytes(serialization.Encoding.PEM).decode()
        self.cert_path = directory / f"{name}.crt"
        self.cert_path.write_text(self.cert_pem)

    def issue(self, common_name: str, server: bool) -> KeyPair:
        """Issues a certificate for 127.0.0.1/localhost (server) or a client identity."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256())
        key_pem = _pem_key(key)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        key_path = self.directory / f"{common_name}.key"
        cert_path = self.directory / f"{common_name}.crt"
        key_path.write_text(key_pem)
        cert_path.write_text(cert_pem)
        return KeyPair(key_pem, cert_pem, key_path, cert_path)


def ssl_config_text(server: KeyPair, ca: CertificateAuthority | None, client_verify: bool) -> str:
    """An SSLConfig text proto as a TF Serving user writes it (PEM text inline)."""

    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"server_key: {quoted(server.key_pem)}", f"server_cert: {quoted(server.cert_pem)}"]
    if ca is not None:
        lines.append(f"custom_ca: {quoted(ca.cert_pem)}")
    lines.append(f"client_verify: {'true' if client_verify else 'false'}")
    return "\n".join(lines) + "\n"
