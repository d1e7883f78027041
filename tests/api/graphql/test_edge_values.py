"""Generated edge test: every argument of every HTTP root field (queries and mutations) gets
values at and beyond the edges of its type, and no answer is a 5xx or an INTERNAL error.

The schema is walked with graphql-core (over the strawberry schema), so there is no per-field
test code: for each argument, and inside an input object for each of its fields (recursively),
one request per hostile value, every other required argument or field filled with a valid
minimal value (ids of a small seeded world, picked by the argument's name). Hostile values:
integers at and past 32 and 64 bits, wrong scalar kinds (a string for a number, an object for a
string, a string for an Upload), non-finite and huge decimals, NUL and lone surrogates in
strings, far dates with +-14:00 offsets, and lists of 100,000 items.

A root field that cannot be covered is listed in ``NOT_COVERED`` with its reason; a root field
neither covered nor listed fails the test (so a new field joins the sweep or says why not).
Subscriptions are served over the WebSocket by their own endpoint:
``test_every_subscription_argument_at_its_edges`` sends the same values there."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    is_required_input_field,
)

from api.graphql.schema import build_schema
from tests.api.helpers import RawHTTPPool
from tests.api.live.helpers import live
from tests.api.unit.helpers import inventory
from tests.conftest import auth_headers, gql
from tests.conftest import test_settings as gateway_settings

# Root fields the sweep cannot cover, with the reason. Fields without arguments are covered by
# construction (there is no value to send).
NOT_COVERED: dict[str, str] = {}

# Lists this long go to every list argument over HTTP (past the 32,767 parameters of one
# statement; such a body is also past the 1 MiB body limit: 413). Over the WebSocket, whose
# messages are capped at 1 MiB too (a larger one closes the socket: test_edge_input.py), lists
# go just past the 5,000 items a list variable may hold.
LONG = 100_000
WS_LONG = 5_001

HOSTILE: dict[str, list] = {
    "Int": [2**31, -(2**31) - 1, 2**31 - 1, -(2**31), 40_000, -40_000, -1, "1", {"a": 1}, 1.5],
    "Long": [2**63, -(2**63) - 1, 2**63 - 1, -(2**63), 2**31, -1, "1", 1e300],
    "Float": [1e308, -1e308, "NaN", "Infinity", 2**63, {"a": 1}],
    "Decimal": [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999999",
        "-1e999999",
        "1e-999999",
        1e308,
        -1e308,
        "0.0000001",
        "99999999999999999999.99",
        "-1",
        {"a": 1},
    ],
    "String": ["a\u0000b", "\ud800", "x" * 5000, {"a": 1}, 12, ["a"]],
    "ID": [
        "a\u0000b",
        "\ud800",
        "00000000-0000-0000-0000-000000000000",
        "not-an-id",
        2**63,
        {"a": 1},
    ],
    "DateTime": [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59",
        "2026-13-45T99:00:00Z",
        12,
    ],
    "Date": ["0001-01-01", "9999-12-31", "2026-02-30", 12],
    "Boolean": ["true", 1],
    "Upload": ["x", {"a": 1}, 1],
    "JSON": [{"a": "\u0000"}, "\ud800", 2**64],
}
ENUM_HOSTILE = ["NOT_A_VALUE", 1]

# Valid minimal strings by argument name (anything else: "x").
STRINGS = {
    "phone": "13800138000",
    "email": "edge@example.com",
    "password": "Edge-Passw0rd-2026",
    "identifier": "edge@example.com",
    "start": "22:00",
    "end": "07:00",
    "timeZone": "Asia/Shanghai",
    "locale": "zh-CN",
    "successUrl": "https://example.com/ok",
    "cancelUrl": "https://example.com/no",
    "returnUrl": "https://example.com/back",
    "refreshUrl": "https://example.com/again",
    "url": "https://example.com/tour",
    "tenantSlug": "edge-sweep",
    "plan": "standard",
    "key": "x",
    "value": "x",
}


def _ids(world: dict, name: str) -> str:
    """A real id for an argument or input field named ``name`` (else one naming nothing)."""
    base = name[:-1] if name.endswith("Ids") else name
    for key, kind in (
        ("project", "project"),
        ("building", "building"),
        ("unitType", None),
        ("unit", "unit"),
        ("listing", "listing"),
        ("client", "client"),
        ("keep", "client"),
        ("forClient", "client"),
        ("account", "agent"),
        ("agent", "agent"),
        ("payer", "agent"),
        ("target", "unit"),
    ):
        if base.startswith(key):
            return world[kind] if kind else str(uuid.uuid4())
    return str(uuid.uuid4())


class Filler:
    """Valid minimal values of input types, and the hostile variants of a value."""

    def __init__(self, world: dict, long: int = LONG):
        self.world = world
        self.long = long

    def minimal(self, type_, name: str):
        if isinstance(type_, GraphQLNonNull):
            return self.minimal(type_.of_type, name)
        if isinstance(type_, GraphQLList):
            return [self.minimal(type_.of_type, name)]
        if isinstance(type_, GraphQLInputObjectType):
            return {
                fname: self.minimal(f.type, fname)
                for fname, f in type_.fields.items()
                if is_required_input_field(f)
            }
        if isinstance(type_, GraphQLEnumType):
            return next(iter(type_.values))
        return self.scalar(type_.name, name)

    def scalar(self, kind: str, name: str):
        now = datetime.now(UTC).replace(microsecond=0)
        return (
            {
                "Int": 1,
                "Long": 1000,
                "Float": 1.0,
                "Decimal": "1.5",
                "Boolean": False,
                "ID": None,
                "String": STRINGS.get(name, "x"),
                "Upload": None,
                "DateTime": (now + timedelta(days=1, hours=3)).isoformat(),
                "Date": (date.today() + timedelta(days=10)).isoformat(),
                "JSON": {},
            }[kind]
            if kind != "ID"
            else _ids(self.world, name)
        )

    def variants(self, type_, name: str):
        """(label, value) pairs: ``type_``'s value with one hostile leaf, the rest minimal."""
        if isinstance(type_, GraphQLNonNull):
            yield from self.variants(type_.of_type, name)
            return
        if isinstance(type_, GraphQLList):
            item = type_.of_type
            if get_named_type(item).name == "ID":
                many = [str(uuid.uuid4()) for _ in range(self.long)]
            else:
                many = [self.minimal(item, name)] * self.long
            yield f"{name}: {self.long} items", many
            for label, value in self.variants(item, name):
                yield label, [value]
            return
        if isinstance(type_, GraphQLInputObjectType):
            base = self.minimal(type_, name)
            yield f"{name}: a string", "x"
            for fname, f in type_.fields.items():
                for label, value in self.variants(f.type, fname):
                    yield f"{name}.{label}", {**base, fname: value}
            return
        values = ENUM_HOSTILE if isinstance(type_, GraphQLEnumType) else HOSTILE[type_.name]
        for value in values:
            yield f"{name}={json.dumps(value)[:40]}", value


