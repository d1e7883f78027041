"""Client profiles from behaviour: the client app's views and searches (trackActivity) are kept
under its account, linked to client records by phone (before or after the record exists),
summarised by a job into preferences, tags and a suggested grade that tells the agent when a
client warms up, shown in the agent's day, and used by recommendations. Scope, validation and
merges are covered too; ``build`` (the pure part) is tested directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text, update

from api.client import profile
from api.client.models import ClientActivity
from api.identity import service as identity
from api.identity.models import Membership
from api.notify.models import Notification
from tenants.sessions import TenantDatabase
from tests.api.processes import drain
from tests.api.unit.helpers import inventory
from tests.conftest import gql

CREATE = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename ... on ClientPayload { client { id appLinked lastActiveAt } duplicates }
    ... on UserError { code message field }
  }
}
"""
TRACK = """
mutation($e: [ActivityInput!]!) {
  trackActivity(events: $e) {
    __typename ... on TrackActivityPayload { accepted }
    ... on UserError { code message field }
  }
}
"""
PROFILE = """
query($id: ID!) { client(id: $id) {
  id appLinked suggestedGrade lastActiveAt
  profile { districts { district share } priceMin priceMax areaMin areaMax rooms views7d
            views30d searches30d follows showings averageRating activeDays14d tags
            gradeFactors computedAt }
} }
"""
ACTIVITY = """
query($id: ID!) { clientActivity(clientId: $id) {
  kind at seconds unitId listingId price district rooms search { districts priceMax rooms }
} }
"""
DAY = "{ myDay { recentlyActive { id name } recentlyActiveCount } }"
RECOMMEND = """
query($c: ID) { recommendations(forClient: $c, first: 5, includeListings: false) {
  score unit { id } reasons { factor points }
} }
"""


async def app_user(engine, kit, tenant, phone: str, roles=("client",)) -> tuple[uuid.UUID, str]:
    """An owner/client app account with this phone, a member of the tenant, signed in."""
    async with TenantDatabase(engine).session(tenant) as session:
        account = await identity.create_account(
            session, kit, name="App User", phone=phone, email=None, password=None
        )
        session.add(
            Membership(account_id=account.id, tenant_id=uuid.UUID(tenant.id), roles=list(roles))
        )
        tokens = await identity.start_session(session, kit, account.id, tenant)
        await session.commit()
    return account.id, tokens.access_token


def views(units: list[str], seconds: int | None = None) -> list[dict]:
    return [{"kind": "VIEW_UNIT", "id": u, "seconds": seconds} for u in units]


async def stored(engine, tenant, **where) -> list[ClientActivity]:
    async with TenantDatabase(engine).session(tenant) as session:
        stmt = select(ClientActivity)
        for k, v in where.items():
            stmt = stmt.where(getattr(ClientActivity, k) == v)
        return list((await session.scalars(stmt)).all())


async def told(engine, tenant, account_id, template: str) -> int:
    async with TenantDatabase(engine).session(tenant) as session:
        return await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.account_id == account_id, Notification.template == template)
        )


async def refresh_jobs(engine, client_id: str) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(
            text(
                "SELECT count(*) FROM shared.procrastinate_jobs WHERE status = 'todo' "
                "AND task_name = 'client:refresh_profile' AND args->>'client_id' = :c"
            ),
            {"c": client_id},
        )


