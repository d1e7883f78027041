"""Helpers of the identity and security tests: GraphQL documents, sessions made without a
password (no argon2 cost), reads of the shared tables straight from the database, SMS codes and
per-test client addresses, and the schema walk of the permission tests."""

from __future__ import annotations

import itertools
import json
import re
import uuid

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLUnionType,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_required_argument,
    is_required_input_field,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.graphql.permissions import requires
from api.identity import service
from api.identity.models import Membership
from api.security.kit import SecurityKit
from tenants.registry import TenantInfo
from tenants.sessions import TenantDatabase
from tests.api.helpers import DENIAL_TYPES

ME = "{ me { roles permissions dataScope account { id name phone email } tenant { slug } } }"

TOKENS_FIELDS = "accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt sessionId"

SIGN_UP = f"""
mutation($input: SignUpInput!) {{
  signUp(input: $input) {{
    __typename
    ... on SignUpPayload {{
      tenant {{ id slug name status }}
      account {{ id name phone email }}
      tokens {{ {TOKENS_FIELDS} }}
    }}
    ... on UserError {{ code message field }}
  }}
}}
"""

TOKENS_PAYLOAD = f"""{{
    __typename
    ... on SignInPayload {{ tokens {{ {TOKENS_FIELDS} }} }}
    ... on RateLimitedError {{ retryAfter }}
    ... on UserError {{ code message field }}
}}"""


