"""Follows through GraphQL (real HTTP through the live server): following units and listings
(idempotent), saved searches, one's own follows only, who may follow, the per-account limit,
and ``followers`` (who to tell about a change)."""

from __future__ import annotations

import uuid

from api.follow import service
from tenants.sessions import TenantDatabase
from tests.api.helpers import typed_denial
from tests.api.unit.helpers import inventory
from tests.conftest import add_member, gql

FOLLOW_FIELDS = "id kind targetId name search createdAt"
FOLLOW = (
    "mutation($kind: FollowKind!, $id: ID!) { follow(kind: $kind, targetId: $id) { __typename"
    " ... on FollowPayload { follow { " + FOLLOW_FIELDS + " } }"
    " ... on UserError { code message field } } }"
)
SAVE_SEARCH = (
    "mutation($input: SaveSearchInput!) { saveSearch(input: $input) { __typename"
    " ... on FollowPayload { follow { " + FOLLOW_FIELDS + " } }"
    " ... on UserError { code message field } } }"
)
UNFOLLOW = (
    "mutation($id: ID!) { unfollow(id: $id) { __typename ... on UnfollowPayload { id }"
    " ... on UserError { code message field } } }"
)
MY_FOLLOWS = (
    "query($kind: FollowKind) { myFollows(kind: $kind) { " + FOLLOW_FIELDS + " unit { id number }"
    " listing { id community } } }"
)
CREATE_LISTING = (
    "mutation($input: CreateListingInput!) { createListing(input: $input) { __typename"
    " ... on ListingPayload { listing { id } } ... on UserError { code message field } } }"
)


def error_codes(res: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in res.get("errors") or []]


def kw(token) -> dict:
    return {} if token is None else {"token": token}


async def follow(client, slug: str, kind: str, target_id: str, token=None) -> dict:
    res = await gql(client, FOLLOW, {"kind": kind, "id": target_id}, tenant=slug, **kw(token))
    assert "errors" not in res, res
    return res["data"]["follow"]


async def followed(client, slug: str, kind: str, target_id: str, token=None) -> dict:
    payload = await follow(client, slug, kind, target_id, token)
    assert payload["__typename"] == "FollowPayload", payload
    return payload["follow"]


async def save_search(client, slug: str, token=None, **fields) -> dict:
    res = await gql(client, SAVE_SEARCH, {"input": fields}, tenant=slug, **kw(token))
    assert "errors" not in res, res
    return res["data"]["saveSearch"]


async def unfollow(client, slug: str, follow_id: str, token=None) -> dict:
    res = await gql(client, UNFOLLOW, {"id": follow_id}, tenant=slug, **kw(token))
    assert "errors" not in res, res
    return res["data"]["unfollow"]


async def my_follows(client, slug: str, token=None, kind: str | None = None) -> list[dict]:
    res = await gql(client, MY_FOLLOWS, {"kind": kind}, tenant=slug, **kw(token))
    assert "errors" not in res, res
    return res["data"]["myFollows"]


async def listing(client, slug: str, community: str = "Lotus Garden") -> str:
    fields = {"community": community, "grossArea": "89.50", "rooms": 3, "askingPrice": 5}
    res = await gql(client, CREATE_LISTING, {"input": fields}, tenant=slug)
    payload = res["data"]["createListing"]
    assert payload["__typename"] == "ListingPayload", res
    return payload["listing"]["id"]


def refused(payload: dict, typename: str, code: str, field: str | None) -> None:
    assert (payload["__typename"], payload["code"], payload["field"]) == (typename, code, field), (
        payload
    )
    assert payload["message"], payload


