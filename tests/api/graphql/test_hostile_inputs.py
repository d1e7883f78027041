"""Bad values that are the caller's mistake get a typed error, never INTERNAL (issue #17,
items 2 and 5): the input scalars refuse what no column can hold (NUL and lone surrogates in
text, non-finite or huge decimals, instants that overflow in UTC, an Upload that is no file),
numbers a filter compares with a column are bounded by the column, lists in variables are
bounded, an area must survive its rounding, and ids naming other objects must name rows of
the caller's tenant (NOT_FOUND on the field)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.api.client.helpers import CREATE_WITH_PHONE as CREATE_CLIENT
from tests.api.client.helpers import SHOWING
from tests.api.live.helpers import UNIT_CHANGES, live
from tests.api.unit.helpers import CREATE_UNITS, inventory
from tests.conftest import auth_headers, gql

BILL = """
mutation($input: IssueBillInput!) {
  issueBill(input: $input) {
    __typename ... on BillPayload { bill { id } } ... on UserError { code message field }
  }
}
"""
LISTING = """
mutation($input: CreateListingInput!) {
  createListing(input: $input) {
    __typename ... on ListingPayload { listing { id grossArea } }
    ... on UserError { code message field }
  }
}
"""


def refused(res: dict, *needles: str) -> str:
    """The one error of a refused operation: BAD_USER_INPUT, its message naming ``needles``."""
    assert res.get("data") is None, res
    [error] = res["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    for needle in needles:
        assert needle in error["message"], error
    return error["message"]


def at_literal(message: str, res: dict) -> None:
    """A value written in the document is refused with its place in the document."""
    assert refused(res) and res["errors"][0].get("locations"), res
    assert message in res["errors"][0]["message"], res


async def send(client, slug: str, query: str, variables: dict) -> dict:
    """POST with the body encoded by ``json.dumps`` (\\u escapes: a lone surrogate travels
    as JSON allows, where httpx's own encoding refuses it)."""
    resp = await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={**auth_headers(slug), "content-type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def later(hours: float) -> str:
    return (datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)).isoformat()


@pytest.fixture
async def tenant(make_tenant):
    return await make_tenant()


# ------------------------------------------------------------------ Upload


async def test_an_upload_sent_as_a_string_is_bad_user_input(client, tenant):
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    pid = inv["project"]["id"]
    literal = [
        'mutation { importListings(file: "x") { __typename } }',
        f'mutation {{ importUnits(projectId: "{pid}", file: "x") {{ __typename }} }}',
        f'mutation {{ uploadMedia(input: {{ownerKind: PROJECT, ownerId: "{pid}", kind: PHOTO}},'
        ' file: "x") { __typename } }',
    ]
    for document in literal:
        at_literal("Upload", await gql(client, document, tenant=tenant.slug))
    for value in ("x", {"name": "x"}, 7):
        res = await gql(
            client,
            "mutation($f: Upload!) { importListings(file: $f) { __typename } }",
            {"f": value},
            tenant=tenant.slug,
        )
        refused(res, "$f", "Upload")


# ------------------------------------------------------------------ text


@pytest.mark.parametrize("bad", ["a\u0000b", "\ud800", "ok \udfff"])
async def test_nul_and_lone_surrogates_in_text_are_bad_user_input(client, tenant, bad):
    cases = [
        ("mutation($v: String!) { unregisterDevice(token: $v) }", {"v": bad}),
        ("query($v: String!) { clients(search: $v) { id } }", {"v": bad}),
        ("query($v: String) { units(filter: {keyword: $v}) { edges { cursor } } }", {"v": bad}),
        (
            "query($v: [String!]) { listings(filter: {communities: $v}) { edges { cursor } } }",
            {"v": ["ok", bad]},
        ),
        ("query($v: [String!]) { units(filter: {tags: $v}) { edges { cursor } } }", {"v": [bad]}),
        (
            "mutation($i: CreateClientInput!) { createClient(input: $i) { __typename } }",
            {"i": {"name": bad}},
        ),
        ("query($v: ID!) { unit(id: $v) { id } }", {"v": bad}),
    ]
    reason = "NUL" if "\u0000" in bad else "Unicode"
    for document, variables in cases:
        name = document[document.index("$") : document.index(":")]
        refused(await send(client, tenant.slug, document, variables), name, reason)
    # Written into the document itself: refused the same way (before anything runs).
    literal = 'mutation { unregisterDevice(token: "a\\u0000b") }'
    at_literal("NUL", await gql(client, literal, tenant=tenant.slug))


# ------------------------------------------------------------------ numbers a column holds


@pytest.mark.parametrize(
    ("field", "filter_", "needle"),
    [
        ("listings", {"rooms": [-14815220]}, "rooms"),
        ("units", {"rooms": [40000]}, "rooms"),
        ("units", {"floorMin": -2147483648}, "floorMin"),
        ("units", {"floorMax": 32768}, "floorMax"),
        ("listings", {"builtAfter": 99999999}, "builtAfter"),
        ("units", {"areaMin": "123456789012"}, "areaMin"),
        ("listings", {"areaMax": "100000000"}, "areaMax"),
    ],
)
async def test_filter_numbers_beyond_their_column_are_bad_user_input(
    client, tenant, field, filter_, needle
):
    kind = "UnitFilter" if field == "units" else "ListingFilter"
    document = f"query($f: {kind}) {{ {field}(filter: $f) {{ edges {{ cursor }} }} }}"
    refused(await gql(client, document, {"f": filter_}, tenant=tenant.slug), needle)
    # At the edge of the column: an answer (nothing matches).
    inside = {
        k: ([32767] if isinstance(v, list) else 32767 if k != "areaMin" else "99999999")
        for k, v in filter_.items()
        if k not in ("areaMax",)
    }
    if inside:
        res = await gql(client, document, {"f": inside}, tenant=tenant.slug)
        assert res == {"data": {field: {"edges": []}}}, res


@pytest.mark.parametrize("bad", ["Infinity", "-Infinity", "NaN", "1e999999", 1e308, "1e-999999"])
async def test_non_finite_and_huge_decimals_are_bad_user_input(client, tenant, bad):
    for field, kind in (("units", "UnitFilter"), ("listings", "ListingFilter")):
        document = f"query($f: {kind}) {{ {field}(filter: $f) {{ edges {{ cursor }} }} }}"
        refused(
            await gql(client, document, {"f": {"areaMin": bad}}, tenant=tenant.slug),
            "$f",
            "Decimal",
        )
    res = await gql(
        client,
        "query($n: NeedsInput) { recommendations(needs: $n) { score } }",
        {"n": {"areaMax": bad}},
        tenant=tenant.slug,
    )
    refused(res, "Decimal")


async def test_an_area_that_rounds_to_zero_is_a_validation_error(client, tenant):
    """0.0000001 m² is kept as 0.00 m², and a price per m² would divide by zero."""
    res = await gql(
        client,
        LISTING,
        {
            "input": {
                "askingPrice": 300_000_000,
                "community": "C",
                "grossArea": "0.0000001",
                "rooms": 2,
            }
        },
        tenant=tenant.slug,
    )
    error = res["data"]["createListing"]
    assert (error["__typename"], error["code"], error["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        "grossArea",
    ), res
    inv = await inventory(client, tenant.slug, floors=1, per_floor=1)
    unit = {
        "buildingId": inv["building"]["id"],
        "floor": 1,
        "number": "199",
        "grossArea": "0.004",
        "listPrice": 100_000_000,
    }
    res = await gql(client, CREATE_UNITS, {"units": [unit]}, tenant=tenant.slug)
    assert res["data"]["createUnits"]["field"] == "grossArea", res
    # The smallest area kept (0.005 rounds to 0.01) is accepted.
    res = await gql(
        client,
        LISTING,
        {"input": {"askingPrice": 300_000_000, "community": "C", "grossArea": "0.005", "rooms": 2}},
        tenant=tenant.slug,
    )
    assert res["data"]["createListing"]["listing"]["grossArea"] == "0.01", res


# ------------------------------------------------------------------ instants


async def test_instants_that_overflow_in_utc_are_bad_user_input(client, tenant):
    res = await gql(
        client,
        CREATE_CLIENT,
        {"input": {"name": "Far", "phone": "13512340001"}},
        tenant=tenant.slug,
    )
    cid = res["data"]["createClient"]["client"]["id"]
    follow_up = "mutation($c: ID!, $d: DateTime!) { scheduleFollowUp(clientId: $c, dueAt: $d) {"
    follow_up += " __typename ... on UserError { field } } }"
    for due in ("9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z", "3000-01-01T00:00:00Z"):
        refused(
            await gql(client, follow_up, {"c": cid, "d": due}, tenant=tenant.slug), "$d", "DateTime"
        )
    shows = "query($s: DateTime) { myShowings(since: $s) { id } }"
    for since in ("0001-01-01T00:00:00+14:00", "1899-12-31T23:59:59Z"):
        refused(await gql(client, shows, {"s": since}, tenant=tenant.slug), "$s", "DateTime")
    literal = '{ myShowings(since: "0001-01-01T00:00:00+14:00") { id } }'
    at_literal("DateTime", await gql(client, literal, tenant=tenant.slug))
    # Inside the range: answered.
    assert await gql(client, shows, {"s": "1900-01-01T00:00:00+00:00"}, tenant=tenant.slug) == {
        "data": {"myShowings": []}
    }


async def test_an_instant_without_a_utc_offset_is_bad_user_input(client, tenant):
    """Read in the server's zone it would name another instant: refused, in the scalar, for
    every DateTime argument and input field (a variable, a nested input, a literal)."""
    hint = "give a UTC offset, e.g. 2026-12-04T10:00:00+08:00"
    shows = "query($s: DateTime) { myShowings(since: $s) { id } }"
    for since in ("2026-12-04T10:00:00", "2026-12-04T10:00", "2026-12-04"):
        refused(await gql(client, shows, {"s": since}, tenant=tenant.slug), "$s", hint)
    audit = "query($f: AuditFilter) { auditLog(filter: $f) { action } }"
    for where in ({"since": "2026-12-04T10:00:00"}, {"until": "2999-01-01T00:00:00.5"}):
        refused(await gql(client, audit, {"f": where}, tenant=tenant.slug), "$f", hint)
    at_literal(
        hint,
        await gql(
            client, '{ myShowings(since: "2026-12-04T10:00:00") { id } }', tenant=tenant.slug
        ),
    )
    # With an offset (Z, or +08:00): answered.
    for since in ("2026-12-04T10:00:00Z", "2026-12-04T10:00:00+08:00"):
        res = await gql(client, shows, {"s": since}, tenant=tenant.slug)
        assert res == {"data": {"myShowings": []}}, res
    res = await gql(
        client, audit, {"f": {"since": "2026-12-04T10:00:00+08:00"}}, tenant=tenant.slug
    )
    assert "errors" not in res, res


# ------------------------------------------------------------------ long lists


async def test_a_list_longer_than_the_limit_is_refused_before_it_is_read(client, tenant):
    # 20,000 ids fit in the 1 MiB body: refused by the list limit, before coercion.
    ids = [str(uuid.uuid4()) for _ in range(20_000)]
    for document in (
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) { count } }",
        "query($ids: [ID!]) { units(filter: {projectIds: $ids}) { edges { cursor } } }",
    ):
        refused(
            await gql(client, document, {"ids": ids}, tenant=tenant.slug),
            "$ids",
            "more than 5000 items",
        )
    # 100,000 (past the driver's 32,767 parameters) do not: the body limit answers first.
    many = ids * 5
    res = await gql(
        client,
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) { count } }",
        {"ids": many},
        tenant=tenant.slug,
        expect_status=413,
    )
    refused(res, "larger than the limit")
    res = await gql(
        client,
        "query($f: UnitFilter) { units(filter: $f) { edges { cursor } } }",
        {"f": {"tags": ["a"] * 5001}},
        tenant=tenant.slug,
    )
    refused(res, "$f.tags")
    # 5,000 is still taken (one statement, 5,000 parameters).
    res = await gql(
        client,
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) { count } }",
        {"ids": ids[:5000]},
        tenant=tenant.slug,
    )
    assert res == {"data": {"markNotificationsRead": {"count": 0}}}, json.dumps(res)[:300]