async def test_app_activity_builds_the_profile_grade_day_and_recommendations(
    client, engine, db_url, kit, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, agent = await member(tenant, ["agent"])
    _, other_agent = await member(tenant, ["agent"])
    nanshan = await inventory(client, slug, floors=2, per_floor=3, price=500_000_000)
    futian = await inventory(
        client,
        slug,
        floors=1,
        per_floor=2,
        price=900_000_000,
        district="Futian",
        project_name="Futian Park",
    )
    near = [u["id"] for u in nanshan["units"]]
    far = [u["id"] for u in futian["units"]]
    account_id, app = await app_user(engine, kit, tenant, "+8613800001111")

    # Before any client record: the activity is kept under the account.
    search = {
        "kind": "SEARCH",
        "search": {"districts": ["Nanshan"], "priceMax": 520_000_000, "rooms": [3]},
    }
    res = await gql(client, TRACK, {"e": [*views(near[:2], 90), search]}, tenant=slug, token=app)
    assert res["data"]["trackActivity"] == {"__typename": "TrackActivityPayload", "accepted": 3}
    assert [a.client_id for a in await stored(engine, tenant, account_id=account_id)] == [None] * 3

    # The agent's record of the same phone (written another way) links it and takes them over.
    res = await gql(
        client,
        CREATE,
        {"input": {"name": "钱先生", "phone": "138 0000 1111"}},
        tenant=slug,
        token=agent,
    )
    created = res["data"]["createClient"]["client"]
    cid = created["id"]
    assert created["appLinked"] is True and created["lastActiveAt"] is not None
    assert await refresh_jobs(engine, cid) == 1
    await drain(engine, db_url)
    one = (await gql(client, PROFILE, {"id": cid}, tenant=slug, token=agent))["data"]["client"]
    prof = one["profile"]
    assert one["suggestedGrade"] == "B", one
    assert prof["districts"] == [{"district": "Nanshan", "share": 1.0}]
    assert prof["views7d"] == 2 and prof["searches30d"] == 1 and prof["rooms"] == [3]
    assert 500_000_000 <= prof["priceMin"] <= prof["priceMax"] <= 520_000_000
    assert prof["areaMin"] == 89.5 and prof["computedAt"] is not None
    seen = (await gql(client, ACTIVITY, {"id": cid}, tenant=slug, token=agent))["data"]
    kinds = sorted(a["kind"] for a in seen["clientActivity"])
    assert kinds == ["SEARCH", "VIEW_UNIT", "VIEW_UNIT"]
    unit_view = next(a for a in seen["clientActivity"] if a["kind"] == "VIEW_UNIT")
    assert unit_view["district"] == "Nanshan" and unit_view["rooms"] == 3
    assert unit_view["seconds"] == 90 and unit_view["price"] >= 500_000_000

    # Two calls before the worker runs: one waiting refresh job for the client.
    for batch in (near[2:], near[:3] + far[:1]):
        res = await gql(client, TRACK, {"e": views(batch)}, tenant=slug, token=app)
        assert res["data"]["trackActivity"]["__typename"] == "TrackActivityPayload", res
    assert await refresh_jobs(engine, cid) == 1
    await drain(engine, db_url)
    one = (await gql(client, PROFILE, {"id": cid}, tenant=slug, token=agent))["data"]["client"]
    assert one["suggestedGrade"] == "A", one  # 10 views and searches in 7 days
    assert "VERY_ACTIVE" in one["profile"]["gradeFactors"]
    assert one["profile"]["districts"][0]["district"] == "Nanshan"
    assert {d["district"] for d in one["profile"]["districts"]} == {"Nanshan", "Futian"}
    assert await told(engine, tenant, agent_id, "client.hot") == 1
    # Still A after more activity: the agent is not told again.
    await gql(client, TRACK, {"e": views(near[:1])}, tenant=slug, token=app)
    await drain(engine, db_url)
    assert await told(engine, tenant, agent_id, "client.hot") == 1

    day = (await gql(client, DAY, tenant=slug, token=agent))["data"]["myDay"]
    assert day["recentlyActiveCount"] == 1 and day["recentlyActive"][0]["id"] == cid
    other_day = (await gql(client, DAY, tenant=slug, token=other_agent))["data"]["myDay"]
    assert other_day["recentlyActiveCount"] == 0

    # Recommendations for the client: the profile fills the needs the agent left empty.
    recs = (await gql(client, RECOMMEND, {"c": cid}, tenant=slug, token=agent))["data"]
    ranked = [r["unit"]["id"] for r in recs["recommendations"]]
    assert ranked and set(ranked[:3]) <= set(near), recs
    assert all(r["unit"]["id"] not in far for r in recs["recommendations"][:3])
    district = [
        x["points"] for x in recs["recommendations"][0]["reasons"] if x["factor"] == "district"
    ]
    assert district and district[0] > 0

    # Another agent's client looks missing: no activity, no recommendations for it.
    hidden = await gql(client, ACTIVITY, {"id": cid}, tenant=slug, token=other_agent)
    assert hidden["data"]["clientActivity"] == []
    refused = await gql(client, RECOMMEND, {"c": cid}, tenant=slug, token=other_agent)
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert refused["data"] is None or refused["data"]["recommendations"] is None


async def test_a_record_made_first_is_linked_by_the_first_activity(
    client, engine, db_url, kit, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    inv = await inventory(client, slug, floors=1, per_floor=1)
    res = await gql(
        client,
        CREATE,
        {"input": {"name": "李女士", "phone": "13900002222"}},
        tenant=slug,
        token=agent,
    )
    cid = res["data"]["createClient"]["client"]["id"]
    assert res["data"]["createClient"]["client"]["appLinked"] is False
    account_id, app = await app_user(engine, kit, tenant, "+8613900002222")
    res = await gql(client, TRACK, {"e": views([inv["units"][0]["id"]])}, tenant=slug, token=app)
    assert res["data"]["trackActivity"]["accepted"] == 1
    [row] = await stored(engine, tenant, account_id=account_id)
    assert str(row.client_id) == cid
    one = (await gql(client, PROFILE, {"id": cid}, tenant=slug, token=agent))["data"]["client"]
    assert one["appLinked"] is True and one["lastActiveAt"] is not None


async def test_bad_activity_is_refused_whole_and_needs_the_permission(
    client, engine, kit, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    inv = await inventory(client, slug, floors=1, per_floor=1)
    unit = inv["units"][0]["id"]
    account_id, app = await app_user(engine, kit, tenant, "+8613700003333")
    old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    cases = [
        ([*views([unit]), {"kind": "VIEW_UNIT", "id": str(uuid.uuid4())}], "events.1.id"),
        ([{"kind": "VIEW_LISTING"}], "events.0.id"),
        ([{"kind": "VIEW_UNIT", "id": unit, "at": old}], "events.0.at"),
        ([{"kind": "VIEW_UNIT", "id": unit, "seconds": -1}], "events.0.seconds"),
        ([{"kind": "SEARCH", "search": {}}], "events.0.search"),
        ([{"kind": "SEARCH", "search": {"rooms": [99]}}], "events.0.search"),
        (views([unit] * 51), "events"),
    ]
    for events, field in cases:
        res = await gql(client, TRACK, {"e": events}, tenant=slug, token=app)
        got = res["data"]["trackActivity"]
        assert (got["__typename"], got["field"]) == ("ValidationError", field), (events, got)
    assert await stored(engine, tenant, account_id=account_id) == []  # nothing half-kept
    res = await gql(client, TRACK, {"e": views([unit])}, tenant=slug, token=agent)
    assert res["data"]["trackActivity"]["__typename"] == "PermissionDeniedError"


async def test_merging_duplicates_of_one_account_keeps_one_copy_of_its_activity(
    client, engine, db_url, kit, make_tenant, member
):
    tenant = await make_tenant()
    slug = tenant.slug
    _, manager = await member(tenant, ["manager"])
    inv = await inventory(client, slug, floors=1, per_floor=2)
    units = [u["id"] for u in inv["units"]]
    ids = []
    for name in ("周先生", "周生"):
        res = await gql(
            client,
            CREATE,
            {"input": {"name": name, "phone": "13600004444"}},
            tenant=slug,
            token=manager,
        )
        ids.append(res["data"]["createClient"]["client"]["id"])
    _, app = await app_user(engine, kit, tenant, "+8613600004444")
    await gql(client, TRACK, {"e": views(units)}, tenant=slug, token=app)
    for cid in ids:  # each record of the person gets what they did
        assert len(await stored(engine, tenant, client_id=uuid.UUID(cid))) == 2
    merge = """mutation($k: ID!, $m: ID!) { mergeClients(keepId: $k, mergeId: $m) {
      __typename ... on UserError { code message } } }"""
    res = await gql(client, merge, {"k": ids[0], "m": ids[1]}, tenant=slug, token=manager)
    assert res["data"]["mergeClients"]["__typename"] == "ClientPayload", res
    assert len(await stored(engine, tenant, client_id=uuid.UUID(ids[0]))) == 2
    assert await stored(engine, tenant, client_id=uuid.UUID(ids[1])) == []
    await drain(engine, db_url)
    one = (await gql(client, PROFILE, {"id": ids[0]}, tenant=slug, token=manager))["data"]
    assert one["client"]["profile"]["views7d"] == 2


# ---------------------------------------------------------------- build, directly

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def view(
    days_ago: float,
    district="Nanshan",
    price=300,
    area="90.00",
    rooms=3,
    kind="view_unit",
    project="p1",
    seconds=None,
):
    data = {
        "price": price,
        "area": area,
        "rooms": rooms,
        "district": district,
        "project_id": project,
    }
    return (kind, uuid.uuid4(), data, seconds, NOW - timedelta(days=days_ago))


def test_nothing_at_all_is_grade_c_with_empty_preferences():
    p = profile.build(now=NOW, activity=[], followed=[], showings=[], shown={})
    assert (p["grade"], p["tags"], p["districts"], p["price_min"]) == ("C", [], [], None)


def test_quiet_clients_fade_to_c_and_say_why():
    p = profile.build(now=NOW, activity=[view(20), view(21)], followed=[], showings=[], shown={})
    assert p["grade"] == "B" and "gone_quiet" in p["tags"]  # active within 30 days
    p = profile.build(now=NOW, activity=[view(40), view(41)], followed=[], showings=[], shown={})
    assert p["grade"] == "C" and p["grade_factors"] == ["gone_quiet"]


def test_preferences_weigh_long_views_follows_and_ratings():
    activity = [
        view(1, "Nanshan", 300, seconds=120),
        view(1, "Futian", 900),
        view(2, "Futian", 900),
    ]
    followed = [{"price": 310, "area": "95.00", "rooms": 3, "district": "Nanshan"}]
    unit = uuid.uuid4()
    shown = {("unit", str(unit)): {"price": 320, "area": "92.00", "rooms": 2, "district": "Baoan"}}
    showing = (
        "done",
        NOW - timedelta(days=3),
        [unit],
        [],
        [{"kind": "unit", "id": str(unit), "rating": 1}],
    )
    p = profile.build(
        now=NOW, activity=activity, followed=followed, showings=[showing], shown=shown
    )
    # Nanshan: long view 2 + follow 3 = 5; Futian: 1 + 1 = 2; Baoan: shown 3 - rating 1 (-4) < 0
    assert p["districts"] == [
        {"district": "Nanshan", "share": round(5 / 7, 2)},
        {"district": "Futian", "share": round(2 / 7, 2)},
    ]
    # Prices by weight: 300 x2, 310 x3, 900 x1, 900 x1 (Baoan's 320 weighs -1: left out);
    # the middle half (25th to 75th percentile of 7) runs from 300 to 900.
    assert (p["price_min"], p["price_max"]) == (300, 900)
    assert p["rooms"] == [3] and p["average_rating"] == 1.0 and p["follows"] == 1
    assert "follows_items" in p["tags"] and "liked_a_showing" not in p["tags"]


def test_grade_a_from_a_liked_showing_or_an_upcoming_one():
    unit = uuid.uuid4()
    liked = (
        "done",
        NOW - timedelta(days=2),
        [unit],
        [],
        [{"kind": "unit", "id": str(unit), "rating": 5}],
    )
    p = profile.build(now=NOW, activity=[], followed=[], showings=[liked], shown={})
    assert p["grade"] == "A" and p["grade_factors"] == ["liked_a_showing"]
    ahead = ("scheduled", NOW + timedelta(days=1), [unit], [], [])
    p = profile.build(now=NOW, activity=[], followed=[], showings=[ahead], shown={})
    assert p["grade"] == "A" and "upcoming_showing" in p["tags"]
    cancelled = ("cancelled", NOW + timedelta(days=1), [unit], [], [])
    p = profile.build(now=NOW, activity=[], followed=[], showings=[cancelled], shown={})
    assert p["grade"] == "C" and p["showings"] == 0


def test_behaviour_tags():
    activity = [view(d, project=f"p{d % 3}") for d in range(0, 4)]
    activity.append(view(1, kind="view_listing", project=None))
    p = profile.build(now=NOW, activity=activity, followed=[], showings=[], shown={})
    assert {"returning", "comparing_projects", "new_and_resale"} <= set(p["tags"])
    assert p["active_days_14d"] == 4 and p["grade"] == "B"
    busy = [view(0.1 * i) for i in range(10)]
    p = profile.build(now=NOW, activity=busy, followed=[], showings=[], shown={})
    assert p["grade"] == "A" and p["grade_factors"] == ["very_active"]


async def test_the_daily_refresh_fades_grades_and_prunes_old_activity(
    client, engine, db_url, kit, make_tenant, member
):
    from api.client import tasks
    from api.client.models import Client as ClientRow

    tenant = await make_tenant()
    slug = tenant.slug
    _, agent = await member(tenant, ["agent"])
    inv = await inventory(client, slug, floors=1, per_floor=1)
    _, app = await app_user(engine, kit, tenant, "+8613300005555")
    res = await gql(
        client,
        CREATE,
        {"input": {"name": "吴先生", "phone": "13300005555"}},
        tenant=slug,
        token=agent,
    )
    cid = uuid.UUID(res["data"]["createClient"]["client"]["id"])
    await gql(client, TRACK, {"e": views([inv["units"][0]["id"]] * 10)}, tenant=slug, token=app)
    await drain(engine, db_url)
    async with TenantDatabase(engine).session(tenant) as session:
        assert (await session.get(ClientRow, cid)).suggested_grade == "A"
        # Time passes: the views are 40 days old, one of them 200 (past retention).
        now = datetime.now(UTC)
        await session.execute(update(ClientActivity).values(at=now - timedelta(days=40)))
        oldest = await session.scalar(select(ClientActivity.id).order_by(ClientActivity.id))
        await session.execute(
            update(ClientActivity)
            .where(ClientActivity.id == oldest)
            .values(at=now - timedelta(days=200))
        )
        await session.commit()
    async with TenantDatabase(engine).session(tenant) as session:
        assert await tasks.refresh_profiles.work(session, tenant) == 1
        await session.commit()
    await drain(engine, db_url)
    assert len(await stored(engine, tenant, client_id=cid)) == 9
    one = (await gql(client, PROFILE, {"id": str(cid)}, tenant=slug, token=agent))["data"]
    assert one["client"]["suggestedGrade"] == "C"
    assert one["client"]["profile"]["gradeFactors"] == ["GONE_QUIET"]
