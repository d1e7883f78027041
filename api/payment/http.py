"""The payment domain's HTTP routes: Stripe's webhook (``api/payment/webhook.py`` says what it
answers) and receipts as PDF at their signed, expiring URL (``api/payment/receipts.py``,
``api/signed_link.py``)."""

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


def routes(
    engine: AsyncEngine,
    settings: Settings,
    cache: TenantCache,
    db: TenantDatabase,
    kit: SecurityKit,
) -> list[Route]:
    return [
        Route(WEBHOOK_PATH, webhook_endpoint(engine, settings), methods=["POST"]),
        receipts.LINK.route(cache, db, kit),
    ]
