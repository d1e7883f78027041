"""A file at a signed URL that expires: receipts (``api/payment/receipts.py``), subscription
agreements (``api/sales/agreement.py``) and channel visit codes as QR images
(``api/sales/attribution.py``) are served this way.

The URL is ``/<kind>/<tenant slug>/<object id>.<ext>?[locale=..&]exp=..&sig=..``; the signature
is the tenant's keyed hash (the blind index of ``api/security/kit.py``, scoped to the tenant,
with a column of its own per kind, so a receipt's signature never opens an agreement) of the
object id, locale and expiry. The query string is the credential: no session is needed to open
the link in a browser or a PDF viewer, and it stops working at its expiry. The file is drawn
when it is downloaded, from the object as it is then; an unknown tenant, object or locale, and
a bad or expired signature all answer 404 alike."""

from __future__ import annotations

import base64
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.notify.templates import locale_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from api.security.kit import SecurityKit
    from tenants.registry import TenantCache, TenantInfo
    from tenants.sessions import TenantDatabase

# (session, tenant, kit, object id, locale) -> the file; None: no such object (404)
Render = Callable[["AsyncSession", "TenantInfo", "SecurityKit", str, str], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class SignedLink:
    """One kind of file served at signed, expiring URLs."""

    kind: str  # the URL's first segment ("receipts")
    column: str  # the blind-index column of its signatures ("receipt_url")
    ext: str  # "pdf", "svg"
    media_type: str
    ttl: int  # seconds a URL is valid
    render: Render
    locales: Collection[str] | None = None  # drawn in these locales; None: no locale
    cache_control: str = "private, no-store"

    def signature(
        self, kit: SecurityKit, tenant_id: str, object_id: str, locale: str, exp: int
    ) -> str:
        digest = kit.blind_index.digest(
            f"{object_id}|{locale}|{exp}", scope=str(tenant_id), column=self.column
        )
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def url(
        self,
        base: str,
        kit: SecurityKit,
        tenant: TenantInfo,
        object_id: uuid.UUID,
        locale: str = "",
        now: float | None = None,
    ) -> str:
        locale = locale_of(locale) if self.locales is not None else ""
        exp = int((now or time.time()) + self.ttl)
        sig = self.signature(kit, tenant.id, str(object_id), locale, exp)
        query = f"locale={locale}&" if self.locales is not None else ""
        return f"{base}/{self.kind}/{tenant.slug}/{object_id}.{self.ext}?{query}exp={exp}&sig={sig}"

    def valid(
        self, kit: SecurityKit, tenant_id: str, object_id: str, locale: str, exp: str, sig: str
    ) -> bool:
        try:
            expires = int(exp)
        except ValueError:
            return False
        if expires < time.time():
            return False
        if (locale not in self.locales) if self.locales is not None else locale != "":
            return False
        expected = self.signature(kit, tenant_id, object_id, locale, expires)
        return hmac.compare_digest(expected, sig)

    def route(self, cache: TenantCache, db: TenantDatabase, kit: SecurityKit) -> Route:
        async def serve(request: Request) -> Response:
            tenant = await cache.get(request.path_params["tenant"])
            object_id, q = request.path_params["id"], request.query_params
            locale = q.get("locale", "")
            if (
                tenant is None
                or not tenant.active
                or not self.valid(
                    kit, tenant.id, object_id, locale, q.get("exp", ""), q.get("sig", "")
                )
            ):
                return Response("not found", status_code=404)
            async with db.session(tenant) as session:
                body = await self.render(session, tenant, kit, object_id, locale)
            if body is None:
                return Response("not found", status_code=404)
            return Response(
                body, media_type=self.media_type, headers={"Cache-Control": self.cache_control}
            )

        return Route(f"/{self.kind}/{{tenant}}/{{id}}.{self.ext}", serve, name=f"{self.kind}_file")
