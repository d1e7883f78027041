"""A loopback RFC 3161 timestamp authority: HTTP POST of a ``TimeStampReq`` (DER), answered
with a ``TimeStampResp`` signed by pyHanko's in-process timestamper, under a TSA certificate
(RSA, critical timeStamping EKU) issued by the platform CA of the test settings. The gateway's
signing code calls it by URL (``ANJU_SIGNING_TSA_URL``), as it would a real TSA."""

from __future__ import annotations

from asn1crypto import keys, tsp
from asn1crypto import x509 as a509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.settings import Settings
from api.signing import pki
from tests.loopback import LoopbackServer


def _stamper(settings: Settings) -> DummyTimeStamper:
    ca = pki.platform_ca(settings)
    key, cert = pki.issue(
        ca,
        common_name="Anju test TSA",
        organization="Anju tests",
        timestamping=True,
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    key_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return DummyTimeStamper(
        tsa_cert=a509.Certificate.load(der),
        tsa_key=keys.PrivateKeyInfo.load(key_der),
        certs_to_embed=[a509.Certificate.load(ca.cert.public_bytes(serialization.Encoding.DER))],
    )


class LoopbackTsa(LoopbackServer):
    def __init__(self, settings: Settings) -> None:
        stamper = _stamper(settings)
        self.requests = 0

        async def stamp(request: Request) -> Response:
            body = await request.body()
            try:
                req = tsp.TimeStampReq.load(body)
                req.native  # noqa: B018  (parse it all now: a bad request is a 400)
            except Exception:
                return Response("bad request", status_code=400)
            self.requests += 1
            resp = stamper.request_tsa_response(req)
            return Response(resp.dump(), media_type="application/timestamp-reply")

        app = Starlette(routes=[Route("/tsa", stamp, methods=["POST"])])
        super().__init__(app, label="tsa", log_level="warning")

    @property
    def tsa_url(self) -> str:
        return f"{self.url}/tsa"
