"""The sales domain's HTTP routes: a subscription's agreement as PDF and a channel
registration's visit code as a QR image, each at its signed, expiring URL
(``api/signed_link.py``)."""

from __future__ import annotations

from starlette.routing import Route

from api.sales import agreement, attribution
from api.security.kit import SecurityKit
from tenants.registry import TenantCache
from tenants.sessions import TenantDatabase


def routes(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> list[Route]:
    return [agreement.LINK.route(cache, db, kit), attribution.QR_LINK.route(cache, db, kit)]
