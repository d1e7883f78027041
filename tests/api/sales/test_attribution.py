"""Buyer attribution without face capture: a channel registers a client (报备) and gets a visit
code (and a signed QR); site staff enter or scan it; the protection window decides who holds
the client; a second channel within it opens a dispute with the evidence, decided by a
manager; refusals are typed and change nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update

from api.client.models import Client
from api.sales.attribution_models import AttributionDispute, ChannelRegistration
from tenants.sessions import TenantDatabase
from tests.api.sales.commission_helpers import (
    DISPUTES,
    REGISTRATIONS,
    RESOLVE,
    UPDATE_CHANNEL,
    channel,
    register,
    set_window,
    visit,
)
from tests.api.sales.helpers import data
from tests.api.unit.helpers import inventory
from tests.conftest import gql

PHONE = "13912345678"


async def _rows(engine, tenant, model):
    async with TenantDatabase(engine).session(tenant) as session:
        return list((await session.scalars(select(model))).all())


async def _shift(engine, tenant, reg_id: str, hours: int) -> None:
    """Move a registration ``hours`` into the past (its registration and expiry)."""
    async with TenantDatabase(engine).session(tenant) as session:
        await session.execute(
            update(ChannelRegistration)
            .where(ChannelRegistration.id == uuid.UUID(reg_id))
            .values(
                registered_at=ChannelRegistration.registered_at - timedelta(hours=hours),
                expires_at=ChannelRegistration.expires_at - timedelta(hours=hours),
            )
        )
        await session.commit()


async def test_registration_window_visit_and_dispute(client, make_tenant, member, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"], name="驻场")
    manager_id, manager = await member(tenant, ["manager"], name="经理")
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    a = await channel(client, slug, "渠道甲")
    b = await channel(client, slug, "张三", kind="BROKER")

    # Channel A registers a new client: one CRM record (phone encrypted, shown masked).
    got = await register(client, slug, a["id"], project, "陈先生", PHONE, token=agent)
    assert got["__typename"] == "ChannelRegistrationPayload" and got["clientCreated"], got
    reg_a = got["registration"]
    assert got["dispute"] is None and reg_a["status"] == "REGISTERED"
    assert reg_a["phone"] == "+86139****5678" and len(reg_a["code"]) == 8
    assert reg_a["qrPayload"].startswith(f"ANJU-VISIT:{slug}:{reg_a['code']}:")
    [row] = await _rows(engine, tenant, Client)
    assert row.phone_enc is not None and PHONE not in repr(row.phone_enc)
    [reg] = await _rows(engine, tenant, ChannelRegistration)
    assert reg.expires_at - reg.registered_at == timedelta(hours=72)  # the default window

    # The same channel again: CONFLICT; nothing more is written.
    again = await register(
        client, slug, a["id"], project, "陈先生", "+86 139 1234 5678", token=agent
    )
    assert (again["__typename"], again["field"]) == ("ConflictError", "phone"), again

    # Channel B within A's window: DISPUTED, with the evidence of both and who came first.
    got = await register(client, slug, b["id"], project, "陈", PHONE)
    assert got["__typename"] == "ChannelRegistrationPayload" and not got["clientCreated"], got
    reg_b, dispute = got["registration"], got["dispute"]
    assert reg_b["status"] == "DISPUTED" and reg_b["clientId"] == reg_a["clientId"]
    ev = dispute["evidence"]
    assert (dispute["firstId"], dispute["secondId"]) == (reg_a["id"], reg_b["id"])
    assert ev["registered_first"] == reg_a["id"] and ev["window_hours"] == 72
    assert (ev["first"]["code"], ev["second"]["code"]) == (reg_a["code"], reg_b["code"])
    assert ev["first"]["registered_by"] == str(agent_id) and ev["first"]["channel"] == "渠道甲"
    assert ev["first"]["registered_at"] < ev["second"]["registered_at"]
    listed = data(
        await gql(client, DISPUTES, {"status": "OPEN"}, tenant=slug, token=manager),
        "attributionDisputes",
    )
    assert [d["id"] for d in listed] == [dispute["id"]]
    # The agent sees their own registration only; the manager sees both.
    mine = data(
        await gql(client, REGISTRATIONS, {}, tenant=slug, token=agent), "channelRegistrations"
    )
    assert [r["id"] for r in mine] == [reg_a["id"]]
    every = data(
        await gql(client, REGISTRATIONS, {"p": project}, tenant=slug, token=manager),
        "channelRegistrations",
    )
    assert {r["id"] for r in every} == {reg_a["id"], reg_b["id"]}

    # The visit: site staff type A's code (any case, with a dash): visited, with who and when.
    typed = reg_a["code"][:4].lower() + "-" + reg_a["code"][4:]
    seen = await visit(client, slug, typed, token=manager)
    assert seen["__typename"] == "VisitConfirmedPayload", seen
    assert seen["registration"]["status"] == "VISITED"
    assert seen["registration"]["visitedBy"] == str(manager_id)
    assert seen["registration"]["qrPayload"] is None and seen["registration"]["qrUrl"] is None
    twice = await visit(client, slug, reg_a["code"], token=manager)
    assert (twice["__typename"], twice["field"]) == ("ConflictError", "code"), twice
    # B's QR scanned: the visit is recorded as evidence; B stays disputed.
    scanned = await visit(client, slug, reg_b["qrPayload"], token=manager)
    assert scanned["registration"]["status"] == "DISPUTED" and scanned["registration"]["visitedAt"]

    # Deciding: not by someone who registered either side, not for a stranger registration.
    got = data(
        await gql(
            client, RESOLVE, {"d": dispute["id"], "w": reg_b["id"], "note": "x"}, tenant=slug
        ),
        "resolveAttributionDispute",
    )
    assert got["__typename"] == "PermissionDeniedError", got  # the admin registered B
    got = data(
        await gql(
            client,
            RESOLVE,
            {"d": dispute["id"], "w": str(uuid.uuid4()), "note": "x"},
            tenant=slug,
            token=manager,
        ),
        "resolveAttributionDispute",
    )
    assert (got["__typename"], got["field"]) == ("ValidationError", "winnerId"), got
    got = data(
        await gql(
            client,
            RESOLVE,
            {"d": dispute["id"], "w": reg_b["id"], "note": "B带看在先"},
            tenant=slug,
            token=manager,
        ),
        "resolveAttributionDispute",
    )
    assert got["__typename"] == "AttributionDisputePayload", got
    assert (got["dispute"]["status"], got["dispute"]["winnerId"]) == ("RESOLVED", reg_b["id"])
    statuses = {str(r.id): r.status for r in await _rows(engine, tenant, ChannelRegistration)}
    assert statuses == {reg_a["id"]: "lost", reg_b["id"]: "visited"}
    done = data(
        await gql(
            client,
            RESOLVE,
            {"d": dispute["id"], "w": reg_a["id"], "note": "again"},
            tenant=slug,
            token=manager,
        ),
        "resolveAttributionDispute",
    )
    assert (done["__typename"], done["field"]) == ("ConflictError", "disputeId"), done
    lost = await register(client, slug, a["id"], project, "陈", PHONE)
    assert lost["registration"]["status"] == "DISPUTED"  # B holds the client now (visited)


async def test_the_window_setting_and_expired_codes(client, make_tenant, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    a = await channel(client, slug, "甲")
    b = await channel(client, slug, "乙")
    await set_window(client, slug, 24)
    reg_a = (await register(client, slug, a["id"], project, "周", PHONE))["registration"]
    [row] = await _rows(engine, tenant, ChannelRegistration)
    assert row.expires_at - row.registered_at == timedelta(hours=24)
    await _shift(engine, tenant, reg_a["id"], 25)
    # Expired: its code no longer confirms a visit, and another channel registers cleanly.
    late = await visit(client, slug, reg_a["code"])
    assert (late["__typename"], late["field"]) == ("ValidationError", "code"), late
    got = await register(client, slug, b["id"], project, "周", PHONE)
    assert got["registration"]["status"] == "REGISTERED" and got["dispute"] is None, got
    assert await _rows(engine, tenant, AttributionDispute) == []
    # The same channel may register again once its registration expired.
    again = await register(client, slug, a["id"], project, "周", PHONE)
    assert again["registration"]["status"] == "DISPUTED"  # within B's window now
    for bad in ("0", "-5", "100000", "abc"):
        res = await gql(
            client,
            SETTINGS_Q,
            {"c": [{"key": "sales.attribution_window_hours", "value": bad}]},
            tenant=slug,
        )
        assert res["data"]["updateTenantSettings"]["__typename"] == "ValidationError", (bad, res)


async def test_codes_of_others_and_bad_input_are_typed(client, make_tenant, member, engine):
    tenant = await make_tenant()
    other = await make_tenant()
    slug = tenant.slug
    _, owner = await member(tenant, ["owner"])
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    theirs_project = (await inventory(client, other.slug, floors=1, per_floor=1))["project"]["id"]
    a = await channel(client, slug, "甲")
    theirs_channel = await channel(client, other.slug, "外")
    theirs = (
        await register(client, other.slug, theirs_channel["id"], theirs_project, "吴", PHONE)
    )["registration"]
    # Another company's code: unknown here, typed or scanned (its QR names the other company).
    got = await visit(client, slug, theirs["code"])
    assert (got["__typename"], got["field"]) == ("NotFoundError", "code"), got
    got = await visit(client, slug, theirs["qrPayload"])
    assert (got["__typename"], got["field"]) == ("ValidationError", "code"), got
    forged = theirs["qrPayload"].replace(f":{other.slug}:", f":{slug}:")
    got = await visit(client, slug, forged)
    assert (got["__typename"], got["field"]) == ("ValidationError", "code"), got
    for bad in ("", "12", "ZZZZ-ZZZZ-ZZZZ", "O0I1O0I1", "x" * 500, "ANJU-VISIT:a:b"):
        got = await visit(client, slug, bad)
        assert got["__typename"] in ("ValidationError", "NotFoundError"), (bad, got)
    base = {"channelId": a["id"], "projectId": project, "name": "吴", "phone": PHONE}
    cases = [
        ({"phone": "12"}, "ValidationError", "phone"),
        ({"phone": "1" * 60}, "ValidationError", "phone"),
        ({"name": ""}, "ValidationError", "name"),
        ({"name": "n" * 101}, "ValidationError", "name"),
        ({"channelId": str(uuid.uuid4())}, "NotFoundError", "channelId"),
        ({"channelId": theirs_channel["id"]}, "NotFoundError", "channelId"),
        ({"channelId": "nope"}, "NotFoundError", "channelId"),
        ({"projectId": theirs_project}, "NotFoundError", "projectId"),
        ({"projectId": str(uuid.uuid4())}, "NotFoundError", "projectId"),
    ]
    for change, typename, field in cases:
        got = await register(client, slug, **_args({**base, **change}))
        assert (got["__typename"], got["field"]) == (typename, field), (change, got)
    res = await gql(
        client,
        REGISTER_Q,
        {"i": {**base, "name": "a\x00b"}},
        tenant=slug,
    )
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res
    # An inactive channel registers nobody; owners do not register at all.
    data(
        await gql(client, UPDATE_CHANNEL, {"c": a["id"], "active": False}, tenant=slug),
        "updateSalesChannel",
    )
    got = await register(client, slug, **_args(base))
    assert (got["__typename"], got["field"]) == ("ConflictError", "channelId"), got
    res = await gql(
        client,
        REGISTER_Q,
        {"i": base},
        tenant=slug,
        token=owner,
    )
    assert res["data"]["registerChannelClient"]["__typename"] == "PermissionDeniedError", res
    # Nothing was written by any refusal.
    assert await _rows(engine, tenant, ChannelRegistration) == []
    assert await _rows(engine, tenant, Client) == []
    dup = data(await gql(client, CREATE_CHANNEL_Q, {"n": "甲"}, tenant=slug), "createSalesChannel")
    assert (dup["__typename"], dup["field"]) == ("ConflictError", "name"), dup


CREATE_CHANNEL_Q = """
mutation($n: String!) {
  createSalesChannel(name: $n, kind: AGENCY) { __typename ... on UserError { field } }
}
"""


def _args(i: dict) -> dict:
    return {
        "channel_id": i["channelId"],
        "project": i["projectId"],
        "name": i["name"],
        "phone": i["phone"],
    }


async def test_the_qr_image_is_served_at_a_signed_link(client, make_tenant):
    tenant = await make_tenant()
    slug = tenant.slug
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    a = await channel(client, slug, "甲")
    reg = (await register(client, slug, a["id"], project, "郑", PHONE))["registration"]
    parts = urlsplit(reg["qrUrl"])
    resp = await client.get(f"{parts.path}?{parts.query}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in resp.content
    tampered = parts.query.replace("sig=", "sig=A")
    assert (await client.get(f"{parts.path}?{tampered}")).status_code == 404
    other_path = parts.path.replace(reg["id"], str(uuid.uuid4()))
    assert (await client.get(f"{other_path}?{parts.query}")).status_code == 404
    await visit(client, slug, reg["code"])  # visited: no QR left to show
    assert (await client.get(f"{parts.path}?{parts.query}")).status_code == 404


SETTINGS_Q = """
mutation($c: [SettingChange!]!) {
  updateTenantSettings(changes: $c) { __typename ... on UserError { field } }
}
"""
REGISTER_Q = """
mutation($i: RegisterChannelClientInput!) { registerChannelClient(input: $i) { __typename } }
"""


async def test_channels_registering_one_phone_at_once_are_ordered(client, make_tenant, engine):
    """Six channels register one new phone at the same moment: one client is created, the
    first registration holds, the five others are disputed against it."""
    import asyncio

    tenant = await make_tenant()
    slug = tenant.slug
    project = (await inventory(client, slug, floors=1, per_floor=1))["project"]["id"]
    chans = [await channel(client, slug, f"渠道{n}") for n in range(6)]
    got = await asyncio.gather(
        *(register(client, slug, c["id"], project, "林", "+8613800001111") for c in chans)
    )
    assert all(g["__typename"] == "ChannelRegistrationPayload" for g in got), got
    statuses = sorted(g["registration"]["status"] for g in got)
    assert statuses == ["DISPUTED"] * 5 + ["REGISTERED"], statuses
    [first] = [g["registration"] for g in got if g["registration"]["status"] == "REGISTERED"]
    assert {g["dispute"]["firstId"] for g in got if g["dispute"]} == {first["id"]}
    assert sum(g["clientCreated"] for g in got) == 1
    assert len(await _rows(engine, tenant, Client)) == 1
    assert len(await _rows(engine, tenant, AttributionDispute)) == 5
