"""The payment domain's HTTP routes: Stripe's webhook (``api/payment/webhook.py`` says what it
answers) and receipts as PDF at their signed, expiring URL (``api/payment/receipts.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.payment import receipts, webhook
from api.security.kit import SecurityKit
from api.settings import Settings
from tenants.registry import TenantCache
from tenants.sessions import TenantDatabase

WEBHOOK_PATH = "/webhooks/stripe"
Endpoint = Callable[[Request], Awaitable[Response]]


def webhook_endpoint(engine: AsyncEngine, settings: Settings) -> Endpoint:
    async def stripe_webhook(request: Request) -> Response:
        return await webhook.receive(request, engine, settings)

    return stripe_webhook


def receipt_endpoint(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> Endpoint:
    async def receipt_pdf(request: Request) -> Response:
        """A receipt's PDF; the signed, expiring query string is the credential."""
        tenant = await cache.get(request.path_params["tenant"])
        receipt_id, q = request.path_params["receipt"], request.query_params
        locale = q.get("locale", "")
        if (
            tenant is None
            or not tenant.active
            or not receipts.valid(
                kit, tenant.id, receipt_id, locale, q.get("exp", ""), q.get("sig", "")
            )
        ):
            return Response("not found", status_code=404)
        async with db.session(tenant) as session:
            body = await receipts.pdf_of(session, tenant, receipt_id, locale)
        if body is None:
            return Response("not found", status_code=404)
        return Response(
            body, media_type="application/pdf", headers={"Cache-Control": "private, max-age=300"}
        )

    return receipt_pdf


def routes(
    engine: AsyncEngine,
    settings: Settings,
    cache: TenantCache,
    db: TenantDatabase,
    kit: SecurityKit,
) -> list[Route]:
    return [
        Route(WEBHOOK_PATH, webhook_endpoint(engine, settings), methods=["POST"]),
        Route("/receipts/{tenant}/{receipt}.pdf", receipt_endpoint(cache, db, kit)),
    ]