async def test_follow_units_and_listings(client, make_tenant, member):
    tenant = await make_tenant()
    other_tenant = await make_tenant()
    slug = tenant.slug
    inv = await inventory(client, slug, floors=1, per_floor=2)
    unit, unit2 = inv["units"]
    lid = await listing(client, slug)
    b_unit = (await inventory(client, other_tenant.slug, floors=1, per_floor=1))["units"][0]
    b_listing = await listing(client, other_tenant.slug)
    _, me = await member(tenant, ["client"])
    _, someone = await member(tenant, ["agent"])

    fu = await followed(client, slug, "UNIT", unit["id"], me)
    assert (fu["kind"], fu["targetId"], fu["name"], fu["search"]) == ("UNIT", unit["id"], "", None)
    assert fu["createdAt"]
    fl = await followed(client, slug, "LISTING", lid, me)
    assert (fl["kind"], fl["targetId"]) == ("LISTING", lid)
    # Following twice is the same follow.
    assert (await followed(client, slug, "UNIT", unit["id"], me))["id"] == fu["id"]
    assert (await followed(client, slug, "LISTING", lid, me))["id"] == fl["id"]

    mine = await my_follows(client, slug, me)
    assert [f["id"] for f in mine] == [fl["id"], fu["id"]]  # newest first
    by_id = {f["id"]: f for f in mine}
    assert by_id[fu["id"]]["unit"] == {"id": unit["id"], "number": unit["number"]}
    assert by_id[fu["id"]]["listing"] is None
    assert by_id[fl["id"]]["listing"] == {"id": lid, "community": "Lotus Garden"}
    assert by_id[fl["id"]]["unit"] is None
    assert [f["id"] for f in await my_follows(client, slug, me, "UNIT")] == [fu["id"]]
    assert [f["id"] for f in await my_follows(client, slug, me, "LISTING")] == [fl["id"]]
    assert await my_follows(client, slug, me, "SEARCH") == []

    # Unknown, malformed, wrong-kind and other-tenant targets are not found.
    for kind, target in (
        ("UNIT", str(uuid.uuid4())),
        ("LISTING", str(uuid.uuid4())),
        ("UNIT", "not-an-id"),
        ("UNIT", lid),
        ("LISTING", unit["id"]),
        ("UNIT", b_unit["id"]),
        ("LISTING", b_listing),
    ):
        refused(
            await follow(client, slug, kind, target, me), "NotFoundError", "NOT_FOUND", "targetId"
        )
    # A search is followed with saveSearch.
    refused(
        await follow(client, slug, "SEARCH", unit2["id"], me),
        "ValidationError",
        "BAD_USER_INPUT",
        "kind",
    )
    assert len(await my_follows(client, slug, me)) == 2

    # Someone else cannot remove my follow (it is not found for them).
    theirs = await followed(client, slug, "UNIT", unit["id"], someone)
    assert theirs["id"] != fu["id"]
    refused(await unfollow(client, slug, fu["id"], someone), "NotFoundError", "NOT_FOUND", "id")
    assert len(await my_follows(client, slug, me)) == 2

    assert await unfollow(client, slug, fu["id"], me) == {
        "__typename": "UnfollowPayload",
        "id": fu["id"],
    }
    assert [f["id"] for f in await my_follows(client, slug, me)] == [fl["id"]]
    refused(await unfollow(client, slug, fu["id"], me), "NotFoundError", "NOT_FOUND", "id")
    gone = await unfollow(client, slug, "nope", me)
    assert (gone["__typename"], gone["code"]) == ("NotFoundError", "NOT_FOUND")
    # Their follow of the same unit is still there.
    assert [f["id"] for f in await my_follows(client, slug, someone)] == [theirs["id"]]
    # Following again after unfollowing is a new follow.
    again = await followed(client, slug, "UNIT", unit["id"], me)
    assert again["id"] != fu["id"]


