"""Notification texts in Chinese and English (one table; the recipient's locale picks)."""

from __future__ import annotations

from typing import Any

from api.money import format_money
from api.notify.models import JsonObject

LOCALES = ("zh-CN", "en")

STATUS = {
    "zh-CN": {
        "planned": "未推出",
        "available": "可售",
        "on_hold": "保留中",
        "reserved": "已预订",
        "subscribed": "已认购",
        "contracted": "已签约",
        "sold": "已售",
        "delivered": "已交付",
        "active": "在售",
        "under_contract": "已签约",
        "withdrawn": "已下架",
        "expired": "已过期",
    },
    "en": {
        "planned": "planned",
        "available": "available",
        "on_hold": "on hold",
        "reserved": "reserved",
        "subscribed": "subscribed",
        "contracted": "contracted",
        "sold": "sold",
        "delivered": "delivered",
        "active": "for sale",
        "under_contract": "under contract",
        "withdrawn": "withdrawn",
        "expired": "expired",
    },
}

# key -> locale -> (title, body), formatted with the notification's params.
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "unit.status": {
        "zh-CN": ("关注的房源有新状态", "{number} 现为{status}"),
        "en": ("A unit you follow changed", "Unit {number} is now {status}"),
    },
    "unit.price": {
        "zh-CN": ("关注的房源调价", "{number} 现价 {price}"),
        "en": ("A unit you follow has a new price", "Unit {number} is now {price}"),
    },
    "listing.status": {
        "zh-CN": ("关注的二手房有新状态", "{community} {rooms}室 现为{status}"),
        "en": ("A listing you follow changed", "{community}, {rooms} rooms: now {status}"),
    },
    "listing.price": {
        "zh-CN": ("关注的二手房调价", "{community} {rooms}室 现价 {price}"),
        "en": ("A listing you follow has a new price", "{community}, {rooms} rooms: {price}"),
    },
    "hold.expiring": {
        "zh-CN": ("保留即将到期", "{number} 的保留将在 {minutes} 分钟后到期"),
        "en": ("Your hold ends soon", "Your hold on unit {number} ends in {minutes} minutes"),
    },
    "followup.due": {
        "zh-CN": ("跟进提醒", "{time} 跟进客户 {client} {note}"),
        "en": ("Follow-up due", "{time}: follow up with {client}. {note}"),
    },
    "lead.assigned": {
        "zh-CN": ("新客户分配给你", "{client} ({source}) 已分配给你, 请尽快联系"),
        "en": ("A new lead is yours", "{client} ({source}) was assigned to you: call them soon"),
    },
    "client.hot": {
        "zh-CN": ("客户意向升温", "{client} 近期行为活跃, 建议评为 A 级, 请尽快跟进"),
        "en": ("A client is warming up", "{client} has been very active: suggested grade A"),
    },
    "client.repeat": {
        "zh-CN": ("老客户再次来访", "{client} 再次通过 {source} 咨询, 已合并到你的客户记录"),
        "en": (
            "A client came back",
            "{client} came back through {source}: merged into your record",
        ),
    },
    "lead.offered": {
        "zh-CN": ("新客户待认领", "{client} ({source}) {minutes} 分钟内可认领"),
        "en": ("A lead to claim", "{client} ({source}): claim within {minutes} minutes"),
    },
    "payment.received": {
        "zh-CN": ("收到定金", "{number} 定金 {amount} 已支付"),
        "en": ("Deposit received", "Deposit for unit {number}: {amount} paid"),
    },
    "payment.refunded": {
        "zh-CN": ("定金已退回", "{number} 定金 {amount} 已退回"),
        "en": ("Deposit refunded", "Deposit for unit {number}: {amount} refunded ({reason})"),
    },
    "mortgage.documents_missing": {
        "zh-CN": ("按揭资料待补", "{number} {bank} 按揭尚缺 {count} 项资料: {missing}"),
        "en": (
            "Mortgage documents missing",
            "{number} ({bank}): {count} documents missing: {missing}",
        ),
    },
    "bill.issued": {
        "zh-CN": ("新账单", "{title} {amount}, 请于 {due} 前缴纳"),
        "en": ("New bill", "{title}: {amount}, due {due}"),
    },
    "bill.due": {
        "zh-CN": ("账单即将到期", "{title} 尚欠 {left}, 将于 {due} 到期"),
        "en": ("Bill due soon", "{title}: {left} left to pay by {due}"),
    },
    "bill.paid": {
        "zh-CN": ("缴费成功", "{title} 已缴 {amount}, 尚欠 {left}"),
        "en": ("Payment received", "{title}: {amount} paid, {left} left"),
    },
    "bill.refunded": {
        "zh-CN": ("款项已退回", "{title} 已结清, 多付的 {amount} 已退回"),
        "en": ("Payment refunded", "{title} is settled: the extra {amount} was refunded"),
    },
    "notice": {
        "zh-CN": ("{title}", "{text}"),
        "en": ("{title}", "{text}"),
    },
}


def money(minor: int | None, currency: str) -> JsonObject | str:
    """A money parameter of a notification: stored as it is (minor units and currency) and
    shown by ``render`` in the recipient's language (``api.money.format_money``)."""
    return "-" if minor is None else {"minor_units": int(minor), "currency": currency.upper()}


def _shown(value: Any, loc: str) -> Any:
    if isinstance(value, dict) and value.keys() == {"minor_units", "currency"}:
        return format_money(value["minor_units"], value["currency"], loc)
    return value


def locale_of(value: str | None) -> str:
    value = (value or "").replace("_", "-")
    if value.lower().startswith("en"):
        return "en"
    return "zh-CN"


def render(key: str, locale: str, params: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of template ``key`` in ``locale``; statuses are shown in that language."""
    loc = locale_of(locale)
    title, body = TEMPLATES[key][loc]
    shown = {k: _shown(v, loc) for k, v in params.items()}
    if "status" in shown:
        shown["status"] = STATUS[loc].get(str(shown["status"]), str(shown["status"]))
    return title.format(**shown), body.format(**shown)
