"""A generated cross-tenant sweep: every Query and Mutation root field that takes an ID
(an argument, a list of them, or a field of an input object, at any depth) is called by the
admin of tenant B with the id of a real object of tenant A at that place, every other
argument filled with a valid value of B (generated from its type). The answer must be
NOT_FOUND (a query error, or a mutation's typed error), null or empty; never INTERNAL, never
an id or a name of A; and A's tables must be unchanged afterwards.

The fields come from the schema, so a new one is swept without a new test. A field that cannot
be swept is listed in ``NOT_SWEPT`` with its reason; a field that is neither swept nor listed
fails ``test_every_root_field_with_an_id_is_swept_or_listed``."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    Undefined,
)
from sqlalchemy import text

from api.graphql.schema import build_schema
from api.ids import uuid7
from tenants.sessions import TenantDatabase
from tests import conftest
from tests.api.importing.helpers import upload
from tests.api.payment.helpers import connect
from tests.api.unit.helpers import inventory
from tests.conftest import TOKENS, gql

MARK = "LEAKMARK"  # in tenant A's names: never in an answer to B

# ID positions (field, path) the sweep does not call, and why.
NOT_SWEPT: dict[tuple[str, str], str] = {}

# Arguments that are positions in B's own lists (cursors), not references: B's own data may
# come back; only the leak, INTERNAL and unchanged-A checks apply. So for ids inside a filter
# (an argument or input field named ``filter``/``units``/``listings`` of a ``*Filter`` type):
# a filter naming unknown ids matches nothing of B, and a saved search may keep such a filter.
CURSORS = {("projects", "after"), ("clients", "after"), ("inbox", "before")}

# Positions where a typed user error other than NOT_FOUND is the right answer (never INTERNAL,
# never data of A), and why.
OTHER_ANSWERS = {
    ("adjustPrices", "input.buildingIds"): "selects units for the rule: matches none of B's",
    ("adjustPrices", "input.unitTypeIds"): "selects units for the rule: matches none of B's",
    ("adjustPrices", "input.unitIds"): "selects units for the rule: matches none of B's",
    ("showingFeedback", "items.id"): "checked against what the showing showed (BAD_USER_INPUT)",
    ("trackActivity", "events.id"): "an event batch naming no unit or listing of B is invalid",
    ("markNotificationsRead", "ids"): "marks B's own notifications only (count 0)",
}

# Values (of B) some fields need besides the generated ones to reach their reference checks.
EXTRA = {
    "adjustPrices": lambda ids: {"input": {"percent": "1.00"}},
    "createLeadRoute": lambda ids: {"input": {"teamId": ids["team"]}},
    "updateLeadRoute": lambda ids: {"input": {"teamId": ids["team"]}},
    "scheduleShowing": lambda ids: {
        "input": {
            "unitIds": [ids["unit"]],
            "endsAt": (datetime.now(UTC) + timedelta(days=2, hours=1)).isoformat(),
        }
    },
}
# A rule sends leads to a team or to an agent: testing its agent, no team.
EXTRA_NOT_WITH = {("createLeadRoute", "input.agentId"), ("updateLeadRoute", "input.agentId")}

# The kind of object an ID names, by argument name (``fooId`` -> table ``foo`` otherwise);
# ``id`` by field. None: every kind is tried.
KIND_BY_ARG = {
    "accountId": "account",
    "agentId": "account",
    "payerId": "account",
    "keepId": "client",
    "mergeId": "client",
    "forClient": "client",
    "parentId": "team",
    "fallbackTeamIds": "team",
    "savedSearchId": "follow",
    "ownerId": None,
    "agentIds": "account",
    "actorId": "account",
    "targetId": None,
    "ids": "notification",
    "followUpId": "client_follow_up",
    "showingId": "client_showing",
    "buildingIds": "building",
    "unitTypeIds": "unit_type",
    "unitIds": "unit",
    "listingIds": "listing",
    "requestId": "subscription_request",
    "templateId": "contract_template",
}
KIND_BY_FIELD = {
    "project": "project",
    "building": "building",
    "unit": "unit",
    "unitType": "unit_type",
    "listing": "listing",
    "client": "client",
    "deleteMedia": "media",
    "unfollow": "follow",
    "revokeSession": "session",
    "updateLeadRoute": "lead_route",
    "deleteLeadRoute": "lead_route",
    "decidePriceAdjustment": "price_adjustment",
    "pledge": "pledge",
    "salesSubscription": "subscription",
    "salesContract": "contract",
}

# Strings some arguments need to be valid (by argument name); others get "x".
STRINGS = {
    "phone": "+8613800138000",
    "email": "sweep@example.com",
    "url": "https://example.com/a.jpg",
    "returnUrl": "https://example.com/r",
    "refreshUrl": "https://example.com/r",
    "successUrl": "https://example.com/s",
    "cancelUrl": "https://example.com/c",
    "kind": "team",
    "code": "123456",
    "plan": "standard",
    "key": "custom_sweep",
    "outcome": "called",
    "reason": "sweep",
    "title": "Sweep",
    "text": "Sweep",
    "roles": "agent",
}
ENUMS = {"status": "AVAILABLE"}


def _schema():
    return build_schema(conftest.test_settings())._schema


def _named(t):
    while isinstance(t, GraphQLNonNull | GraphQLList):
        t = t.of_type
    return t


def _sdl(t) -> str:
    if isinstance(t, GraphQLNonNull):
        return _sdl(t.of_type) + "!"
    if isinstance(t, GraphQLList):
        return "[" + _sdl(t.of_type) + "]"
    return t.name


def _is_id(t) -> bool:
    return isinstance(_named(t), GraphQLScalarType) and _named(t).name == "ID"


def id_positions(field) -> list[tuple[str, ...]]:
    """Paths (argument, input field, ...) of every ID a root field takes."""
    out = []

    def walk(t, path, seen):
        n = _named(t)
        if _is_id(t):
            out.append(path)
        elif isinstance(n, GraphQLInputObjectType) and n.name not in seen:
            for name, f in n.fields.items():
                walk(f.type, (*path, name), seen | {n.name})

    for name, arg in field.args.items():
        walk(arg.type, (name,), frozenset())
    return out


def root_fields():
    schema = _schema()
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        for name, field in root.fields.items():
            yield kind, name, field


def selection(t, depth: int = 0) -> str:
    n = _named(t)
    if isinstance(n, GraphQLScalarType | GraphQLEnumType):
        return ""
    if isinstance(n, GraphQLUnionType):
        parts = [f"... on {m.name} {selection(m, depth)}" for m in n.types]
        return "{ __typename " + " ".join(parts) + " }"
    parts = ["__typename"]
    for name, f in n.fields.items():
        if any(
            isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined
            for a in f.args.values()
        ):
            continue
        sub = _named(f.type)
        if isinstance(sub, GraphQLScalarType | GraphQLEnumType):
            parts.append(name)
        elif depth < 1 and isinstance(
            sub, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType
        ):
            parts.append(f"{name} {selection(sub, depth + 1)}")
    return "{ " + " ".join(parts) + " }"


def value_for(t, name: str, ids: dict, at: tuple[str, ...] | None, a_id: str | None, path=()):
    """A valid value of type ``t`` for argument/field ``name``; at ``at`` (a path below this
    value) the id ``a_id`` of tenant A."""
    if at == ():
        return [a_id] if isinstance(_strip(t), GraphQLList) else a_id
    n = _named(t)
    many = isinstance(_strip(t), GraphQLList)
    if isinstance(n, GraphQLInputObjectType):
        out = {}
        for fname, f in n.fields.items():
            below = at[1:] if at and at[0] == fname else None
            required = isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
            if required or below is not None:
                out[fname] = value_for(f.type, fname, ids, below, a_id)
        return [out] if many else out
    if isinstance(n, GraphQLEnumType):
        values = list(n.values)
        v = ENUMS.get(name) if ENUMS.get(name) in values else values[0]
        return [v] if many else v
    v = _scalar(n.name, name, ids)
    return [v] if many else v


def _strip(t):
    return t.of_type if isinstance(t, GraphQLNonNull) else t


def kind_of(field_name: str, arg: str) -> str | None:
    if arg in KIND_BY_ARG:
        return KIND_BY_ARG[arg]
    if arg == "id":
        return KIND_BY_FIELD.get(field_name)
    m = re.fullmatch(r"(\w+?)Ids?", arg)
    return re.sub(r"(?<!^)([A-Z])", r"_\1", m.group(1)).lower() if m else None


def _scalar(scalar: str, name: str, ids: dict):
    now = datetime.now(UTC)
    if scalar == "ID":
        return ids.get(kind_of("", name) or "", str(uuid7()))
    return {
        "String": STRINGS.get(name, "x"),
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "Long": 100_000,
        "Decimal": "1.00",
        "DateTime": (now + timedelta(days=2)).isoformat(),
        "Date": (date.today() + timedelta(days=10)).isoformat(),
        "JSON": {},
    }.get(scalar, "x")


def operation(kind: str, name: str, field, args: dict) -> str:
    decl = ", ".join(f"${a}: {_sdl(field.args[a].type)}" for a in args)
    use = ", ".join(f"{a}: ${a}" for a in args)
    head = f"{kind}({decl})" if decl else kind
    return f"{head} {{ {name}{f'({use})' if use else ''} {selection(field.type)} }}"


async def call(http, slug, kind, name, field, args: dict, token=None) -> dict:
    doc = operation(kind, name, field, args)
    uploads = [a for a in args if _named(field.args[a].type).name == "Upload"]
    if uploads:
        variables = {k: v for k, v in args.items() if k not in uploads}
        return await upload(
            http, slug, doc, variables, "a.png", PNG, token=token, content_type="image/png"
        )
    return await gql(http, doc, args, tenant=slug, **({"token": token} if token else {}))


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


# ---------------------------------------------------------------- one of each kind of object


async def _ok(http, slug, name, **args) -> dict:
    kind = "mutation"
    field = _schema().mutation_type.fields[name]
    res = await call(http, slug, kind, name, field, args)
    assert "errors" not in res, res
    got = res["data"][name]
    assert not (isinstance(got, dict) and "code" in got), (name, got)
    return got


async def populate(http, engine, tenant) -> dict[str, str]:
    """One of each kind of object in ``tenant`` (names marked for A), through the API where
    it can be made that way. Returns {kind (table): an id}."""
    slug = tenant.slug
    tag = f"{MARK} {slug}"
    inv = await inventory(http, slug, floors=1, per_floor=3, project_name=f"{tag} project")
    project, building = inv["project"]["id"], inv["building"]["id"]
    units = [u["id"] for u in inv["units"]]
    me = (await gql(http, "{ me { account { id } } mySessions { id } }", tenant=slug))["data"]
    account = me["me"]["account"]["id"]
    await _ok(
        http,
        slug,
        "createUnitType",
        input={"projectId": project, "name": f"{tag} A", "rooms": 3, "grossArea": "89.50"},
    )
    await _ok(
        http,
        slug,
        "createListing",
        input={
            "community": f"{tag} garden",
            "grossArea": "89.50",
            "rooms": 3,
            "askingPrice": 500_000_000,
            "sellerPhone": "+8613877778888",
        },
    )
    await _ok(
        http,
        slug,
        "createClient",
        input={
            "name": f"{tag} client",
            "phone": "+8613911112222",
            "idNumber": "110101199003077777",
            "otherPhones": ["+8613933334444"],
        },
    )
    ids = await table_ids(engine, tenant)
    soon = datetime.now(UTC) + timedelta(days=3)
    await _ok(
        http, slug, "scheduleFollowUp", clientId=ids["client"], dueAt=soon.isoformat(), note=tag
    )
    await _ok(
        http,
        slug,
        "scheduleShowing",
        input={
            "clientId": ids["client"],
            "startsAt": soon.isoformat(),
            "endsAt": (soon + timedelta(hours=1)).isoformat(),
            "unitIds": [units[0]],
            "listingIds": [ids["listing"]],
        },
    )
    await _ok(http, slug, "registerPledge", input={"projectId": project, "clientId": ids["client"]})
    team = await _ok(http, slug, "createTeam", input={"name": f"{tag} team", "kind": "company"})
    team_id = team["team"]["id"]
    await _ok(http, slug, "addTeamMember", teamId=team_id, accountId=account)
    await _ok(http, slug, "createLeadRoute", input={"name": f"{tag} route", "teamId": team_id})
    await _ok(http, slug, "follow", kind="UNIT", targetId=units[0])
    await _ok(http, slug, "saveSearch", input={"name": f"{tag} search", "units": {}})
    await _ok(
        http,
        slug,
        "addMediaLink",
        input={
            "ownerKind": "UNIT",
            "ownerId": units[0],
            "kind": "VR",
            "url": "https://example.com/vr",
            "caption": tag,
        },
    )
    await _ok(http, slug, "publishNotice", input={"title": f"{tag} notice", "text": tag})
    await _ok(
        http,
        slug,
        "registerDevice",
        input={"app": "AGENT", "platform": "IOS", "token": f"tok-{slug}"},
    )
    await _ok(
        http,
        slug,
        "issueBill",
        input={
            "kind": "PROPERTY_FEE",
            "title": f"{tag} bill",
            "payerId": account,
            "amount": 30_000,
            "dueOn": (date.today() + timedelta(days=10)).isoformat(),
        },
    )
    await _ok(
        http, slug, "adjustPrices", input={"projectId": project, "reason": tag, "percent": "1.00"}
    )
    await _ok(http, slug, "holdUnit", input={"unitId": units[1]})
    await _ok(http, slug, "reserveUnit", input={"unitId": units[2]})
    sub = await _ok(
        http, slug, "subscribeUnit", input={"unitId": units[2], "clientId": ids["client"]}
    )
    await _ok(
        http,
        slug,
        "requestSubscriptionExtension",
        subscriptionId=sub["subscription"]["id"],
        days=2,
        reason=tag,
    )
    await _ok(
        http,
        slug,
        "saveContractTemplate",
        input={"locale": "zh-CN", "name": tag, "title": tag, "clauses": [tag]},
    )
    await _ok(http, slug, "createContract", input={"subscriptionId": sub["subscription"]["id"]})
    await _ok(http, slug, "createCalendarFeed")
    async with TenantDatabase(engine).session(tenant) as session:  # no Stripe in this module
        from api.payment.models import Payment

        session.add(
            Payment(
                kind="deposit",
                amount=1_000,
                stripe_account=f"acct_{slug}",
                unit_id=uuid.UUID(units[1]),
                payer_id=uuid.UUID(account),
            )
        )
        await session.commit()
    ids = await table_ids(engine, tenant)
    ids.update(account=account, session=me["mySessions"][0]["id"], building=building)
    return ids


async def table_ids(engine, tenant) -> dict[str, str]:
    """{table: one id} of every table of the tenant's schema with a uuid ``id``."""
    async with engine.connect() as conn:
        tables = (
            await conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = :s"
                    " AND column_name = 'id' AND data_type = 'uuid'"
                ),
                {"s": tenant.schema_name},
            )
        ).all()
        out = {}
        for t in tables:
            got = await conn.scalar(text(f'SELECT id FROM "{tenant.schema_name}"."{t}" LIMIT 1'))
            if got is not None:
                out[t] = str(got)
        return out