# ------------------------------------------------------------------ references (item 5)


async def test_a_showing_of_units_or_listings_of_another_tenant_is_not_found(
    client, make_tenant, tenant
):
    other = await make_tenant()
    theirs = await inventory(client, other.slug, floors=1, per_floor=1)
    mine = await inventory(client, tenant.slug, floors=1, per_floor=1)
    res = await gql(
        client,
        CREATE_CLIENT,
        {"input": {"name": "Ref", "phone": "13512340002"}},
        tenant=tenant.slug,
    )
    cid = res["data"]["createClient"]["client"]["id"]
    base = {"clientId": cid, "startsAt": later(24), "endsAt": later(25)}
    for extra, field in (
        ({"unitIds": [theirs["units"][0]["id"]]}, "unitIds"),
        ({"unitIds": [mine["units"][0]["id"], str(uuid.uuid4())]}, "unitIds"),
        ({"listingIds": [str(uuid.uuid4())]}, "listingIds"),
        (
            {"unitIds": [mine["units"][0]["id"]], "listingIds": [theirs["units"][0]["id"]]},
            "listingIds",
        ),
    ):
        res = await gql(client, SHOWING, {"input": {**base, **extra}}, tenant=tenant.slug)
        error = res["data"]["scheduleShowing"]
        assert (error["__typename"], error["code"], error["field"]) == (
            "NotFoundError",
            "NOT_FOUND",
            field,
        ), res
    res = await gql(
        client,
        SHOWING,
        {"input": {**base, "unitIds": [mine["units"][0]["id"]]}},
        tenant=tenant.slug,
    )
    assert res["data"]["scheduleShowing"]["__typename"] == "ShowingPayload", res