async def test_save_search(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    _, me = await member(tenant, ["client"])
    got = await save_search(
        client,
        slug,
        me,
        name=" Cheap in Nanshan ",
        listings={
            "districts": ["Nanshan"],
            "priceMax": 500_000_000,
            "statuses": ["ACTIVE"],
            "keyword": "  Harbour ",
            "near": {"latitude": 22.53, "longitude": 113.93},
        },
    )
    assert got["__typename"] == "FollowPayload", got
    f = got["follow"]
    assert (f["kind"], f["targetId"], f["name"]) == ("SEARCH", None, "Cheap in Nanshan")
    assert f["search"]["on"] == "listings"
    flt = f["search"]["filter"]
    assert (flt["districts"], flt["price_max"], flt["statuses"], flt["keyword"]) == (
        ["Nanshan"],
        500_000_000,
        ["active"],
        "harbour",
    )
    assert flt["near"] == {"latitude": 22.53, "longitude": 113.93, "radius_km": 5.0}
    assert (flt["communities"], flt["price_min"], flt["verified_only"]) == ([], None, False)

    got = await save_search(
        client, slug, me, name="3 rooms", units={"rooms": [3], "areaMin": "80.5", "floorMin": 5}
    )
    u = got["follow"]
    assert (u["kind"], u["search"]["on"]) == ("SEARCH", "units")
    assert (
        u["search"]["filter"]["rooms"],
        u["search"]["filter"]["area_min"],
        u["search"]["filter"]["floor_min"],
    ) == ([3], "80.5", 5)

    searches = await my_follows(client, slug, me, "SEARCH")
    assert [x["id"] for x in searches] == [u["id"], f["id"]]
    assert all(x["unit"] is None and x["listing"] is None for x in searches)
    assert searches[1]["search"] == f["search"]

    for fields, fld in (
        ({"name": "both", "units": {}, "listings": {}}, "units"),
        ({"name": "none"}, "units"),
        (
            {
                "name": "radius 0",
                "listings": {"near": {"latitude": 22.5, "longitude": 114, "radiusKm": 0}},
            },
            "near",
        ),
        (
            {
                "name": "radius 0",
                "units": {"near": {"latitude": 22.5, "longitude": 114, "radiusKm": 0}},
            },
            "near",
        ),
        (
            {
                "name": "far",
                "listings": {"near": {"latitude": 22.5, "longitude": 114, "radiusKm": 501}},
            },
            "near",
        ),
        ({"name": "  ", "listings": {}}, "name"),
    ):
        refused(
            await save_search(client, slug, me, **fields), "ValidationError", "BAD_USER_INPUT", fld
        )
    assert len(await my_follows(client, slug, me)) == 2
    # A saved search is removed like any follow.
    assert (await unfollow(client, slug, u["id"], me))["__typename"] == "UnfollowPayload"
    assert [x["id"] for x in await my_follows(client, slug, me)] == [f["id"]]


async def test_each_member_sees_only_their_own_follows(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    inv = await inventory(client, slug, floors=1, per_floor=2)
    lid = await listing(client, slug)
    tokens = {
        role: (await member(tenant, [role]))[1]
        for role in ("client", "owner", "agent", "finance", "property_staff")
    }
    expected = {}
    for n, (role, token) in enumerate(tokens.items()):
        mine = [await followed(client, slug, "UNIT", inv["units"][n % 2]["id"], token)]
        if n % 2:
            mine.append(await followed(client, slug, "LISTING", lid, token))
        expected[role] = [f["id"] for f in reversed(mine)]
    for role, token in tokens.items():
        assert [f["id"] for f in await my_follows(client, slug, token)] == expected[role], role
    assert await my_follows(client, slug) == []  # the admin follows nothing


async def test_anonymous_callers_cannot_follow(client, make_tenant):
    tenant = await make_tenant()
    unit = (await inventory(client, tenant.slug, floors=1, per_floor=1))["units"][0]
    res = await gql(
        client, FOLLOW, {"kind": "UNIT", "id": unit["id"]}, tenant=tenant.slug, token=None
    )
    typed_denial(res, "follow", "UNAUTHENTICATED")
    res = await gql(
        client, SAVE_SEARCH, {"input": {"name": "x", "units": {}}}, tenant=tenant.slug, token=None
    )
    typed_denial(res, "saveSearch", "UNAUTHENTICATED")
    res = await gql(client, UNFOLLOW, {"id": str(uuid.uuid4())}, tenant=tenant.slug, token=None)
    typed_denial(res, "unfollow", "UNAUTHENTICATED")
    res = await gql(client, MY_FOLLOWS, tenant=tenant.slug, token=None)
    assert error_codes(res) == ["UNAUTHENTICATED"], res
    assert res["data"] is None


async def test_a_member_without_follow_is_refused(client, make_tenant, engine, kit):
    """A custom role without ``follow`` (all built-in roles have it)."""
    tenant = await make_tenant()
    unit = (await inventory(client, tenant.slug, floors=1, per_floor=1))["units"][0]
    res = await gql(
        client,
        'mutation { createRole(input: {key: "viewer", name: "Viewer", '
        'permissions: ["unit.read"]}) { __typename } }',
        tenant=tenant.slug,
    )
    assert res.get("data", {}).get("createRole") == {"__typename": "RolePayload"}, res
    _, token = await add_member(engine, kit, tenant, ["viewer"])
    res = await gql(
        client, FOLLOW, {"kind": "UNIT", "id": unit["id"]}, tenant=tenant.slug, token=token
    )
    typed_denial(res, "follow", "FORBIDDEN")
    res = await gql(client, MY_FOLLOWS, tenant=tenant.slug, token=token)
    assert error_codes(res) == ["FORBIDDEN"], res


async def test_follow_limit(client, make_tenant, member, monkeypatch):
    # The live server runs in this process (a thread): it sees the patched limit.
    monkeypatch.setattr(service, "MAX_FOLLOWS", 3)
    tenant = await make_tenant()
    slug = tenant.slug
    units = (await inventory(client, slug, floors=2, per_floor=2))["units"]
    _, me = await member(tenant, ["client"])
    _, other = await member(tenant, ["client"])
    first = await followed(client, slug, "UNIT", units[0]["id"], me)
    await followed(client, slug, "UNIT", units[1]["id"], me)
    assert (await save_search(client, slug, me, name="s", units={}))["__typename"] == (
        "FollowPayload"
    )
    refused(
        await follow(client, slug, "UNIT", units[2]["id"], me),
        "ValidationError",
        "BAD_USER_INPUT",
        "targetId",
    )
    assert (await save_search(client, slug, me, name="t", units={}))["__typename"] == (
        "ValidationError"
    )
    assert len(await my_follows(client, slug, me)) == 3
    # The limit is per account.
    await followed(client, slug, "UNIT", units[2]["id"], other)
    # Room again after an unfollow.
    await unfollow(client, slug, first["id"], me)
    await followed(client, slug, "UNIT", units[3]["id"], me)
    assert len(await my_follows(client, slug, me)) == 3


async def test_following_again_at_the_limit_is_the_same_follow(
    client, make_tenant, member, monkeypatch
):
    monkeypatch.setattr(service, "MAX_FOLLOWS", 2)
    tenant = await make_tenant()
    units = (await inventory(client, tenant.slug, floors=1, per_floor=2))["units"]
    _, me = await member(tenant, ["client"])
    first = await followed(client, tenant.slug, "UNIT", units[0]["id"], me)
    await followed(client, tenant.slug, "UNIT", units[1]["id"], me)
    again = await follow(client, tenant.slug, "UNIT", units[0]["id"], me)
    assert again["__typename"] == "FollowPayload", again
    assert again["follow"]["id"] == first["id"]


async def test_unfollow_with_a_malformed_id_names_the_id_field(client, make_tenant):
    tenant = await make_tenant()
    refused(await unfollow(client, tenant.slug, "nope"), "NotFoundError", "NOT_FOUND", "id")


async def test_followers_are_exactly_the_accounts_following(client, make_tenant, member, engine):
    tenant = await make_tenant()
    slug = tenant.slug
    unit, unit2 = (await inventory(client, slug, floors=1, per_floor=2))["units"]
    lid = await listing(client, slug)
    a_id, a = await member(tenant, ["client"])
    b_id, b = await member(tenant, ["agent"])
    c_id, c = await member(tenant, ["owner"])
    await followed(client, slug, "UNIT", unit["id"], a)
    await followed(client, slug, "UNIT", unit["id"], a)  # twice: still one follower
    await followed(client, slug, "UNIT", unit["id"], b)
    await followed(client, slug, "UNIT", unit2["id"], c)
    await followed(client, slug, "LISTING", lid, c)
    await followed(client, slug, "LISTING", lid, b)
    f = await followed(client, slug, "LISTING", lid, a)
    await unfollow(client, slug, f["id"], a)
    saved = await save_search(client, slug, c, name="all", units={})
    assert saved["__typename"] == "FollowPayload"

    async with TenantDatabase(engine).session(tenant) as session:
        on_unit = await service.followers(session, "unit", uuid.UUID(unit["id"]))
        on_unit2 = await service.followers(session, "unit", uuid.UUID(unit2["id"]))
        on_listing = await service.followers(session, "listing", uuid.UUID(lid))
        # the listing's id is not a unit's: no followers there
        crossed = await service.followers(session, "unit", uuid.UUID(lid))
        nobody = await service.followers(session, "unit", uuid.uuid4())
    assert sorted(on_unit) == sorted([a_id, b_id])
    assert on_unit2 == [c_id]
    assert sorted(on_listing) == sorted([b_id, c_id])
    assert crossed == [] and nobody == []
