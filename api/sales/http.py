"""The sales domain's HTTP route: a subscription's agreement as PDF at its signed, expiring
URL (``api/sales/agreement.py``, ``api/pdflink.py``)."""

from __future__ import annotations

from starlette.routing import Route

from api.sales import agreement
from api.security.kit import SecurityKit
from tenants.registry import TenantCache
from tenants.sessions import TenantDatabase


def routes(cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> list[Route]:
    return [agreement.LINK.route(cache, db, kit)]
