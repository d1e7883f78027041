"""The sales domain's HTTP route: a subscription's agreement as PDF at its signed, expiring
URL (``api/sales/agreement.py``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.payment.http import Endpoint
from api.sales import agreement, attribution
from api.security.kit import SecurityKit
from tenants.registry import TenantCache
from tenants.sessions import TenantDatabase


def agreement_endpoint(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> Endpoint:
    async def agreement_pdf(request: Request) -> Response:
        """An agreement's PDF; the signed, expiring query string is the credential."""
        tenant = await cache.get(request.path_params["tenant"])
        sub_id, q = request.path_params["subscription"], request.query_params
        locale = q.get("locale", "")
        if (
            tenant is None
            or not tenant.active
            or not agreement.valid(
                kit, tenant.id, sub_id, locale, q.get("exp", ""), q.get("sig", "")
            )
        ):
            return Response("not found", status_code=404)
        async with db.session(tenant) as session:
            body = await agreement.pdf_of(session, tenant, sub_id, locale)
        if body is None:
            return Response("not found", status_code=404)
        return Response(
            body, media_type="application/pdf", headers={"Cache-Control": "private, no-store"}
        )

    return agreement_pdf


def visit_qr_endpoint(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> Endpoint:
    async def visit_qr_svg(request: Request) -> Response:
        """A registration's visit code as a QR image (SVG); the signed, expiring query
        string is the credential (``api/sales/attribution.py``)."""
        tenant = await cache.get(request.path_params["tenant"])
        reg_id, q = request.path_params["registration"], request.query_params
        if (
            tenant is None
            or not tenant.active
            or not attribution.qr_url_valid(
                kit, tenant.id, reg_id, q.get("exp", ""), q.get("sig", "")
            )
        ):
            return Response("not found", status_code=404)
        async with db.session(tenant) as session:
            body = await attribution.svg_of(session, kit, reg_id)
        if body is None:
            return Response("not found", status_code=404)
        return Response(
            body, media_type="image/svg+xml", headers={"Cache-Control": "private, no-store"}
        )

    return visit_qr_svg


def routes(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> list[Route]:
    return [
        Route("/agreements/{tenant}/{subscription}.pdf", agreement_endpoint(cache, db, kit)),
        Route("/visit-codes/{tenant}/{registration}.svg", visit_qr_endpoint(cache, db, kit)),
    ]
