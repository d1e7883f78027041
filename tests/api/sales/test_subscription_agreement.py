"""The subscription agreement (认购协议书) as PDF: read back with pypdf, in Chinese and English;
the buyer's phone and ID number masked; the agreed price to the cent; the deadline in the
company's time zone; a signed link that a tampered, expired or another tenant's copy cannot
open; none for a subscription that is not active."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pypdf

from tests.api.client.helpers import CREATE
from tests.api.sales.helpers import data
from tests.api.sales.subscription_helpers import (
    one_sub,
    reserve,
    subscribed,
    withdraw_sub,
)
from tests.api.unit.helpers import inventory
from tests.conftest import gql

PHONE, ID_NUMBER = "+8613912345678", "110101199003071234"


def _text(pdf: bytes) -> str:
    return pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


async def test_the_agreement_pdf_shows_the_parties_masked_the_price_and_the_deadline(
    client, make_tenant, member
):
    tenant = await make_tenant(name="安居地产")
    slug = tenant.slug
    inv = await inventory(client, slug, floors=1, per_floor=1, project_name="海港一号")
    unit = inv["units"][0]["id"]
    _, agent = await member(tenant, ["agent"], name="李经理")
    res = await gql(
        client,
        CREATE,
        {"input": {"name": "张三", "phone": PHONE, "idNumber": ID_NUMBER}},
        tenant=slug,
        token=agent,
    )
    buyer = data(res, "createClient")["client"]["id"]
    await reserve(client, slug, unit)
    sub = await subscribed(client, slug, unit, buyer, agent, discountAmount=123_456)
    got = await one_sub(client, slug, sub["id"], agent)
    url = got["agreementUrl"]
    assert f"/agreements/{slug}/{sub['id']}.pdf?locale=zh-CN&" in url
    pdf = await client.get(url)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    words = _text(pdf.content)
    deadline = datetime.fromisoformat(sub["signDeadline"]).astimezone(ZoneInfo("Asia/Shanghai"))
    for expected in (
        "商品房认购协议书",
        "安居地产",
        "张三",
        "+86139****5678",
        "110" + "*" * 11 + "1234",
        "李经理",
        "海港一号",
        "B1 101",
        "89.50",
        "¥3,000,000.00",
        "¥1,234.56",
        "¥2,998,765.44",
        f"{deadline:%Y-%m-%d} 23:59 (Asia/Shanghai)",
    ):
        assert expected in words, (expected, words)
    # Unmasked personal data is not in the file.
    raw = pdf.content.decode("latin-1")
    for secret in ("13912345678", ID_NUMBER):
        assert secret not in words and secret not in raw
    # English.
    en = await one_sub(client, slug, sub["id"], agent, locale="en")
    words = _text((await client.get(en["agreementUrl"])).content)
    for expected in ("Subscription Agreement", "CN¥2,998,765.44", "Agreed price"):
        assert expected in words, (expected, words)
    # A tampered, expired or another tenant's link is a plain 404.
    assert (await client.get(url.replace("locale=zh-CN", "locale=en"))).status_code == 404
    assert (await client.get(url.replace(url.split("sig=")[1], "x" * 24))).status_code == 404
    assert (await client.get(url.replace("exp=", "exp=1"))).status_code == 404
    other = await make_tenant()
    assert (await client.get(url.replace(f"/{slug}/", f"/{other.slug}/"))).status_code == 404
    # Withdrawn: no link, and the old link opens nothing.
    assert (await withdraw_sub(client, slug, sub["id"], token=agent))["__typename"] == (
        "WithdrawSubscriptionPayload"
    )
    assert (await one_sub(client, slug, sub["id"], agent))["agreementUrl"] is None
    assert (await client.get(url)).status_code == 404


async def test_the_agreement_link_needs_the_read_permission(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    unit = (await inventory(client, slug, floors=1, per_floor=1))["units"][0]["id"]
    res = await gql(client, CREATE, {"input": {"name": "Buyer", "phone": PHONE}}, tenant=slug)
    buyer = data(res, "createClient")["client"]["id"]
    await reserve(client, slug, unit)
    sub = await subscribed(client, slug, unit, buyer)
    _, owner = await member(tenant, ["owner"])
    res = await gql(
        client,
        "query($id: ID!) { salesSubscription(id: $id) { id agreementUrl } }",
        {"id": sub["id"]},
        tenant=slug,
        token=owner,
    )
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN", res
