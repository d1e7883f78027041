"""The sale contract's document (商品房买卖合同) and its signing's completion certificate, as
PDF (reportlab, the built-in CID font STSong-Light; zh-CN or en).

A template is a title and clauses: text blocks with named placeholders such as ``{buyer}``
or ``{price_capitals}``. Filling is one pass of a fixed table of names over the template's
text (``fill``): a value is inserted as text and never read again, an unknown name is refused
when the template is saved (``unknown_placeholders``), and nothing is evaluated (no Jinja, no
format strings). The PDF is drawn with ``invariant`` on: the same facts give the same bytes,
so the SHA-256 the buyer consents to is the stored document's."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from api.money import format_money
from api.rmb import capitals

_FONT = "STSong-Light"
PLACEHOLDER = re.compile(r"\{([a-z_]{1,40})\}")
PLACEHOLDERS = (
    "number",
    "seller",
    "buyer",
    "buyer_id_number",
    "buyer_phone",
    "project",
    "building",
    "unit",
    "floor",
    "area",
    "price",
    "price_capitals",
    "date",
)

BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "zh-CN": (
        "商品房买卖合同",
        (
            "出卖人{seller}(甲方)与买受人{buyer}(乙方,证件号码{buyer_id_number})根据《中华人民"
            "共和国民法典》《城市房地产管理法》及有关规定,就乙方购买{project}{building}{unit}号"
            "房屋(第{floor}层,建筑面积{area}平方米)订立本合同。",
            "该房屋总价款为{price}(大写:人民币{price_capitals}),乙方按本合同所附付款计划支付。",
            "甲方应按约定将该房屋交付乙方;交付前房屋的毁损、灭失风险由甲方承担。",
            "乙方逾期付款、甲方逾期交付的违约责任,按双方另行约定及有关法律规定处理。",
            "本合同经乙方以短信验证码确认身份并同意本文件、甲方加盖电子印章后成立,"
            "自签署之日起生效。本合同电子文本与纸质文本具有同等法律效力。",
        ),
    ),
    "en": (
        "Commodity Housing Sale Contract",
        (
            "The seller {seller} (Party A) and the buyer {buyer} (Party B, ID number "
            "{buyer_id_number}) agree on Party B's purchase of unit {unit}, {building}, "
            "{project} (floor {floor}, gross area {area} m²) under the Civil Code of the PRC "
            "and the applicable rules.",
            "The total price is {price} (in capitals: RMB {price_capitals}), paid by Party B "
            "according to the payment plan of this contract.",
            "Party A delivers the unit to Party B as agreed; until delivery, Party A bears the "
            "risk of its damage or loss.",
            "Liability for late payment or late delivery follows the parties' further "
            "agreement and the applicable law.",
            "This contract is concluded when Party B has confirmed their identity and their "
            "consent to this document with an SMS code and Party A's electronic seal is "
            "applied, and takes effect on the day it is signed. Its electronic form has the "
            "same legal effect as a paper one.",
        ),
    ),
}

LABELS = {
    "zh-CN": {
        "number": "合同编号",
        "revision": "版本",
        "seller": "出卖人(甲方)",
        "buyer": "买受人(乙方)",
        "id_number": "证件号码",
        "phone": "联系电话",
        "unit": "房屋",
        "area": "建筑面积",
        "price": "总价款",
        "capitals": "大写",
        "plan": "付款计划",
        "due": "付款期限",
        "clauses": "合同条款",
        "extra": "补充条款",
        "sign": "乙方以短信验证码签署;甲方电子印章(PAdES)见本文件签名。",
        "sqm": "平方米",
        "cert_title": "电子签署完成证明",
        "document": "文件",
        "sha256": "文件SHA-256",
        "signed_sha256": "已签文件SHA-256",
        "signer": "签署人",
        "method": "身份确认方式",
        "at": "时间",
        "ip": "IP地址",
        "ua": "设备",
        "seal": "电子印章",
        "timestamp": "时间戳",
        "events": "事件链",
    },
    "en": {
        "number": "Contract no.",
        "revision": "Revision",
        "seller": "Seller (Party A)",
        "buyer": "Buyer (Party B)",
        "id_number": "ID number",
        "phone": "Phone",
        "unit": "Unit",
        "area": "Gross area",
        "price": "Total price",
        "capitals": "In capitals",
        "plan": "Payment plan",
        "due": "due",
        "clauses": "Clauses",
        "extra": "Further clauses",
        "sign": "Party B signs with an SMS code; Party A's electronic seal (PAdES) is this "
        "file's signature.",
        "sqm": "m²",
        "cert_title": "Signing Completion Certificate",
        "document": "Document",
        "sha256": "Document SHA-256",
        "signed_sha256": "Signed document SHA-256",
        "signer": "Signer",
        "method": "Identified by",
        "at": "Time",
        "ip": "IP address",
        "ua": "Device",
        "seal": "Seal",
        "timestamp": "Timestamp",
        "events": "Event chain",
    },
}


def unknown_placeholders(texts: list[str]) -> list[str]:
    """The ``{names}`` in ``texts`` that are not placeholders (refused when saving)."""
    return sorted({m.group(1) for t in texts for m in PLACEHOLDER.finditer(t)} - set(PLACEHOLDERS))


def fill(text: str, values: dict[str, str]) -> str:
    """One pass: each ``{name}`` of the table replaced by its value (inserted as text, never
    scanned again); anything else left as written."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class Installment:
    label: str
    amount: int  # minor units
    due: date


