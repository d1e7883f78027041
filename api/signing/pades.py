"""PAdES seals and their validation, with pyHanko.

``seal`` signs a PDF as an incremental update (PAdES baseline: ETSI.CAdES.detached, the
signing certificate in the signed attributes, SHA-256) with a key and its certificate chain,
timestamped by the RFC 3161 authority at ``tsa_url`` (the signature's unsigned
``signature-time-stamp`` attribute: PAdES B-T). ``validate`` reads a PDF's signatures back:
the bytes they cover untouched, the signer's certificate chaining to the trust roots given,
the timestamp valid. pyHanko's own ``pyhanko`` and ``pyhanko_certvalidator`` do the work;
nothing here reimplements CMS."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

FIELD = "AnjuSeal"


class SealFailed(RuntimeError):
    """The seal could not be applied (the timestamp authority refused or did not answer)."""


def _asn1_cert(cert: x509.Certificate):  # -> asn1crypto.x509.Certificate
    from asn1crypto import x509 as a509

    return a509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_key(key: PrivateKeyTypes):  # -> asn1crypto.keys.PrivateKeyInfo
    from asn1crypto import keys

    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return keys.PrivateKeyInfo.load(der)


@dataclass(frozen=True, slots=True)
class SealResult:
    pdf: bytes
    timestamp: datetime | None  # the TSA's time, when timestamped


async def seal(
    pdf: bytes,
    *,
    key: PrivateKeyTypes,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    reason: str,
    location: str,
    name: str,
    tsa_url: str | None,
    tsa_timeout: float,
) -> SealResult:
    """The PDF with a PAdES signature by ``key`` (``cert``, issued along ``chain``) added as
    an incremental update; timestamped when ``tsa_url`` is given."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError
    from pyhanko.sign.timestamps.requests_client import HTTPTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(cert),
        signing_key=_asn1_key(key),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(c) for c in chain]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=name,
        use_pades_lta=False,
    )
    timestamper = HTTPTimeStamper(tsa_url, timeout=tsa_timeout) if tsa_url else None
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    out = io.BytesIO()
    try:
        await signers.PdfSigner(meta, signer=signer, timestamper=timestamper).async_sign_pdf(
            writer, output=out
        )
    except TimestampRequestError as exc:
        raise SealFailed("the timestamp authority did not answer") from exc
    signed = out.getvalue()
    stamp = None
    if timestamper is not None:
        stamp = (await validate(signed, [*chain])).timestamp
    return SealResult(signed, stamp)


@dataclass(frozen=True, slots=True)
class Validation:
    """One signature's validation (the last one of the file)."""

    signatures: int
    intact: bool  # the bytes it covers hash to what was signed
    valid: bool  # the signature over them checks with the signer's key
    trusted: bool  # the signer's certificate chains to a trust root given
    covers_whole_file: bool  # nothing was added after it
    timestamp: datetime | None  # the timestamp's time, when present and valid
    timestamp_trusted: bool
    signer: str  # the signer certificate's subject
    serial: str  # its serial number (hex)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.intact and self.valid and self.trusted and self.covers_whole_file


def _broken(count: int, error: str) -> Validation:
    return Validation(count, False, False, False, False, None, False, "", "", error)


async def validate(pdf: bytes, trust_roots: list[x509.Certificate]) -> Validation:
    """Validate the file's last signature against ``trust_roots`` (no network: no CRL or
    OCSP is fetched; revocation is the CA provider's concern, see docs/signing.md)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:  # a file too damaged to read has no valid signature
        return _broken(0, f"unreadable: {type(exc).__name__}")
    if not sigs:
        return _broken(0, "no signature")
    roots = [_asn1_cert(c) for c in trust_roots]
    vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    sig = sigs[-1]
    try:
        status = await async_validate_pdf_signature(
            sig,
            signer_validation_context=vc,
            ts_validation_context=ValidationContext(
                trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
            ),
        )
    except (SignatureValidationError, ValueError, KeyError) as exc:
        return _broken(len(sigs), f"{type(exc).__name__}: {exc}")
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    ts = status.timestamp_validity
    cert = status.signing_cert
    return Validation(
        signatures=len(sigs),
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        timestamp=ts.timestamp if ts is not None and ts.intact and ts.valid else None,
        timestamp_trusted=bool(ts is not None and ts.trusted),
        signer=cert.subject.human_friendly if cert is not None else "",
        serial=format(cert.serial_number, "x") if cert is not None else "",
    )