def _selection(field) -> str:
    return "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"


def _document(op: str, fname: str, field, args: dict) -> str:
    defs = ", ".join(f"${a}: {field.args[a].type}" for a in args)
    call = ", ".join(f"{a}: ${a}" for a in args)
    return (
        f"{op}{f'({defs})' if defs else ''} "
        f"{{ {fname}{f'({call})' if call else ''}{_selection(field)} }}"
    )


def edge_cases(gschema, filler: Filler, operation: str, fill=None) -> tuple[list, set]:
    """(cases, covered root fields) of one root type: (label, document, variables). ``fill``:
    root field -> more arguments of its base (beyond the required ones)."""
    root = getattr(gschema, f"{operation}_type")
    cases, covered = [], set()
    for fname, field in root.fields.items():
        if fname in NOT_COVERED:
            continue
        before = len(cases)
        base = {
            a: filler.minimal(arg.type, a)
            for a, arg in field.args.items()
            if is_required_argument(arg)
        }
        base.update((fill or {}).get(fname, {}))
        for aname, arg in field.args.items():
            for label, value in filler.variants(arg.type, aname):
                variables = {**base, aname: value}
                document = _document(operation, fname, field, variables)
                cases.append((f"{fname}({label})", document, variables))
        if len(cases) > before or not field.args:  # no argument: nothing to send
            covered.add(fname)
    return cases, covered


