"""The sales domain's HTTP route: a subscription's agreement as PDF at its signed, expiring
URL (``api/sales/agreement.py``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.payment.http import Endpoint
from api.sales import agreement
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


def routes(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> list[Route]:
    return [Route("/agreements/{tenant}/{subscription}.pdf", agreement_endpoint(cache, db, kit))]