async def test_a_bill_for_a_unit_of_another_tenant_is_not_found(
    client, make_tenant, member, tenant
):
    payer, _ = await member(tenant, ["owner"])
    other = await make_tenant()
    theirs = await inventory(client, other.slug, floors=1, per_floor=1)
    mine = await inventory(client, tenant.slug, floors=1, per_floor=1)
    bill = {
        "kind": "PROPERTY_FEE",
        "title": "物业费",
        "payerId": str(payer),
        "amount": 10_000,
        "dueOn": (date.today() + timedelta(days=5)).isoformat(),
    }
    for unit_id in (theirs["units"][0]["id"], str(uuid.uuid4())):
        res = await gql(client, BILL, {"input": {**bill, "unitId": unit_id}}, tenant=tenant.slug)
        error = res["data"]["issueBill"]
        assert (error["__typename"], error["code"], error["field"]) == (
            "NotFoundError",
            "NOT_FOUND",
            "unitId",
        ), res
    res = await gql(
        client, BILL, {"input": {**bill, "unitId": mine["units"][0]["id"]}}, tenant=tenant.slug
    )
    assert res["data"]["issueBill"]["__typename"] == "BillPayload", res


async def test_unit_changes_of_an_unknown_building_or_project_is_not_found(
    client, live_server, make_tenant, tenant
):
    """Like listingChanges with an unknown saved search: NOT_FOUND, not a silent feed."""
    other = await make_tenant()
    theirs = await inventory(client, other.slug, floors=1, per_floor=1)
    async with live(live_server, tenant.slug) as ws:
        for variables, field in (
            ({"buildingId": theirs["building"]["id"]}, "building"),
            ({"buildingId": str(uuid.uuid4())}, "building"),
            ({"projectId": theirs["project"]["id"]}, "project"),
        ):
            sid = await ws.subscribe(UNIT_CHANGES, variables)
            msg = await ws.recv()
            assert msg["type"] == "error" and msg["id"] == sid, msg
            [error] = msg["payload"]
            assert error["extensions"]["code"] == "NOT_FOUND", error
            assert field in error["message"], error
