"""Permissions: every root field declares who may call it, every permission used is in the
catalogue (and in docs/permissions.md), and role checks hold over real HTTP round trips,
read fresh on each request."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from strawberry.types.base import StrawberryObjectDefinition

from api.graphql.permissions import Authenticated, Public, TenantRequired, requires
from api.graphql.schema import build_schema
from api.security.catalogue import BUILTIN_ROLES, PERMISSIONS, markdown_table
from tests.api.helpers import DENIAL_TYPES, typed_denial
from tests.api.identity.helpers import (
    ME,
    assert_unauthenticated,
    error_codes,
    execute,
    is_catalogue_class,
    mutation,
    new_account,
    operation,
    result_union,
    root_fields,
    scalar,
)
from tests.conftest import auth_headers, gql

ROOT = Path(__file__).resolve().parents[3]
# Open to anyone / to anyone naming a tenant. Adding a field here is a security decision.
PUBLIC = {"apiVersion", "signUp"}
TENANT_ONLY = {
    "signIn",
    "refreshTokens",
    "requestSmsCode",
    "signInWithSmsCode",
    "acceptInvitation",
    "completeTotpSignIn",
    "requestPasswordReset",
    "resetPassword",
    "resetPasswordWithSmsCode",
}


@pytest.fixture(scope="module")
def schema(settings):
    return build_schema(settings)


# ---------------------------------------------------------------- the schema walk


def test_every_root_field_declares_permissions(schema):
    fields = root_fields(schema)
    assert len(fields) > 10  # the walk sees the schema (a broken walk would pass vacuously)
    missing, foreign = [], []
    for type_name, name, field in fields:
        classes = list(field.permission_classes or [])
        if not classes:
            missing.append(f"{type_name}.{name}")
        for cls in classes:
            if cls not in (Public, TenantRequired, Authenticated) and not is_catalogue_class(cls):
                foreign.append(f"{type_name}.{name}: {cls!r}")
    assert not missing, f"root fields without a permission class: {missing}"
    assert not foreign, f"permission classes not from api.graphql.permissions: {foreign}"


def test_public_and_tenant_only_fields_are_explicit_and_known(schema):
    by_class: dict = {Public: set(), TenantRequired: set()}
    for _, name, field in root_fields(schema):
        classes = list(field.permission_classes or [])
        for cls in (Public, TenantRequired):
            if cls in classes:
                assert classes == [cls], f"{name}: {cls.__name__} mixed with {classes}"
                by_class[cls].add(name)
    assert by_class[Public] == PUBLIC
    assert by_class[TenantRequired] == TENANT_ONLY


def test_every_required_permission_is_in_the_catalogue(schema):
    used = set()
    for ct in schema.schema_converter.type_map.values():
        definition = ct.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        for field in definition.fields:
            for cls in field.permission_classes or []:
                if getattr(cls, "permission", None):
                    used.add(cls.permission)
    assert {"project.read", "project.write", "role.manage"} <= used
    assert used <= set(PERMISSIONS), sorted(used - set(PERMISSIONS))
    with pytest.raises(ValueError, match="unknown permission"):
        requires("project.delete-everything")


def test_builtin_roles_use_only_catalogue_permissions():
    for key, role in BUILTIN_ROLES.items():
        assert role["permissions"] <= set(PERMISSIONS), key
        assert role["scope"] in ("own", "team", "all"), key
    assert BUILTIN_ROLES["admin"]["permissions"] == set(PERMISSIONS)


def test_permissions_doc_is_current():
    assert (ROOT / "docs" / "permissions.md").read_text() == markdown_table()


# ---------------------------------------------------------------- refusals of every root field


def typed_refusal(schema, type_name: str, name: str, code: str) -> bool:
    """Whether a refusal with ``code`` comes back as a typed error (data) rather than a field
    error: only for a mutation whose result union has the type of that refusal."""
    union = result_union(schema, type_name, name)
    return type_name == "Mutation" and union is not None and DENIAL_TYPES[code] in union


async def send(client, op: str, **kw) -> dict:
    """``gql``, or a GraphQL multipart request when ``op`` takes a file (``$file``)."""
    if "$file" not in op:
        return await gql(client, op, **kw)
    headers = auth_headers(kw["tenant"], kw.get("token") or "") if kw.get("tenant") else {}
    headers["Apollo-Require-Preflight"] = "true"  # a multipart request a form could not send
    resp = await client.post(
        "/graphql",
        headers=headers,
        files={"0": ("a.csv", b"a\n")},
        data={
            "operations": json.dumps({"query": op, "variables": {"file": None}}),
            "map": json.dumps({"0": ["variables.file"]}),
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def guarded(schema):
    """Guarded root fields served over HTTP (subscriptions are checked over WebSocket:
    tests/api/live)."""
    return [
        (t, n, f)
        for t, n, f in root_fields(schema)
        if n not in PUBLIC | TENANT_ONLY and t != "Subscription"
    ]


async def test_subscriptions_over_http_are_refused(client, make_tenant, schema):
    tenant = await make_tenant()
    names = [n for t, n, _ in root_fields(schema) if t == "Subscription"]
    assert {"unitChanges", "listingChanges", "followedChanges"} <= set(names)
    for name in names:
        res = await gql(client, operation(schema, "Subscription", name), tenant=tenant.slug)
        assert error_codes(res) == ["BAD_USER_INPUT"], res
        assert "WebSocket" in res["errors"][0]["message"], res


def test_guarded_mutations_can_return_their_refusals_as_typed_errors(schema):
    """A guarded mutation whose result is a union has the typed error of each refusal its
    permission can make: AuthError (not signed in) always, PermissionDeniedError (roles) for a
    catalogue permission (``Authenticated`` never refuses with FORBIDDEN). So a new tenant
    mutation keeps the typed form."""
    checked, missing = 0, []
    for type_name, name, field in guarded(schema):
        union = result_union(schema, type_name, name)
        if type_name != "Mutation" or union is None:
            continue
        checked += 1
        wanted = {"AuthError"}
        if any(is_catalogue_class(c) for c in field.permission_classes):
            wanted.add("PermissionDeniedError")
        if not wanted <= union:
            missing.append(f"{name}: {sorted(wanted - union)}")
    assert checked >= 10, checked  # the walk sees the tenant mutations
    assert not missing, f"guarded mutation unions without their refusal types: {missing}"


async def test_every_guarded_root_field_refuses_anonymous_and_roleless_callers(
    client, engine, kit, make_tenant, schema
):
    tenant = await make_tenant()
    _, roleless = await new_account(engine, kit, tenant, [])  # a member without any role
    fields = guarded(schema)
    assert len(fields) >= 15
    ops = [(t, name, operation(schema, t, name), f) for t, name, f in fields]
    forbidden = [
        (t, name, op, f)
        for t, name, op, f in ops
        if any(is_catalogue_class(c) for c in f.permission_classes)
    ]
    # Sent concurrently (independent requests), checked one by one.
    results = await asyncio.gather(
        *(send(client, op) for _, _, op, _ in ops),  # no tenant: the field needs one
        *(send(client, op, tenant=tenant.slug, token=None) for _, _, op, _ in ops),  # no token
        # a signed-in member whose roles grant nothing
        *(
            send(client, op, tenant=tenant.slug, token=roleless.access_token)
            for _, _, op, _ in forbidden
        ),
    )
    expected = (
        [(t, name, op, f, "BAD_USER_INPUT") for t, name, op, f in ops]
        + [(t, name, op, f, "UNAUTHENTICATED") for t, name, op, f in ops]
        + [(t, name, op, f, "FORBIDDEN") for t, name, op, f in forbidden]
    )
    typed = set()
    for (type_name, name, op, field, code), res in zip(expected, results, strict=True):
        if code != "BAD_USER_INPUT" and typed_refusal(schema, type_name, name, code):
            # A mutation whose union has the refusal's type: the typed error, as data.
            error = typed_denial(res, name, code)
            typed.add((name, code))
        else:  # a query, a mutation without that type, or no tenant: a field error
            assert error_codes(res) == [code], (op, res)
            assert not (res.get("data") or {}).get(name), (op, res)
            [error] = res["errors"]
            assert error["path"] == [name], (op, res)
        if code == "FORBIDDEN":
            [cls] = [c for c in field.permission_classes if is_catalogue_class(c)]
            assert cls.permission in error["message"], (op, res)
    # Both forms were seen (the expectation is not vacuous either way).
    assert ("createProject", "UNAUTHENTICATED") in typed, sorted(typed)
    assert ("createProject", "FORBIDDEN") in typed, sorted(typed)
    assert ("signOut", "UNAUTHENTICATED") not in typed
    # The role-less member is still signed in (refusals were not sign-outs).
    res = await gql(client, ME, tenant=tenant.slug, token=roleless.access_token)
    assert res["data"]["me"]["roles"] == [] and res["data"]["me"]["permissions"] == [], res


# ---------------------------------------------------------------- roles over GraphQL

PROJECTS = "{ projects { id name } }"


def create_project_op(name: str) -> str:
    return mutation(
        "createProject",
        "{ __typename ... on ProjectPayload { project { id name } } "
        "... on UserError { code message field } }",
        input={"name": name},
    )


async def project_count(engine, tenant) -> int:
    return await scalar(engine, f'SELECT count(*) FROM "{tenant.schema_name}".project')


@pytest.fixture
async def tenant_with_project(client, make_tenant):
    tenant = await make_tenant()
    res = await gql(client, create_project_op("Harbour One"), tenant=tenant.slug)
    assert res["data"]["createProject"]["__typename"] == "ProjectPayload", res
    return tenant


@pytest.mark.parametrize("role", ["agent", "client", "owner", "property_staff", "finance"])
async def test_readers_can_read_but_not_create_projects(
    client, engine, kit, tenant_with_project, role
):
    tenant = tenant_with_project
    _, tokens = await new_account(engine, kit, tenant, [role])
    res = await gql(client, PROJECTS, tenant=tenant.slug, token=tokens.access_token)
    assert [p["name"] for p in res["data"]["projects"]] == ["Harbour One"], res

    res = await gql(
        client, create_project_op("Sneaky"), tenant=tenant.slug, token=tokens.access_token
    )
    assert "project.write" in typed_denial(res, "createProject", "FORBIDDEN")["message"]
    assert await project_count(engine, tenant) == 1  # nothing was written


async def test_manager_can_create_projects(client, engine, kit, tenant_with_project):
    tenant = tenant_with_project
    _, tokens = await new_account(engine, kit, tenant, ["manager"])
    res = await gql(
        client, create_project_op("Harbour Two"), tenant=tenant.slug, token=tokens.access_token
    )
    assert res["data"]["createProject"]["__typename"] == "ProjectPayload", res
    assert await project_count(engine, tenant) == 2


async def test_role_and_status_changes_take_effect_on_the_next_request(
    client, engine, kit, tenant_with_project
):
    tenant = tenant_with_project
    account_id, tokens = await new_account(engine, kit, tenant, ["agent"])
    token = tokens.access_token
    me = await gql(client, ME, tenant=tenant.slug, token=token)
    assert (me["data"]["me"]["roles"], me["data"]["me"]["dataScope"]) == (["agent"], "own")

    async def set_membership(sql: str) -> None:
        n = await execute(
            engine, f"UPDATE shared.membership SET {sql} WHERE account_id = :a", a=account_id
        )
        assert n == 1

    # Disabled: the very same token is refused at once, for every field.
    await set_membership("status = 'disabled'")
    assert_unauthenticated(await gql(client, ME, tenant=tenant.slug, token=token))
    assert_unauthenticated(await gql(client, PROJECTS, tenant=tenant.slug, token=token))
    res = await gql(client, create_project_op("While disabled"), tenant=tenant.slug, token=token)
    typed_denial(res, "createProject", "UNAUTHENTICATED")
    assert await project_count(engine, tenant) == 1  # nothing was written

    # Active again (nothing was cached as revoked), and promoted: the new role applies now.
    await set_membership("status = 'active', roles = '{manager}'")
    me = await gql(client, ME, tenant=tenant.slug, token=token)
    assert (me["data"]["me"]["roles"], me["data"]["me"]["dataScope"]) == (["manager"], "team")
    res = await gql(client, create_project_op("After promotion"), tenant=tenant.slug, token=token)
    assert res["data"]["createProject"]["__typename"] == "ProjectPayload", res

    # Demoted again: refused again.
    await set_membership("roles = '{client}'")
    res = await gql(client, create_project_op("After demotion"), tenant=tenant.slug, token=token)
    assert "project.write" in typed_denial(res, "createProject", "FORBIDDEN")["message"]
    assert await project_count(engine, tenant) == 2


async def test_membership_removed_is_unauthenticated(client, engine, kit, tenant_with_project):
    tenant = tenant_with_project
    account_id, tokens = await new_account(engine, kit, tenant, ["agent"])
    await execute(engine, "DELETE FROM shared.membership WHERE account_id = :a", a=account_id)
    assert_unauthenticated(await gql(client, ME, tenant=tenant.slug, token=tokens.access_token))


async def test_custom_role_grants_its_permissions(client, engine, kit, tenant_with_project):
    tenant = tenant_with_project
    account_id, tokens = await new_account(engine, kit, tenant, ["agent"])
    role_payload = "{ __typename ... on UserError { code message field } }"
    res = await gql(
        client,
        mutation(
            "createRole",
            role_payload,
            input={
                "key": "site_lead",
                "name": "Site lead",
                "permissions": ["project.write"],
                "dataScope": "team",
            },
        ),
        tenant=tenant.slug,
    )
    assert res["data"]["createRole"]["__typename"] == "RolePayload", res
    res = await gql(
        client,
        mutation(
            "createRole",
            role_payload,
            input={"key": "bad_role", "name": "Bad", "permissions": ["project.nuke"]},
        ),
        tenant=tenant.slug,
    )
    assert res["data"]["createRole"]["__typename"] == "ValidationError", res
    assert res["data"]["createRole"]["field"] == "permissions"

    member_payload = "{ __typename ... on UserError { code message field } }"
    res = await gql(
        client,
        mutation(
            "assignRoles", member_payload, accountId=str(account_id), roles=["agent", "site_lead"]
        ),
        tenant=tenant.slug,
    )
    assert res["data"]["assignRoles"]["__typename"] == "MemberPayload", res
    me = await gql(client, ME, tenant=tenant.slug, token=tokens.access_token)
    assert "project.write" in me["data"]["me"]["permissions"]
    assert me["data"]["me"]["dataScope"] == "team"  # the widest of the roles
    res = await gql(
        client, create_project_op("By the lead"), tenant=tenant.slug, token=tokens.access_token
    )
    assert res["data"]["createProject"]["__typename"] == "ProjectPayload", res