async def snapshot(engine, tenant) -> dict[str, str]:
    """A digest of every table of the tenant's schema, and of its memberships."""
    async with engine.connect() as conn:
        tables = (
            await conn.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    " AND table_type = 'BASE TABLE'"
                ),
                {"s": tenant.schema_name},
            )
        ).all()
        out = {}
        for t in tables:
            out[t] = await conn.scalar(
                text(
                    f"SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), ''))"
                    f' FROM "{tenant.schema_name}"."{t}" r'
                )
            )
        out["membership"] = await conn.scalar(
            text(
                "SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY m::text), ''))"
                " FROM shared.membership m WHERE tenant_id = :t"
            ),
            {"t": uuid.UUID(tenant.id)},
        )
        return out


# ---------------------------------------------------------------- the sweep


def _sweep_plan():
    """(kind, field name, field, path, kind of object) of every call."""
    for kind, name, field in root_fields():
        for path in id_positions(field):
            if (name, ".".join(path)) not in NOT_SWEPT:
                yield kind, name, field, path, kind_of(name, path[-1])


def test_every_root_field_with_an_id_is_swept_or_listed():
    positions = {(name, ".".join(p)) for _, name, f in root_fields() for p in id_positions(f)}
    assert set(NOT_SWEPT) <= positions, "NOT_SWEPT names a position that is gone"
    swept = {(name, ".".join(path)) for _, name, _, path, _ in _sweep_plan()}
    assert swept | set(NOT_SWEPT) == positions and not swept & set(NOT_SWEPT)
    # The sweep walks the schema: it found the fields (and the ids inside input objects).
    assert len({name for name, _ in swept}) >= 50
    assert {
        ("scheduleShowing", "input.clientId"),
        ("issueBill", "input.payerId"),
        ("deleteMedia", "id"),
        ("markNotificationsRead", "ids"),
    } <= swept


