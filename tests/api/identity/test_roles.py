"""Custom roles and role assignment over real HTTP round trips: create / update / delete and
their typed errors, permission changes effective on the member's very next request with the same
token, the tenant always keeping an admin (also under concurrent demotions), the roles and
permissionCatalogue queries and their permissions."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.errors import Conflict
from api.identity import roles as roles_service
from api.security.catalogue import BUILTIN_ROLES, PERMISSIONS
from tenants.provisioning import create_tenant
from tenants.sessions import TenantDatabase
from tests.api.helpers import CREATE_PROJECT, typed_denial
from tests.api.identity.helpers import ME, error_codes, execute, new_account, scalar
from tests.conftest import TOKENS, add_member, gql, unique_slug

ROLE_PAYLOAD = """{
  __typename
  ... on RolePayload { role { key name permissions dataScope builtin } }
  ... on UserError { code message field }
}"""
CREATE = f"mutation($input: CreateRoleInput!) {{ createRole(input: $input) {ROLE_PAYLOAD} }}"
UPDATE = f"mutation($input: UpdateRoleInput!) {{ updateRole(input: $input) {ROLE_PAYLOAD} }}"
DELETE = """
mutation($key: String!) {
  deleteRole(key: $key) {
    __typename
    ... on DeleteRolePayload { deletedKey }
    ... on UserError { code message field }
  }
}
"""
ASSIGN = """
mutation($id: ID!, $roles: [String!]!) {
  assignRoles(accountId: $id, roles: $roles) {
    __typename
    ... on MemberPayload { member { roles status account { id } } }
    ... on UserError { code message field }
  }
}
"""
ROLES = "{ roles { key name permissions dataScope builtin } }"
CATALOGUE = "{ permissionCatalogue { key description } }"
PROJECTS = "{ projects { id } }"

_keys = iter(range(10**6))


def new_key(prefix: str = "role") -> str:
    return f"{prefix}_{next(_keys)}"


@pytest.fixture(scope="module")
async def tenant(engine, kit):
    """One tenant for the tests that only touch their own roles (the admin's token in TOKENS,
    as ``make_tenant`` does)."""
    t = (await create_tenant(engine, unique_slug("roles"), "Roles Realty")).tenant
    _, TOKENS[t.slug] = await add_member(engine, kit, t, ["admin"], name="Admin")
    return t


async def mutate(client, slug: str, query: str, variables: dict, name: str, token=None) -> dict:
    kw = {} if token is None else {"token": token}
    res = await gql(client, query, variables, tenant=slug, **kw)
    assert "errors" not in res, res
    return res["data"][name]


async def create_role(client, slug: str, token=None, **data) -> dict:
    data = {"name": "Some role", "permissions": [], **data}
    return await mutate(client, slug, CREATE, {"input": data}, "createRole", token)


async def update_role(client, slug: str, **data) -> dict:
    return await mutate(client, slug, UPDATE, {"input": data}, "updateRole")


async def delete_role(client, slug: str, key: str) -> dict:
    return await mutate(client, slug, DELETE, {"key": key}, "deleteRole")


async def assign(client, slug: str, account_id, roles: list[str], token=None) -> dict:
    variables = {"id": str(account_id), "roles": roles}
    return await mutate(client, slug, ASSIGN, variables, "assignRoles", token)


async def listed_roles(client, slug: str, token=None) -> dict[str, dict]:
    kw = {} if token is None else {"token": token}
    res = await gql(client, ROLES, tenant=slug, **kw)
    assert "errors" not in res, res
    return {r["key"]: r for r in res["data"]["roles"]}


def refused(payload: dict, typename: str, field: str) -> None:
    assert (payload["__typename"], payload["field"]) == (typename, field), payload


# ---------------------------------------------------------------- create / update / delete


async def test_create_update_delete_a_role(client, engine, tenant):
    key = new_key("site_lead")
    res = await create_role(
        client,
        tenant.slug,
        key=key,
        name="  Site lead ",
        permissions=["project.write", "project.read", "project.read"],
        dataScope="team",
    )
    assert res["__typename"] == "RolePayload", res
    expected = {
        "key": key,
        "name": "Site lead",
        "permissions": ["project.read", "project.write"],
        "dataScope": "team",
        "builtin": False,
    }
    assert res["role"] == expected
    assert (await listed_roles(client, tenant.slug))[key] == expected
    # The default data scope is "own".
    res = await create_role(client, tenant.slug, key=new_key("plain"), permissions=["unit.read"])
    assert res["role"]["dataScope"] == "own", res

    res = await update_role(client, tenant.slug, key=key, name="Site leader")
    assert res["role"] == expected | {"name": "Site leader"}, res  # the rest unchanged
    res = await update_role(client, tenant.slug, key=key, permissions=[], dataScope="all")
    assert res["role"] == expected | {"name": "Site leader", "permissions": [], "dataScope": "all"}

    res = await delete_role(client, tenant.slug, key)
    assert res == {"__typename": "DeleteRolePayload", "deletedKey": key}
    assert key not in await listed_roles(client, tenant.slug)
    assert (
        await scalar(
            engine, f'SELECT count(*) FROM "{tenant.schema_name}".role WHERE key = :k', k=key
        )
        == 0
    )
    # Gone: a second delete or an update is not found.
    refused(await delete_role(client, tenant.slug, key), "NotFoundError", "key")
    refused(await update_role(client, tenant.slug, key=key, name="X"), "NotFoundError", "key")


@pytest.mark.parametrize(
    ("data", "typename", "field"),
    [
        ({"key": "Site_Lead"}, "ValidationError", "key"),
        ({"key": "a"}, "ValidationError", "key"),
        ({"key": "1st_line"}, "ValidationError", "key"),
        ({"key": "site-lead"}, "ValidationError", "key"),
        ({"key": "_lead"}, "ValidationError", "key"),
        ({"key": "x" * 65}, "ValidationError", "key"),
        ({"key": ""}, "ValidationError", "key"),
        ({"key": "admin"}, "ConflictError", "key"),
        ({"key": "agent"}, "ConflictError", "key"),
        ({"permissions": ["project.read", "project.nuke"]}, "ValidationError", "permissions"),
        ({"name": "   "}, "ValidationError", "name"),
        ({"name": "n" * 101}, "ValidationError", "name"),
    ],
)
async def test_create_role_refusals(client, engine, tenant, data, typename, field):
    data = {"key": new_key("bad"), **data}
    res = await create_role(client, tenant.slug, **data)
    refused(res, typename, field)
    assert res["code"] == ("CONFLICT" if typename == "ConflictError" else "BAD_USER_INPUT")
    if data["key"] not in BUILTIN_ROLES:
        assert data["key"] not in await listed_roles(client, tenant.slug)


async def test_longest_key_and_duplicate_key(client, tenant):
    key = ("k" + uuid.uuid4().hex * 2)[:64]
    assert len(key) == 64
    assert (await create_role(client, tenant.slug, key=key))["__typename"] == "RolePayload"
    res = await create_role(client, tenant.slug, key=key, name="Again")
    refused(res, "ConflictError", "key")
    assert (await listed_roles(client, tenant.slug))[key]["name"] == "Some role"


async def test_bad_data_scope_names_the_input_field(client, tenant):
    res = await create_role(client, tenant.slug, key=new_key("scope"), dataScope="everything")
    refused(res, "ValidationError", "dataScope")


async def test_bad_data_scope_is_refused(client, tenant):
    key = new_key("scope")
    res = await create_role(client, tenant.slug, key=key, dataScope="everything")
    assert res["__typename"] == "ValidationError", res
    assert key not in await listed_roles(client, tenant.slug)
    await create_role(client, tenant.slug, key=key, dataScope="team")
    res = await update_role(client, tenant.slug, key=key, dataScope="galaxy")
    assert res["__typename"] == "ValidationError", res
    assert (await listed_roles(client, tenant.slug))[key]["dataScope"] == "team"


async def test_update_and_delete_refusals(client, engine, kit, tenant):
    for builtin in ("admin", "agent"):
        refused(
            await update_role(client, tenant.slug, key=builtin, name="Mine"), "ConflictError", "key"
        )
        refused(await delete_role(client, tenant.slug, builtin), "ConflictError", "key")
    assert (await listed_roles(client, tenant.slug))["admin"]["name"] == "Administrator"

    key = new_key("held")
    await create_role(client, tenant.slug, key=key, permissions=["unit.read"])
    res = await update_role(client, tenant.slug, key=key, permissions=["unit.read", "no.such"])
    refused(res, "ValidationError", "permissions")
    assert (await listed_roles(client, tenant.slug))[key]["permissions"] == ["unit.read"]

    # Assigned (even to a disabled member): cannot be deleted.
    account_id, _ = await new_account(engine, kit, tenant, ["agent", key])
    res = await delete_role(client, tenant.slug, key)
    refused(res, "ConflictError", "key")
    assert "1 member" in res["message"]
    await execute(
        engine,
        "UPDATE shared.membership SET status = 'disabled' WHERE account_id = :a",
        a=account_id,
    )
    refused(await delete_role(client, tenant.slug, key), "ConflictError", "key")
    assert key in await listed_roles(client, tenant.slug)
    # Unassigned: now it can.
    await execute(
        engine, "UPDATE shared.membership SET roles = '{agent}' WHERE account_id = :a", a=account_id
    )
    assert (await delete_role(client, tenant.slug, key))["__typename"] == "DeleteRolePayload"


async def test_custom_roles_belong_to_their_tenant(client, engine, kit, tenant, make_tenant):
    other = await make_tenant()
    key = new_key("local")
    await create_role(client, tenant.slug, key=key, permissions=["project.write"])
    assert key not in await listed_roles(client, other.slug)
    account_id, _ = await new_account(engine, kit, other, ["agent"])
    refused(await assign(client, other.slug, account_id, [key]), "ValidationError", "roles")
    refused(await delete_role(client, other.slug, key), "NotFoundError", "key")
    assert key in await listed_roles(client, tenant.slug)


# ---------------------------------------------------------------- effect on members


async def test_custom_role_changes_apply_on_the_next_request(client, engine, kit, tenant):
    key = new_key("viewer")
    await create_role(client, tenant.slug, key=key, permissions=["project.read"])
    _, tokens = await new_account(engine, kit, tenant, [key])
    token = tokens.access_token

    async def projects() -> int:
        return await scalar(engine, f'SELECT count(*) FROM "{tenant.schema_name}".project')

    async def can_create() -> bool:
        before = await projects()
        res = await gql(
            client, CREATE_PROJECT, {"input": {"name": "P"}}, tenant=tenant.slug, token=token
        )
        if res["data"]["createProject"]["__typename"] != "ProjectPayload":
            error = typed_denial(res, "createProject", "FORBIDDEN")
            assert "project.write" in error["message"], res
            assert await projects() == before  # nothing was written
            return False
        assert "errors" not in res, res
        assert await projects() == before + 1
        return True

    async def viewer() -> dict:
        return (await gql(client, ME, tenant=tenant.slug, token=token))["data"]["me"]

    assert (await viewer())["permissions"] == ["project.read"]
    assert not await can_create()

    await update_role(client, tenant.slug, key=key, permissions=["project.read", "project.write"])
    assert await can_create()  # granted: the same token, the very next request
    assert (await viewer())["permissions"] == ["project.read", "project.write"]

    await update_role(client, tenant.slug, key=key, dataScope="all")
    assert (await viewer())["dataScope"] == "all"

    await update_role(client, tenant.slug, key=key, permissions=["project.read"])
    assert not await can_create()  # revoked: at once
    await update_role(client, tenant.slug, key=key, permissions=[])
    res = await gql(client, PROJECTS, tenant=tenant.slug, token=token)
    assert error_codes(res) == ["FORBIDDEN"], res
    assert (await viewer())["permissions"] == []


# ---------------------------------------------------------------- assignment and the last admin


async def test_assign_roles_and_keep_one_admin(client, engine, kit, make_tenant):
    tenant, other = await make_tenant(), await make_tenant()
    admin = (await gql(client, ME, tenant=tenant.slug))["data"]["me"]["account"]["id"]
    res = await assign(client, tenant.slug, admin, ["manager"])
    refused(res, "ConflictError", "roles")
    assert "admin" in res["message"]
    assert (await gql(client, ME, tenant=tenant.slug))["data"]["me"]["roles"] == ["admin"]

    agent_id, agent = await new_account(engine, kit, tenant, ["agent"])
    refused(await assign(client, tenant.slug, agent_id, ["wizard"]), "ValidationError", "roles")
    refused(await assign(client, tenant.slug, agent_id, []), "ValidationError", "roles")
    stranger, _ = await new_account(engine, kit, other, ["agent"])
    for target in (stranger, uuid.uuid4(), "not-an-id"):
        refused(await assign(client, tenant.slug, target, ["agent"]), "NotFoundError", "accountId")

    res = await assign(client, tenant.slug, agent_id, ["manager", "admin", "admin"])
    assert res["member"]["roles"] == ["admin", "manager"], res
    assert (await gql(client, ME, tenant=tenant.slug, token=agent.access_token))["data"]["me"][
        "dataScope"
    ] == "all"
    # Two admins: the first may now step down.
    res = await assign(client, tenant.slug, admin, ["agent"])
    assert res["member"]["roles"] == ["agent"], res
    res = await assign(client, tenant.slug, agent_id, ["manager"], token=agent.access_token)
    refused(res, "ConflictError", "roles")  # the last admin cannot demote itself either


async def admins(engine, tenant) -> int:
    return await scalar(
        engine,
        "SELECT count(*) FROM shared.membership WHERE tenant_id = :t AND status = 'active'"
        " AND 'admin' = ANY(roles)",
        t=uuid.UUID(tenant.id),
    )


async def test_concurrent_demotions_leave_an_admin(client, engine, kit, make_tenant):
    tenant = await make_tenant()
    first = (await gql(client, ME, tenant=tenant.slug))["data"]["me"]["account"]["id"]
    first_token = TOKENS[tenant.slug]
    second, second_tokens = await new_account(engine, kit, tenant, ["admin"])
    await create_role(client, tenant.slug, key="role_keeper", permissions=["role.manage"])
    _, keeper = await new_account(engine, kit, tenant, ["role_keeper"])

    for round_ in range(4):
        await execute(
            engine,
            "UPDATE shared.membership SET roles = '{admin}' WHERE account_id IN (:a, :b)",
            a=uuid.UUID(first),
            b=second,
        )
        assert await admins(engine, tenant) == 2
        if round_ % 2:  # each admin demotes the other
            calls = [(second, first_token), (first, second_tokens.access_token)]
        else:  # a third member (role.manage, not admin) demotes both
            calls = [(first, keeper.access_token), (second, keeper.access_token)]
        results = await asyncio.gather(
            *(
                gql(
                    client,
                    ASSIGN,
                    {"id": str(target), "roles": ["agent"]},
                    tenant=tenant.slug,
                    token=token,
                )
                for target, token in calls
            )
        )
        for r in results:
            assert "errors" not in r, (round_, results)
        outcomes = sorted(r["data"]["assignRoles"]["__typename"] for r in results)
        # One demotion wins; the other is refused, either by the last-admin rule or (an admin
        # demoted first) by its permission, as a typed error.
        assert outcomes in (
            ["ConflictError", "MemberPayload"],
            ["MemberPayload", "PermissionDeniedError"],
        ), (round_, results)
        for r in results:
            if r["data"]["assignRoles"]["__typename"] == "PermissionDeniedError":
                typed_denial(r, "assignRoles", "FORBIDDEN")
        assert await admins(engine, tenant) == 1, round_


async def test_deleting_a_role_while_it_is_being_assigned(engine, kit, tenant):
    db = TenantDatabase(engine)
    key = new_key("racing")
    async with db.session(tenant) as s:
        await roles_service.create_role(s, key, "Racing", ["unit.read"], "own")
        await s.commit()
    account_id, _ = await new_account(engine, kit, tenant, ["agent"])
    tenant_id = uuid.UUID(tenant.id)
    async with db.session(tenant) as assigning, db.session(tenant) as deleting:
        await roles_service.assign_roles(assigning, tenant_id, account_id, ["agent", key])

        async def delete() -> str:
            try:
                await roles_service.delete_role(deleting, tenant_id, key)
            except Conflict:
                await deleting.rollback()
                return "refused"
            await deleting.commit()
            return "deleted"

        task = asyncio.create_task(delete())
        await asyncio.wait({task}, timeout=0.5)  # it may wait for the assignment (a lock)
        await assigning.commit()
        outcome = await task
    roles = await scalar(
        engine, "SELECT roles FROM shared.membership WHERE account_id = :a", a=account_id
    )
    exists = await scalar(
        engine, f'SELECT count(*) FROM "{tenant.schema_name}".role WHERE key = :k', k=key
    )
    # Either the delete was refused (the role is held), or the assignment did not happen.
    assert (outcome, exists) == ("refused", 1) or key not in roles, (outcome, roles)


# ---------------------------------------------------------------- the queries


async def test_roles_query_lists_builtin_and_custom_roles(client, engine, kit, make_tenant):
    tenant = await make_tenant()
    await create_role(
        client,
        tenant.slug,
        key="night_shift",
        name="Night shift",
        permissions=["unit.read"],
        dataScope="team",
    )
    _, manager = await new_account(engine, kit, tenant, ["manager"])
    roles = await listed_roles(client, tenant.slug, token=manager.access_token)  # member.read
    assert list(roles) == [*BUILTIN_ROLES, "night_shift"]
    for key, spec in BUILTIN_ROLES.items():
        assert roles[key] == {
            "key": key,
            "name": spec["name"],
            "permissions": sorted(spec["permissions"]),
            "dataScope": spec["scope"],
            "builtin": True,
        }
    assert roles["night_shift"] == {
        "key": "night_shift",
        "name": "Night shift",
        "permissions": ["unit.read"],
        "dataScope": "team",
        "builtin": False,
    }
    _, agent = await new_account(engine, kit, tenant, ["agent"])
    res = await gql(client, ROLES, tenant=tenant.slug, token=agent.access_token)
    assert res["data"] is None and error_codes(res) == ["FORBIDDEN"], res


async def test_permission_catalogue_needs_role_manage(client, engine, kit, tenant):
    res = await gql(client, CATALOGUE, tenant=tenant.slug)
    assert {p["key"]: p["description"] for p in res["data"]["permissionCatalogue"]} == PERMISSIONS
    key = new_key("role_admin")
    await create_role(client, tenant.slug, key=key, permissions=["role.manage"])
    _, custom = await new_account(engine, kit, tenant, [key])
    res = await gql(client, CATALOGUE, tenant=tenant.slug, token=custom.access_token)
    assert len(res["data"]["permissionCatalogue"]) == len(PERMISSIONS), res
    _, manager = await new_account(engine, kit, tenant, ["manager"])
    res = await gql(client, CATALOGUE, tenant=tenant.slug, token=manager.access_token)
    assert res["data"] is None and error_codes(res) == ["FORBIDDEN"], res
    # Managing roles needs role.manage too.
    key = new_key()
    res = await gql(
        client,
        CREATE,
        {"input": {"key": key, "name": "X", "permissions": []}},
        tenant=tenant.slug,
        token=manager.access_token,
    )
    assert "role.manage" in typed_denial(res, "createRole", "FORBIDDEN")["message"]
    assert key not in await listed_roles(client, tenant.slug)  # nothing was written
