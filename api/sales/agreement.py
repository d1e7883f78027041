"""The subscription agreement (认购协议书) as PDF, in Chinese or English, at a signed URL that
expires (the way receipts are served: ``api/payment/receipts.py``).

The URL (``/agreements/<tenant>/<subscription id>.pdf?locale=..&exp=..&sig=..``) is handed
out by ``Subscription.agreementUrl`` (``sales.subscription.read``, an active subscription the
caller may see); the signature is an HMAC of the tenant, subscription, locale and expiry with
the tenant's keyed hash. The PDF is drawn from the subscription as it is when downloaded:
the parties (the buyer's phone and ID number masked, as lists show them), the unit, the
prices to the cent and the signing deadline in the tenant's time zone."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from api.money import format_money
from api.notify.templates import locale_of
from api.signed_link import SignedLink

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tenants.registry import TenantInfo

TTL = 15 * 60
_FONT = "STSong-Light"  # Adobe's Chinese CID font: built into reportlab and every PDF reader
LABELS = {
    "zh-CN": {
        "title": "商品房认购协议书",
        "number": "认购编号",
        "seller": "出卖人(甲方)",
        "buyer": "认购人(乙方)",
        "phone": "联系电话",
        "id_number": "证件号码",
        "agent": "置业顾问",
        "project": "项目",
        "unit": "房号",
        "floor": "楼层",
        "area": "建筑面积",
        "list_price": "标价",
        "discount": "优惠",
        "agreed_price": "认购总价",
        "deposit": "定金",
        "deadline": "签约期限",
        "clause": "乙方须于签约期限前与甲方签订商品房买卖合同,逾期视为放弃认购。",
        "sqm": "平方米",
    },
    "en": {
        "title": "Subscription Agreement",
        "number": "Subscription no.",
        "seller": "Seller (Party A)",
        "buyer": "Buyer (Party B)",
        "phone": "Phone",
        "id_number": "ID number",
        "agent": "Sales agent",
        "project": "Project",
        "unit": "Unit",
        "floor": "Floor",
        "area": "Gross area",
        "list_price": "List price",
        "discount": "Discount",
        "agreed_price": "Agreed price",
        "deposit": "Deposit",
        "deadline": "Sign the contract by",
        "clause": "Party B signs the sale contract with Party A by the deadline; "
        "otherwise the subscription lapses.",
        "sqm": "m²",
    },
}


@dataclass(frozen=True, slots=True)
class Facts:
    """What the agreement shows (personal data already masked)."""

    company: str
    number: str
    buyer: str
    phone_mask: str
    id_mask: str
    agent: str
    project: str
    building: str
    unit: str
    floor: int
    gross_area: Decimal
    list_price: int
    discount: int
    discount_pct: Decimal
    agreed_price: int
    deposit: int | None
    currency: str
    sign_deadline: datetime


def _fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))


def render(f: Facts, *, locale: str, zone: ZoneInfo) -> bytes:
    """The agreement's PDF; amounts to the cent, the deadline in ``zone`` (the tenant's)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    _fonts()
    locale = locale_of(locale)
    w = LABELS[locale]
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, invariant=True)
    page.setTitle(f"{w['title']} {f.number}")
    width, height = A4
    y = height - 70
    page.setFont(_FONT, 18)
    page.drawCentredString(width / 2, y, w["title"])
    y -= 36
    page.setFont(_FONT, 11)

    def money(v: int) -> str:
        return format_money(v, f.currency, locale)

    rows = [
        (w["number"], f.number),
        (w["seller"], f.company),
        (w["buyer"], f.buyer),
        (w["phone"], f.phone_mask or "-"),
        (w["id_number"], f.id_mask or "-"),
        (w["agent"], f.agent or "-"),
        (w["project"], f.project),
        (w["unit"], f"{f.building} {f.unit}"),
        (w["floor"], str(f.floor)),
        (w["area"], f"{f.gross_area} {w['sqm']}"),
        (w["list_price"], money(f.list_price)),
        (w["discount"], f"{money(f.discount)} ({f.discount_pct}%)"),
        (w["agreed_price"], money(f.agreed_price)),
        (w["deposit"], money(f.deposit) if f.deposit is not None else "-"),
        (
            w["deadline"],
            f"{f.sign_deadline.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})",
        ),
    ]
    for label, value in rows:
        page.drawString(60, y, label)
        page.drawString(200, y, value)
        y -= 22
    y -= 12
    page.setFont(_FONT, 10)
    page.drawString(60, y, w["clause"])
    page.showPage()
    page.save()
    return out.getvalue()


def number_of(sub_id: uuid.UUID) -> str:
    """The agreement's number: the subscription id's last 12 hex digits, upper case."""
    return sub_id.hex[-12:].upper()


async def pdf_of(
    session: AsyncSession, tenant: TenantInfo, sub_id: str, locale: str
) -> bytes | None:
    """The agreement of an active subscription of this tenant (None: no such subscription,
    or not active)."""
    from api.client.models import Client
    from api.identity.models import Account
    from api.payment.models import Payment
    from api.project.models import Building, Project
    from api.sales.models import Subscription
    from api.unit.models import Unit

    try:
        sid = uuid.UUID(sub_id)
    except ValueError:
        return None
    sub = await session.get(Subscription, sid)
    if sub is None or sub.status != "active" or sub.sign_deadline is None:
        return None
    unit = await session.get(Unit, sub.unit_id)
    client = await session.get(Client, sub.client_id)
    project = await session.get(Project, sub.project_id)
    if unit is None or client is None or project is None:
        return None
    building = await session.get(Building, unit.building_id)
    agent = await session.get(Account, sub.agent_id)
    deposit = await session.get(Payment, sub.deposit_id) if sub.deposit_id else None
    facts = Facts(
        company=tenant.name,
        number=number_of(sub.id),
        buyer=client.name,
        phone_mask=client.phone_mask,
        id_mask=client.id_number_mask,
        agent=agent.name if agent else "",
        project=project.name,
        building=building.name if building else "",
        unit=unit.number,
        floor=unit.floor,
        gross_area=unit.gross_area,
        list_price=sub.list_price,
        discount=sub.discount,
        discount_pct=sub.discount_pct,
        agreed_price=sub.agreed_price,
        deposit=deposit.amount if deposit is not None and deposit.status == "paid" else None,
        currency=sub.currency,
        sign_deadline=sub.sign_deadline,
    )
    return render(facts, locale=locale, zone=tenant.zone)


# Served at /agreements/<tenant>/<subscription id>.pdf; drawn anew at each download.
LINK = SignedLink(
    kind="agreements",
    column="agreement_url",
    ext="pdf",
    media_type="application/pdf",
    ttl=TTL,
    render=lambda session, tenant, kit, sid, locale: pdf_of(session, tenant, sid, locale),
    locales=LABELS,
)
