"""Keys and certificates of seals (``cryptography`` only; pyHanko reads what this makes).

The platform CA issues each tenant's seal certificate. Production names its CA by settings
(``ANJU_SIGNING_CA_CERT`` and ``ANJU_SIGNING_CA_KEY``, PEM); outside production a development
CA is generated once into ``<data_dir>/signing-ca.json`` (mode 600, processes starting together
serialise on a lock file), so ``make run`` seals on a fresh machine. A licensed CA service
replaces all of this with its own provider (docs/signing.md)."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.settings import Settings

CA_YEARS = 10
SEAL_YEARS = 2


class SigningUnavailable(RuntimeError):
    """Sealing is not configured here (no CA, or no timestamp authority in production)."""


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate and private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("a seal or CA key is an EC private key")
    return key


def new_authority(common_name: str, *, now: datetime | None = None) -> Authority:
    """A self-signed CA (P-256) valid ``CA_YEARS``."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Anju"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue(
    ca: Authority,
    *,
    common_name: str,
    organization: str,
    serial_name: str = "",
    timestamping: bool = False,
    years: int = SEAL_YEARS,
    now: datetime | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    """A certificate from ``ca`` for ``key`` (default: a new P-256 key): a seal (digital
    signature and non-repudiation) or, with ``timestamping``, a timestamp authority's
    (critical EKU)."""
    now = now or datetime.now(UTC)
    key = key or ec.generate_private_key(ec.SECP256R1())
    attrs = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64] or "-"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "-"),
    ]
    if serial_name:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_name[:64]))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=365 * years), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=not timestamping,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if timestamping:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return key, builder.sign(ca.key, hashes.SHA256())


_cache: dict[str, Authority] = {}


def platform_ca(settings: Settings) -> Authority:
    """The CA that issues tenants' seal certificates (see the module's docstring)."""
    if settings.signing_ca_cert and settings.signing_ca_key:
        cache_key = "settings:" + settings.signing_ca_cert
        if cache_key not in _cache:
            cert = x509.load_pem_x509_certificate(settings.signing_ca_cert.encode())
            _cache[cache_key] = Authority(cert, load_key(settings.signing_ca_key))
        return _cache[cache_key]
    if settings.env == "production":
        raise SigningUnavailable(
            "production seals with a CA it is given: set ANJU_SIGNING_CA_CERT and "
            "ANJU_SIGNING_CA_KEY (or plug in a CA provider)"
        )
    path = settings.data_dir / "signing-ca.json"
    cache_key = str(path.resolve())
    if cache_key in _cache:
        return _cache[cache_key]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            stored = json.loads(path.read_text())
            ca = Authority(
                x509.load_pem_x509_certificate(stored["cert"].encode()), load_key(stored["key"])
            )
        else:
            ca = new_authority("Anju development signing CA")
            tmp = path.with_name(f".signing-ca.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"cert": ca.cert_pem, "key": key_pem(ca.key)}, f)
            os.replace(tmp, path)
    _cache[cache_key] = ca
    return ca
