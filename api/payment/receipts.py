"""Receipts as PDF, in Chinese or English, at a signed URL that expires.

The URL (``/receipts/<tenant>/<receipt id>.pdf?locale=..&exp=..&sig=..``) is handed out by the
GraphQL field ``Receipt.pdfUrl`` to the payer or to finance; the signature is an HMAC of the
tenant, receipt, locale and expiry with the tenant's keyed hash (no session needed to
download it in a browser or a PDF viewer)."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from api.money import format_money
from api.notify.templates import locale_of
from api.signed_link import SignedLink

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tenants.registry import TenantInfo

TTL = 15 * 60
_FONT = "STSong-Light"  # Adobe's Chinese CID font: built into every PDF reader
LABELS = {
    "zh-CN": {
        "title": "收据",
        "number": "收据编号",
        "date": "日期",
        "payer": "付款人",
        "bill": "账单",
        "item": "项目",
        "period": "期间",
        "amount": "金额",
        "paid_via": "支付方式",
        "stripe": "在线支付 (Stripe)",
        "left": "尚欠",
    },
    "en": {
        "title": "Receipt",
        "number": "Receipt no.",
        "date": "Date",
        "payer": "Payer",
        "bill": "Bill",
        "item": "Item",
        "period": "Period",
        "amount": "Amount",
        "paid_via": "Paid via",
        "stripe": "Online payment (Stripe)",
        "left": "Left to pay",
    },
}


def _fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))


def render(
    *,
    company: str,
    number: str,
    issued_at: datetime,
    payer: str,
    bill_number: str,
    title: str,
    period: str,
    amount: int,
    left: int,
    currency: str,
    locale: str,
    zone: ZoneInfo,
) -> bytes:
    """The receipt's PDF; its date and time in ``zone`` (the tenant's), amounts to the cent."""
    from reportlab.lib.pagesizes import A5
    from reportlab.pdfgen import canvas

    _fonts()
    locale = locale_of(locale)
    words = LABELS[locale]
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A5, invariant=True)
    page.setTitle(f"{words['title']} {number}")
    width, height = A5
    y = height - 60
    page.setFont(_FONT, 18)
    page.drawString(40, y, company)
    page.setFont(_FONT, 14)
    page.drawRightString(width - 40, y, words["title"])
    y -= 40
    page.setFont(_FONT, 10)
    when = f"{issued_at.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"
    rows = [
        (words["number"], number),
        (words["date"], when),
        (words["payer"], payer),
        (words["bill"], bill_number),
        (words["item"], title),
        (words["period"], period or "-"),
        (words["amount"], format_money(amount, currency, locale)),
        (words["left"], format_money(left, currency, locale)),
        (words["paid_via"], words["stripe"]),
    ]
    for label, value in rows:
        page.drawString(40, y, label)
        page.drawString(150, y, value)
        y -= 20
    page.showPage()
    page.save()
    return out.getvalue()


async def pdf_of(
    session: AsyncSession, tenant: TenantInfo, receipt_id: str, locale: str
) -> bytes | None:
    """The PDF of a receipt of this tenant (None: no such receipt)."""
    from api.identity.models import Account
    from api.payment.models import Bill, Receipt

    try:
        rid = uuid.UUID(receipt_id)
    except ValueError:
        return None
    receipt = await session.get(Receipt, rid)
    if receipt is None:
        return None
    bill = await session.get(Bill, receipt.bill_id) if receipt.bill_id else None
    payer = await session.get(Account, receipt.payer_id) if receipt.payer_id else None
    return render(
        company=tenant.name,
        number=receipt.number,
        issued_at=receipt.issued_at,
        payer=(payer.name if payer else "") or "-",
        bill_number=bill.number if bill else "-",
        title=bill.title if bill else "-",
        period=bill.period if bill else "",
        amount=receipt.amount,
        left=(bill.amount - bill.paid_amount) if bill else 0,
        currency=receipt.currency,
        locale=locale,
        zone=tenant.zone,
    )


# Served at /receipts/<tenant>/<receipt id>.pdf; cacheable a while: a receipt never changes.
LINK = SignedLink(
    kind="receipts",
    column="receipt_url",
    ext="pdf",
    media_type="application/pdf",
    ttl=TTL,
    render=lambda session, tenant, kit, rid, locale: pdf_of(session, tenant, rid, locale),
    locales=LABELS,
    cache_control="private, max-age=300",
)
