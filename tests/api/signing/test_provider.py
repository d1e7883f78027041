"""The seal without the contract flow: what happens with no timestamp authority (development
seals without one, production refuses), with one that does not answer, without a CA in
production; and validation refusing what it cannot trust."""

from __future__ import annotations

import io
import socket

import pytest
from reportlab.pdfgen import canvas

from api.signing import pades, pki
from api.signing.provider import LocalCaProvider
from tests.conftest import test_settings as settings_for


def _pdf(words: str = "hello") -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=True)
    page.drawString(100, 700, words)
    page.showPage()
    page.save()
    return out.getvalue()


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return port


async def test_development_seals_without_a_timestamp_production_refuses(kit):
    ca = pki.new_authority("Test CA")
    key, cert = pki.issue(ca, common_name="Acme seal", organization="Acme")
    done = await pades.seal(
        _pdf(),
        key=key,
        cert=cert,
        chain=[ca.cert],
        reason="test",
        location="here",
        name="Acme",
        tsa_url=None,
        tsa_timeout=5,
    )
    report = await pades.validate(done.pdf, [ca.cert])
    assert report.ok and report.timestamp is None and done.timestamp is None
    # The provider: no TSA outside production is allowed (a warning), in production refused.
    assert LocalCaProvider(kit)._tsa() is None
    production = settings_for(env="production")
    with pytest.raises(pki.SigningUnavailable, match="ANJU_SIGNING_TSA_URL"):
        LocalCaProvider(type(kit)(production, kit.cipher, kit.blind_index, kit.tokens))._tsa()
    # Production without a CA of its own refuses too (no development CA there).
    with pytest.raises(pki.SigningUnavailable, match="ANJU_SIGNING_CA_CERT"):
        pki.platform_ca(production)


async def test_a_timestamp_authority_that_does_not_answer_fails_the_seal():
    ca = pki.new_authority("Test CA")
    key, cert = pki.issue(ca, common_name="Acme seal", organization="Acme")
    with pytest.raises(pades.SealFailed):
        await pades.seal(
            _pdf(),
            key=key,
            cert=cert,
            chain=[ca.cert],
            reason="test",
            location="here",
            name="Acme",
            tsa_url=f"http://127.0.0.1:{_closed_port()}/tsa",
            tsa_timeout=2,
        )


async def test_the_ca_from_settings_issues_seals_that_chain_to_it(tsa):
    ca = pki.new_authority("Configured CA")
    settings = settings_for(signing_ca_cert=ca.cert_pem, signing_ca_key=pki.key_pem(ca.key))
    assert pki.platform_ca(settings).cert == ca.cert
    key, cert = pki.issue(pki.platform_ca(settings), common_name="Seal", organization="Org")
    done = await pades.seal(
        _pdf(),
        key=key,
        cert=cert,
        chain=[ca.cert],
        reason="r",
        location="l",
        name="Org",
        tsa_url=tsa.tsa_url,
        tsa_timeout=10,
    )
    # The timestamp is the loopback TSA's (issued by the test platform CA, not this one).
    dev_root = pki.platform_ca(settings_for()).cert
    report = await pades.validate(done.pdf, [ca.cert, dev_root])
    assert report.ok and report.timestamp is not None and report.timestamp_trusted
    assert done.timestamp is not None
    # Garbage and an unsigned file are not valid, and say so without raising.
    assert not (await pades.validate(b"not a pdf", [ca.cert])).ok
    unsigned = await pades.validate(_pdf(), [ca.cert])
    assert not unsigned.ok and unsigned.signatures == 0
