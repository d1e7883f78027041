"""Who applies the tenant's seal: the signing-provider interface and the platform's own.

``SigningProvider.seal`` takes the document the signer consented to and returns it sealed
(PAdES), with what the completion certificate says about the seal. ``LocalCaProvider`` (the
one there is) keeps each tenant's seal key in the tenant's schema, encrypted through the
field-encryption registry, with a certificate the platform CA issued on first use
(``api/signing/pki.py``), and timestamps through the RFC 3161 authority at
``ANJU_SIGNING_TSA_URL``. A licensed CA service (SM2 keys held by the CA, 《电子签名法》 art.
13 attested by a third party) plugs in as another provider: same call, its own keys, its own
timestamps (docs/signing.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.ids import uuid7
from api.security.kit import SecurityKit
from api.signing import pades, pki
from api.signing.models import SigningSeal
from tenants.registry import TenantInfo

log = structlog.get_logger("anju.signing")

SEAL_TABLE = "signing_seal"


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed document and what the certificate records of its seal."""

    pdf: bytes
    provider: str
    subject: str  # the seal certificate's subject
    serial: str  # its serial number (hex)
    cert_sha256: str  # its fingerprint
    issuer: str
    algorithm: str
    timestamp: datetime | None
    tsa: str  # the timestamp authority's URL, or "" (none)


class SigningProvider(Protocol):
    name: str

    async def seal(
        self,
        session: AsyncSession,
        tenant: TenantInfo,
        pdf: bytes,
        *,
        reason: str,
        location: str,
    ) -> Sealed: ...

    async def trust_roots(self, session: AsyncSession) -> list[x509.Certificate]:
        """The certificates a sealed document of this provider chains to (to validate it)."""
        ...


class LocalCaProvider:
    """Seals with the tenant's key, certified by the platform CA, timestamped by the TSA
    of the settings (see the module's docstring)."""

    name = "local-ca"

    def __init__(self, kit: SecurityKit) -> None:
        self.kit = kit
        self.settings = kit.settings

    def _tsa(self) -> str | None:
        url = self.settings.signing_tsa_url.strip()
        if url:
            return url
        if self.settings.env == "production":
            raise pki.SigningUnavailable(
                "production timestamps every seal: set ANJU_SIGNING_TSA_URL"
            )
        log.warning("sealing without a timestamp (no ANJU_SIGNING_TSA_URL; development only)")
        return None

    async def trust_roots(self, session: AsyncSession) -> list[x509.Certificate]:
        return [pki.platform_ca(self.settings).cert]

    async def _material(
        self, session: AsyncSession, tenant: TenantInfo
    ) -> tuple[SigningSeal, pki.Authority]:
        """The tenant's current seal; made (key, certificate) on first use."""
        ca = pki.platform_ca(self.settings)
        stmt = select(SigningSeal).where(
            SigningSeal.provider == self.name, SigningSeal.retired_at.is_(None)
        )
        row = await session.scalar(stmt)
        now = datetime.now(UTC)
        if row is not None and row.not_after > now:
            return row, ca
        if row is not None:  # expired: retired, a new one is issued
            row.retired_at = now
            await session.flush()
        key, cert = pki.issue(
            ca,
            common_name=f"{tenant.name} 电子合同专用章",
            organization=tenant.name,
            serial_name=str(uuid.UUID(tenant.id)),
        )
        row = SigningSeal(id=uuid7(), provider=self.name, created_at=now)
        row.key_enc = self.kit.cipher.encrypt(
            pki.key_pem(key),
            scope=str(uuid.UUID(tenant.id)),
            table=SEAL_TABLE,
            column="seal_key",
            row_id=row.id,
        )
        row.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        row.chain_pem = ca.cert_pem
        row.serial = format(cert.serial_number, "x")
        row.subject = cert.subject.rfc4514_string()[:300]
        row.not_after = cert.not_valid_after_utc
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError:  # made meanwhile by another request: that one is the seal
            found = await session.scalar(stmt)
            assert found is not None
            return found, ca
        return row, ca

    async def seal(
        self,
        session: AsyncSession,
        tenant: TenantInfo,
        pdf: bytes,
        *,
        reason: str,
        location: str,
    ) -> Sealed:
        tsa = self._tsa()
        row, _ca = await self._material(session, tenant)
        key = pki.load_key(
            self.kit.cipher.decrypt(
                row.key_enc,
                scope=str(uuid.UUID(tenant.id)),
                table=SEAL_TABLE,
                column="seal_key",
                row_id=row.id,
            )
        )
        cert = x509.load_pem_x509_certificate(row.cert_pem.encode())
        chain = x509.load_pem_x509_certificates(row.chain_pem.encode())
        done = await pades.seal(
            pdf,
            key=key,
            cert=cert,
            chain=chain,
            reason=reason,
            location=location,
            name=tenant.name,
            tsa_url=tsa,
            tsa_timeout=self.settings.signing_tsa_timeout,
        )
        return Sealed(
            pdf=done.pdf,
            provider=self.name,
            subject=row.subject,
            serial=row.serial,
            cert_sha256=cert.fingerprint(hashes.SHA256()).hex(),
            issuer=cert.issuer.rfc4514_string(),
            algorithm="ECDSA P-256 / SHA-256, PAdES (ETSI.CAdES.detached)"
            + (", RFC 3161 timestamp" if tsa else ""),
            timestamp=done.timestamp,
            tsa=tsa or "",
        )


def provider_for(kit: SecurityKit) -> SigningProvider:
    """The provider of this deployment (one for now; a CA service's would be chosen by a
    setting here)."""
    return LocalCaProvider(kit)