@dataclass(frozen=True, slots=True)
class ContractFacts:
    number: str
    revision: int
    seller: str
    buyer: str
    buyer_id_number: str  # in full: the contract names the buyer
    buyer_phone_mask: str
    project: str
    building: str
    unit: str
    floor: int
    gross_area: Decimal
    price: int
    currency: str
    plan: tuple[Installment, ...]
    title: str
    clauses: tuple[str, ...]
    extra_clauses: tuple[str, ...]
    day: date  # the day it is drawn, in the tenant's time zone


def values(f: ContractFacts, locale: str) -> dict[str, str]:
    return {
        "number": f.number,
        "seller": f.seller,
        "buyer": f.buyer,
        "buyer_id_number": f.buyer_id_number or "-",
        "buyer_phone": f.buyer_phone_mask or "-",
        "project": f.project,
        "building": f.building,
        "unit": f.unit,
        "floor": str(f.floor),
        "area": str(f.gross_area),
        "price": format_money(f.price, f.currency, locale),
        "price_capitals": capitals(f.price),
        "date": f.day.isoformat(),
    }


def _fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    _fonts()
    base = ParagraphStyle("body", fontName=_FONT, fontSize=10.5, leading=16, wordWrap="CJK")
    return {
        "title": ParagraphStyle(
            "title", parent=base, fontSize=17, leading=26, alignment=1, spaceAfter=10
        ),
        "head": ParagraphStyle("head", parent=base, fontSize=12, leading=20, spaceBefore=8),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=11),
    }


def _build(flow: list[Any], title: str) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=title,
        author="Anju",
        invariant=1,
        leftMargin=56,
        rightMargin=56,
        topMargin=56,
        bottomMargin=56,
    )
    doc.build(flow)
    return out.getvalue()


def _p(text: str, style: Any) -> Any:
    from reportlab.platypus import Paragraph

    return Paragraph(escape(text), style)


