"""Recommendations: ranking against needs, with reasons that add up to the score."""

from __future__ import annotations

import pytest

from tests.api.helpers import create_building, create_project
from tests.api.unit.helpers import create_units
from tests.conftest import gql

QUERY = """
query($needs: NeedsInput!, $first: Int, $listings: Boolean) {
  recommendations(needs: $needs, first: $first, includeListings: $listings) {
    score reasons { factor points text }
    unit { number } listing { community }
  }
}
"""


async def seed(client, slug: str) -> None:
    near = await create_project(client, slug, "Bay", district="Nanshan", facilities=["metro"])
    far = await create_project(client, slug, "Hill", district="Longgang")
    b1 = await create_building(client, slug, near["id"], "B1", floors=30)
    b2 = await create_building(client, slug, far["id"], "B2", floors=30)

    def unit(b, number, price, area, rooms, tags=()):
        return {
            "buildingId": b["id"],
            "floor": 1,
            "number": number,
            "grossArea": area,
            "rooms": rooms,
            "listPrice": price,
            "status": "AVAILABLE",
            "tags": list(tags),
        }

    await create_units(
        client,
        slug,
        [
            unit(b1, "perfect", 300_000_000, "90", 3, ["school"]),  # all factors full
            unit(b1, "no-school", 300_000_000, "90", 3),  # lacks the must-have
            unit(b1, "pricey", 320_000_000, "90", 3, ["school"]),  # 6.7% over budget
            unit(b2, "far", 300_000_000, "90", 3, ["school"]),  # wrong district
            unit(b1, "tiny", 150_000_000, "40", 1, ["school"]),  # area far off, rooms off
            unit(b1, "way-over", 500_000_000, "90", 3, ["school"]),  # out of the price window
        ],
    )


NEEDS = {
    "budgetMin": 250_000_000,
    "budgetMax": 300_000_000,
    "areaMin": "80",
    "areaMax": "100",
    "rooms": [3],
    "districts": ["Nanshan"],
    "mustHaves": ["school", "metro"],
}


async def test_ranking_and_reasons(client, make_tenant):
    tenant = await make_tenant()
    await seed(client, tenant.slug)
    res = await gql(client, QUERY, {"needs": NEEDS, "first": 10}, tenant=tenant.slug)
    assert "errors" not in res, res
    recs = res["data"]["recommendations"]
    order = [r["unit"]["number"] for r in recs]
    # perfect 100; no-school 92.5 (metro from the project, no school); far 77.5 (district 0,
    # no metro there); pricey 76.7 (6.7% over budget: 11.7 of 35). Outside the candidate
    # window: way-over (more than 10% over budget) and tiny (area more than 15% under).
    assert order == ["perfect", "no-school", "far", "pricey"]
    assert [r["score"] for r in recs] == [100, 92.5, 77.5, 76.7]
    for r in recs:  # the reasons explain every point of the score
        assert sum(x["points"] for x in r["reasons"]) == pytest.approx(r["score"], abs=0.05)
        assert [x["factor"] for x in r["reasons"]] == [
            "budget",
            "area",
            "rooms",
            "district",
            "must_haves",
        ]
    top = recs[0]
    assert top["score"] == 100
    assert "has school, metro" in top["reasons"][4]["text"]
    far = next(r for r in recs if r["unit"]["number"] == "far")
    assert far["reasons"][3] == {
        "factor": "district",
        "points": 0,
        "text": "in Longgang, not a wanted one",
    }
    pricey = next(r for r in recs if r["unit"]["number"] == "pricey")
    assert 0 < pricey["reasons"][0]["points"] < 35 and "over budget" in pricey["reasons"][0]["text"]


async def test_open_needs_rank_nothing_and_bad_input_is_typed(client, make_tenant, member):
    tenant = await make_tenant()
    await seed(client, tenant.slug)
    res = await gql(client, QUERY, {"needs": {}, "first": 50}, tenant=tenant.slug)
    scores = {r["score"] for r in res["data"]["recommendations"]}
    assert scores == {50.0}  # every factor left open: half points each, for everyone
    assert len(res["data"]["recommendations"]) == 6
    res = await gql(client, QUERY, {"needs": {"budgetMax": -1}}, tenant=tenant.slug)
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    other = await make_tenant()
    res = await gql(client, QUERY, {"needs": NEEDS}, tenant=other.slug)
    assert res["data"]["recommendations"] == []  # another tenant's units never show


CREATE_LISTING = """
mutation($input: CreateListingInput!) {
  createListing(input: $input) { __typename ... on UserError { code message field } }
}
"""


async def test_listings_are_ranked_with_units_when_the_caller_may_read_them(
    client, make_tenant, member
):
    tenant = await make_tenant()
    await seed(client, tenant.slug)
    listing = {
        "community": "Old Town",
        "district": "Nanshan",
        "grossArea": "88",
        "rooms": 3,
        "askingPrice": 290_000_000,
        "tags": ["school", "metro"],
    }
    res = await gql(client, CREATE_LISTING, {"input": listing}, tenant=tenant.slug)
    assert res["data"]["createListing"]["__typename"] == "ListingPayload", res
    res = await gql(client, QUERY, {"needs": NEEDS, "first": 3}, tenant=tenant.slug)
    top = res["data"]["recommendations"][:2]
    # the listing meets every need as well as the best unit: both score 100
    assert {(r["score"], bool(r["unit"]), bool(r["listing"])) for r in top} == {
        (100, True, False),
        (100, False, True),
    }
    res = await gql(client, QUERY, {"needs": NEEDS, "listings": False}, tenant=tenant.slug)
    assert all(r["listing"] is None for r in res["data"]["recommendations"])
    # owners browse in the owner app: they have unit.read and listing.read
    _, token = await member(tenant, ["owner"])
    res = await gql(client, QUERY, {"needs": NEEDS}, tenant=tenant.slug, token=token)
    assert any(r["listing"] for r in res["data"]["recommendations"])