def _in_filter(field, path) -> bool:
    t = field.args[path[0]].type
    for step in path[1:]:
        if _named(t).name.endswith("Filter"):
            return True
        t = _named(t).fields[step].type
    return False


def _empty(data) -> bool:
    """No answer: null, false, an empty list, or a connection with no edges."""
    if isinstance(data, dict) and "edges" in data:
        return data["edges"] == []
    return data in (None, False, [])


def _verdict(kind, name, field, path, res) -> str | None:
    """Why the answer is not acceptable (None: it is)."""
    errors = res.get("errors") or []
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    if "INTERNAL" in codes or (None in codes and errors):
        return f"error {errors}"
    data = (res.get("data") or {}).get(name)
    if errors:
        return None if codes == {"NOT_FOUND"} else f"errors {codes}"
    if (name, path[0]) in CURSORS or _in_filter(field, path) or _empty(data):
        return None
    if (name, ".".join(path)) in OTHER_ANSWERS:
        return None  # a typed answer: INTERNAL and A's data were ruled out above
    if isinstance(data, dict) and data.get("code") == "NOT_FOUND":
        return None
    return f"answered {json.dumps(data)[:300]}"


async def test_no_root_field_reaches_another_tenants_objects(stripe_gateway, engine, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    for t in (a, b):  # both take payments (through the loopback Stripe)
        await connect(engine, t)
    async with httpx.AsyncClient(base_url=stripe_gateway.url, timeout=30) as client:
        await _sweep(client, engine, a, b)


async def _sweep(client, engine, a, b) -> None:
    a_ids = await populate(client, engine, a)
    b_ids = await populate(client, engine, b)
    before = await snapshot(engine, a)
    a_values = set(a_ids.values())
    failures = []
    for kind, name, field, path, what in _sweep_plan():
        for k in [what] if what in a_ids else sorted(a_ids):
            a_id = a_ids[k]
            args = {}
            for arg_name, arg in field.args.items():
                below = path[1:] if path[0] == arg_name else None
                required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
                if required or below is not None:
                    args[arg_name] = value_for(arg.type, arg_name, b_ids, below, a_id)
            extras = {} if (name, ".".join(path)) in EXTRA_NOT_WITH else EXTRA.get(name)
            for arg_name, extra in (extras(b_ids) if extras else {}).items():
                args[arg_name] = {**extra, **args.get(arg_name, {})}
            res = await call(client, b.slug, kind, name, field, args, token=TOKENS[b.slug])
            answer = json.dumps(res)
            sent = {a_id}
            leaked = [v for v in a_values - sent if v in answer]
            where = f"{name}({'.'.join(path)}={k})"
            if (MARK in answer and a.slug in answer) or leaked:
                failures.append(f"{where}: data of A in {answer[:300]}")
            elif why := _verdict(kind, name, field, path, res):
                failures.append(f"{where}: {why}")
    assert await snapshot(engine, a) == before, "a call of B changed tenant A's rows"
    assert not failures, "\n".join(
        dict.fromkeys(f.split("=")[0] + ": " + f.split(": ", 1)[1][:200] for f in failures)
    )  # one line a position
