"""TLS for `--tls`: a generated CA and a server certificate it signs, so clients verify
the connection normally (pass the CA file to them) instead of turning verification off."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "devorg-ca.pem", "devorg-ca.key"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ilyd devorg"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _new_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ilyd devorg CA")).issuer_name(_name("ilyd devorg CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _kept_ca(out: Path, now: dt.datetime
             ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    """The CA a previous start left in `out`, if it is whole and still valid: clients that
    were given its certificate keep trusting devorg across restarts."""
    try:
        ca_cert = x509.load_pem_x509_certificate((out / CA_CERT).read_bytes())
        ca_key = serialization.load_pem_private_key((out / CA_KEY).read_bytes(), None)
    except (OSError, ValueError):
        return None
    if (not isinstance(ca_key, ec.EllipticCurvePrivateKey)
            or ca_key.public_key() != ca_cert.public_key()
            or ca_cert.not_valid_after_utc < now + dt.timedelta(days=1)):
        return None
    return ca_key, ca_cert


def make_certificates(host: str, directory: str | Path | None = None
                      ) -> tuple[ssl.SSLContext, Path]:
    """A server certificate for `host` (plus localhost and 127.0.0.1), signed by a CA.

    The CA (certificate and key, the key mode 0600) is kept in `directory` and used again
    at the next start; without a directory both are made anew in a temporary one.
    Returns the server SSL context and the path of the CA certificate (PEM).
    """
    out = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="devorg-tls-"))
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    kept = _kept_ca(out, now)
    ca_key, ca_cert = kept if kept is not None else _new_ca(now)
    if kept is None:
        _write_private(out / CA_KEY, ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (out / CA_CERT).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = out / CA_CERT
    cert_file = out / "devorg-server.pem"
    key_file = out / "devorg-server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_file, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file