def lit(value) -> str:
    """A Python value as a GraphQL literal. Tenant mutations in these tests inline their
    arguments: at the time of writing, any tenant mutation sent with variables fails with
    INTERNAL (see test_sign_in_with_variables_records_the_failure), which would hide what is
    tested."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {lit(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def mutation(field: str, selection: str = "", **args) -> str:
    arguments = "(" + ", ".join(f"{k}: {lit(v)}" for k, v in args.items()) + ")" if args else ""
    return f"mutation {{ {field}{arguments} {selection} }}"


def sign_in_op(identifier: str, password: str) -> str:
    return mutation("signIn", TOKENS_PAYLOAD, identifier=identifier, password=password)


REFRESH_PAYLOAD = TOKENS_PAYLOAD.replace("... on RateLimitedError { retryAfter }", "")


def refresh_op(token: str) -> str:
    return mutation("refreshTokens", REFRESH_PAYLOAD, refreshToken=token)


def revoke_session_op(session_id: str) -> str:
    return mutation("revokeSession", id=session_id)


SIGN_OUT = "mutation { signOut { revokedSessionId } }"
MY_SESSIONS = "{ mySessions { id current userAgent startedAt lastUsedAt expiresAt } }"

PASSWORD = "correct-horse-42"


def new_phone() -> tuple[str, str]:
    """A fresh valid mainland-China mobile number: (national digits, E.164). Unique, not
    random: drawn from uuid4 like ``new_email``, so replaying a run's seed never repeats the
    numbers (and the per-number limits they left behind in redis)."""
    national = f"139{uuid.uuid4().int % 10**8:08d}"
    return national, "+86" + national


def new_email(tag: str = "u") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def error_codes(res: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in res.get("errors") or []]


def assert_unauthenticated(res: dict) -> None:
    """The whole response is a refusal: no data, one UNAUTHENTICATED error."""
    assert res.get("data") is None, res
    assert error_codes(res) == ["UNAUTHENTICATED"], res


async def open_session(
    engine: AsyncEngine,
    kit: SecurityKit,
    tenant: TenantInfo,
    account_id: uuid.UUID,
) -> service.Tokens:
    """A new signed-in session (access + refresh token) of an existing member."""
    async with TenantDatabase(engine).session(tenant) as session:
        tokens = await service.start_session(session, kit, account_id, tenant)
        await session.commit()
    return tokens


async def new_account(
    engine: AsyncEngine,
    kit: SecurityKit,
    tenant: TenantInfo,
    roles: list[str],
    *,
    email: str | None = None,
    phone: str | None = None,
    password: str | None = None,
    name: str = "Person",
) -> tuple[uuid.UUID, service.Tokens]:
    """An account with a membership of ``roles`` in ``tenant`` and one session (with its
    refresh token, which the conftest ``member`` fixture does not return)."""
    async with TenantDatabase(engine).session(tenant) as session:
        account = await service.create_account(
            session,
            kit,
            name=name,
            phone=phone,
            email=email or (None if phone else new_email()),
            password=password,
        )
        session.add(Membership(account_id=account.id, tenant_id=uuid.UUID(tenant.id), roles=roles))
        tokens = await service.start_session(session, kit, account.id, tenant)
        await session.commit()
    return account.id, tokens


async def add_membership(
    engine: AsyncEngine, account_id: uuid.UUID, tenant: TenantInfo, roles: list[str]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO shared.membership (id, account_id, tenant_id, roles, status)"
                " VALUES (:id, :a, :t, :r, 'active')"
            ),
            {"id": uuid.uuid4(), "a": account_id, "t": uuid.UUID(tenant.id), "r": roles},
        )


async def scalar(engine: AsyncEngine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def row(engine: AsyncEngine, sql: str, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).mappings().first()


async def execute(engine: AsyncEngine, sql: str, **params) -> int:
    async with engine.begin() as conn:
        return (await conn.execute(text(sql), params)).rowcount


def root_fields(schema):
    """(root type name, GraphQL field name, strawberry field) of every root field."""
    out = []
    for type_name in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(type_name)
        if definition is None:
            continue
        for field in definition.fields:
            out.append((type_name, schema.config.name_converter.get_graphql_name(field), field))
    return out


def is_catalogue_class(cls) -> bool:
    perm = getattr(cls, "permission", None)
    return perm is not None and requires(perm) is cls


def dummy(gql_type) -> str:
    """A valid literal of a GraphQL input type (required parts only)."""
    if isinstance(gql_type, GraphQLNonNull):
        return dummy(gql_type.of_type)
    if isinstance(gql_type, GraphQLList):
        return "[]"
    if isinstance(gql_type, GraphQLEnumType):
        return next(iter(gql_type.values))
    if gql_type.name == "Upload":  # no literal is a file: a part of a multipart request
        return "$file"
    if isinstance(gql_type, GraphQLInputObjectType):
        parts = [
            f"{n}: {dummy(f.type)}"
            for n, f in gql_type.fields.items()
            if is_required_input_field(f)
        ]
        return "{" + ", ".join(parts) + "}"
    return {
        "ID": lit(str(uuid.uuid4())),
        "String": lit("perm-check"),
        "Int": "1",
        "Float": "1.0",
        "Boolean": "false",
        "DateTime": lit("2030-01-01T00:00:00+00:00"),
        "Date": lit("2030-01-01"),
    }.get(gql_type.name, lit("1"))


def graphql_field(schema, type_name: str, name: str):
    return getattr(schema._schema, f"{type_name.lower()}_type").fields[name]


def result_union(schema, type_name: str, name: str) -> set[str] | None:
    """The member type names of a root field's result union; None if it is not a union."""
    result = get_nullable_type(graphql_field(schema, type_name, name).type)
    return {t.name for t in result.types} if isinstance(result, GraphQLUnionType) else None


def operation(schema, type_name: str, name: str) -> str:
    field = graphql_field(schema, type_name, name)
    args = [f"{a}: {dummy(arg.type)}" for a, arg in field.args.items() if is_required_argument(arg)]
    arguments = f"({', '.join(args)})" if args else ""
    file = "($file: Upload!)" if "$file" in arguments else ""
    if is_leaf_type(get_named_type(field.type)):
        selection = ""
    elif (result_union(schema, type_name, name) or set()) & set(DENIAL_TYPES.values()):
        selection = "{ __typename ... on UserError { code message field } }"
    else:
        selection = "{ __typename }"
    return f"{type_name.lower()}{file} {{ {name}{arguments} {selection} }}"


CODE_RE = re.compile(r"\b(\d{6})\b")


_ips = itertools.count(1)


def fresh_ip() -> str:
    n = next(_ips) + (uuid.uuid4().int % 1000) * 1000
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


async def call(client, slug: str, query: str, variables: dict, *, ip: str, token: str = "") -> dict:
    headers = {"X-Tenant": slug, "X-Forwarded-For": ip}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    res = resp.json()
    assert "errors" not in res, res
    return res["data"]