async def _sweep(server, slug: str, cases: list, concurrency: int) -> list[str]:
    failures: list[str] = []
    headers = auth_headers(slug)
    queue: asyncio.Queue = asyncio.Queue()
    for case in cases:
        queue.put_nowait(case)

    async with RawHTTPPool(server.port, concurrency) as pool:

        async def worker():
            while not queue.empty():
                label, document, variables = queue.get_nowait()
                try:
                    status, body = await asyncio.wait_for(
                        pool.post_json(
                            "/graphql", {"query": document, "variables": variables}, headers
                        ),
                        60,
                    )
                except Exception as exc:  # a non-JSON answer (e.g. a bare 500)
                    failures.append(f"{label}: no JSON answer ({type(exc).__name__})")
                    continue
                codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors", [])}
                if status >= 500 or "INTERNAL" in codes:
                    failures.append(f"{label}: {status} {json.dumps(body)[:300]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


@pytest.fixture
async def world(client, make_tenant, member):
    tenant = await make_tenant()
    slug = tenant.slug
    agent_id, _ = await member(tenant, ["agent"])
    inv = await inventory(client, slug, floors=1, per_floor=2)
    person = {"i": {"name": "Edge Client", "phone": "13512345678"}}
    res = await gql(
        client,
        "mutation($i: CreateClientInput!) { createClient(input: $i) {"
        " ... on ClientPayload { client { id } } } }",
        person,
        tenant=slug,
    )
    client_id = res["data"]["createClient"]["client"]["id"]
    res = await gql(
        client,
        "mutation($i: CreateListingInput!) { createListing(input: $i) {"
        " ... on ListingPayload { listing { id } } } }",
        {
            "i": {
                "askingPrice": 300_000_000,
                "community": "Edge Court",
                "grossArea": "80",
                "rooms": 2,
            }
        },
        tenant=slug,
    )
    listing_id = res["data"]["createListing"]["listing"]["id"]
    return {
        "slug": slug,
        "project": inv["project"]["id"],
        "building": inv["building"]["id"],
        "unit": inv["units"][0]["id"],
        "listing": listing_id,
        "client": client_id,
        "agent": str(agent_id),
    }


async def test_every_http_root_argument_at_its_edges(live_server, world):
    gschema = build_schema(gateway_settings())._schema
    filler = Filler(world)
    queries, q_covered = edge_cases(gschema, filler, "query")
    mutations, m_covered = edge_cases(gschema, filler, "mutation")

    roots = set(gschema.query_type.fields) | set(gschema.mutation_type.fields)
    assert not set(NOT_COVERED) - roots, "NOT_COVERED names a field that is gone"
    # Every root field is swept or listed with its reason.
    assert roots - q_covered - m_covered - set(NOT_COVERED) == set()
    assert len(queries) > 300 and len(mutations) > 1000, (len(queries), len(mutations))

    failures = await _sweep(live_server, world["slug"], queries, concurrency=4)
    # Mutations change the seeded world: one at a time, so an answer depends on no race.
    failures += await _sweep(live_server, world["slug"], copy.deepcopy(mutations), concurrency=1)
    assert not failures, f"{len(failures)} of {len(queries) + len(mutations)}:\n" + "\n".join(
        failures
    )


# A subscription accepted with ``since`` ahead of the tenant's sequence answers RefetchRequired
# at once, so every case gets exactly one message (an error or that answer).
FAR_AHEAD = 2**62


async def test_every_subscription_argument_at_its_edges(live_server, world):
    """The same values over the WebSocket (graphql-transport-ws), one subscription at a time:
    each answered by an error that is not INTERNAL, or accepted; the connection stays open."""
    gschema = build_schema(gateway_settings())._schema
    fill = {
        name: {"since": FAR_AHEAD}
        for name, f in gschema.subscription_type.fields.items()
        if "since" in f.args
    }
    fill["unitChanges"]["buildingId"] = world["building"]
    cases, covered = edge_cases(gschema, Filler(world, WS_LONG), "subscription", fill)
    assert covered | set(NOT_COVERED) >= set(gschema.subscription_type.fields)
    assert len(cases) > 100, len(cases)
    failures = []
    async with live(live_server, world["slug"]) as ws:
        for label, document, variables in cases:
            sid = await ws.subscribe(document, variables)
            while True:  # until this subscription's answer (a replay of earlier ones: skipped)
                try:
                    msg = await ws.recv(timeout=2)
                except TimeoutError:  # accepted, and nothing to replay: fine
                    msg = {"id": sid, "type": "complete"}
                payload = msg.get("payload")
                errors = payload if msg["type"] == "error" else (payload or {}).get("errors", [])
                if any((e.get("extensions") or {}).get("code") == "INTERNAL" for e in errors):
                    failures.append(f"{label}: {json.dumps(msg)[:300]}")
                if msg.get("id") == sid:
                    break
            if msg["type"] != "error":
                await ws.complete(sid)
    assert not failures, "\n".join(failures)


def test_every_scalar_and_enum_has_hostile_values():
    """A new scalar must say what its edges are."""
    gschema = build_schema(gateway_settings())._schema
    inputs = {
        t.name
        for t in gschema.type_map.values()
        if isinstance(t, GraphQLScalarType) and not t.name.startswith("__")
    }
    assert inputs <= set(HOSTILE), inputs - set(HOSTILE)