def render_contract(f: ContractFacts, locale: str) -> bytes:
    """The contract's PDF: the parties, the unit, the price in figures and in capitals, the
    payment plan, the clauses (template and further ones, placeholders filled)."""
    st = _styles()
    w = LABELS[locale]
    table = values(f, locale)

    def money(v: int) -> str:
        return format_money(v, f.currency, locale)

    flow = [
        _p(fill(f.title, table), st["title"]),
        _p(f"{w['number']}: {f.number}    {w['revision']}: {f.revision}", st["body"]),
        _p(f"{w['seller']}: {f.seller}", st["body"]),
        _p(f"{w['buyer']}: {f.buyer}", st["body"]),
        _p(f"{w['id_number']}: {f.buyer_id_number or '-'}", st["body"]),
        _p(f"{w['phone']}: {f.buyer_phone_mask or '-'}", st["body"]),
        _p(f"{w['unit']}: {f.project} {f.building} {f.unit}", st["body"]),
        _p(f"{w['area']}: {f.gross_area} {w['sqm']}", st["body"]),
        _p(f"{w['price']}: {money(f.price)}", st["body"]),
        _p(f"{w['capitals']}: 人民币{capitals(f.price)}", st["body"]),
        _p(w["plan"], st["head"]),
    ]
    for i, line in enumerate(f.plan, start=1):
        flow.append(
            _p(
                f"{i}. {line.label}: {money(line.amount)} ({capitals(line.amount)}), "
                f"{w['due']} {line.due.isoformat()}",
                st["body"],
            )
        )
    flow.append(_p(w["clauses"], st["head"]))
    for i, clause in enumerate(f.clauses, start=1):
        flow.append(_p(f"{i}. {fill(clause, table)}", st["body"]))
    if f.extra_clauses:
        flow.append(_p(w["extra"], st["head"]))
        for i, clause in enumerate(f.extra_clauses, start=1):
            flow.append(_p(f"{i}. {fill(clause, table)}", st["body"]))
    flow.append(_p(w["sign"], st["head"]))
    return _build(flow, f"{fill(f.title, table)} {f.number}")


def render_certificate(cert: dict[str, Any], locale: str, zone: ZoneInfo) -> bytes:
    """The completion certificate (the JSON document ``cert``) as a PDF page or more."""
    st = _styles()
    w = LABELS[locale]

    def at(value: str | None) -> str:
        if not value:
            return "-"
        t = datetime.fromisoformat(value).astimezone(zone)
        return f"{t:%Y-%m-%d %H:%M:%S} ({zone.key})"

    doc = cert["document"]
    seal = cert.get("seal") or {}
    flow = [
        _p(w["cert_title"], st["title"]),
        _p(f"{w['document']}: {doc['title']} {doc['number']} r{doc['revision']}", st["body"]),
        _p(f"{w['sha256']}: {doc['sha256']}", st["body"]),
        _p(f"{w['signed_sha256']}: {cert.get('signed_sha256') or '-'}", st["body"]),
    ]
    for signer in cert["signers"]:
        flow += [
            _p(f"{w['signer']}: {signer['name']} ({signer['role']})", st["head"]),
            _p(f"{w['method']}: {signer['identified_by']}", st["body"]),
            _p(f"{w['phone']}: {signer.get('phone') or '-'}", st["body"]),
            _p(f"{w['at']}: {at(signer.get('consented_at'))}", st["body"]),
            _p(f"{w['ip']}: {signer.get('ip') or '-'}", st["body"]),
            _p(f"{w['ua']}: {signer.get('user_agent') or '-'}", st["body"]),
        ]
    flow += [
        _p(w["seal"], st["head"]),
        _p(f"{seal.get('subject', '-')} / {seal.get('serial', '-')}", st["body"]),
        _p(f"{seal.get('provider', '-')}, {seal.get('algorithm', '-')}", st["body"]),
        _p(f"{w['timestamp']}: {at(seal.get('timestamp'))} {seal.get('tsa') or ''}", st["body"]),
        _p(w["events"], st["head"]),
    ]
    for e in cert["events"]:
        flow.append(
            _p(
                f"#{e['seq']} {at(e['at'])} {e['kind']} ip={e['ip'] or '-'} hash={e['hash']}",
                st["small"],
            )
        )
    return _build(flow, f"{w['cert_title']} {doc['number']}")
