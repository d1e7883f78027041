"""Sessions: refresh-token rotation, reuse detection revoking the whole session, one winner
among concurrent refreshes, sign-out and revocation effective on the next request, and the
tenant a refresh token belongs to."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tests.api.identity.helpers import (
    ME,
    MY_SESSIONS,
    SIGN_OUT,
    add_membership,
    assert_unauthenticated,
    execute,
    new_account,
    open_session,
    refresh_op,
    revoke_session_op,
    scalar,
)
from tests.conftest import gql


async def refresh(client, slug: str, token: str) -> dict:
    res = await gql(client, refresh_op(token), tenant=slug, token=None)
    assert "errors" not in res, res
    return res["data"]["refreshTokens"]


async def me_ok(client, slug: str, token: str) -> bool:
    """True when the token works; False when it is refused as UNAUTHENTICATED."""
    res = await gql(client, ME, tenant=slug, token=token)
    if res.get("errors"):
        assert_unauthenticated(res)
        return False
    assert res["data"]["me"]["tenant"]["slug"] == slug
    return True


async def family(engine, session_id) -> list:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT used_at, revoked_at FROM shared.refresh_token WHERE family_id = :f"
                " ORDER BY issued_at"
            ),
            {"f": uuid.UUID(str(session_id))},
        )
        return rows.mappings().all()


@pytest.fixture
async def agent(engine, kit, make_tenant):
    tenant = await make_tenant()
    account_id, tokens = await new_account(engine, kit, tenant, ["agent"])
    return tenant, account_id, tokens


async def test_refresh_rotates(client, engine, agent):
    tenant, _, t0 = agent
    payload = await refresh(client, tenant.slug, t0.refresh_token)
    assert payload["__typename"] == "SignInPayload", payload
    t1 = payload["tokens"]
    assert t1["refreshToken"] != t0.refresh_token
    assert t1["accessToken"] != t0.access_token
    assert t1["sessionId"] == str(t0.session_id)  # the same session
    # Rotation does not extend the session.
    assert t1["refreshTokenExpiresAt"][:19] == t0.refresh_expires_at.isoformat()[:19]
    assert await me_ok(client, tenant.slug, t1["accessToken"])
    assert await me_ok(client, tenant.slug, t0.access_token)  # until sign-out
    rows = await family(engine, t0.session_id)
    assert [(r["used_at"] is not None, r["revoked_at"]) for r in rows] == [
        (True, None),
        (False, None),
    ]
    # And the next rotation works from the new token.
    t2 = (await refresh(client, tenant.slug, t1["refreshToken"]))["tokens"]
    assert t2["refreshToken"] not in (t0.refresh_token, t1["refreshToken"])


async def test_reused_refresh_token_revokes_the_whole_session(client, engine, kit, agent):
    tenant, account_id, t0 = agent
    other = await open_session(engine, kit, tenant, account_id)  # another device
    t1 = (await refresh(client, tenant.slug, t0.refresh_token))["tokens"]
    t2 = (await refresh(client, tenant.slug, t1["refreshToken"]))["tokens"]

    replay = await refresh(client, tenant.slug, t0.refresh_token)  # the thief replays
    assert replay["__typename"] == "AuthError", replay
    assert replay["code"] == "UNAUTHENTICATED"

    # The whole family is revoked at once: the newest refresh token and every access token.
    newest = await refresh(client, tenant.slug, t2["refreshToken"])
    assert newest["__typename"] == "AuthError", newest
    for access in (t0.access_token, t1["accessToken"], t2["accessToken"]):
        assert not await me_ok(client, tenant.slug, access)
    assert all(r["revoked_at"] is not None for r in await family(engine, t0.session_id))
    # The revocation was committed although the mutation answered with an error; the
    # account's other session is untouched.
    assert await me_ok(client, tenant.slug, other.access_token)
    assert (await refresh(client, tenant.slug, other.refresh_token))["__typename"] == (
        "SignInPayload"
    )


async def test_concurrent_refreshes_have_one_winner(client, engine, agent):
    tenant, _, t0 = agent
    results = await asyncio.gather(
        *(refresh(client, tenant.slug, t0.refresh_token) for _ in range(10))
    )
    kinds = sorted(r["__typename"] for r in results)
    assert kinds == ["AuthError"] * 9 + ["SignInPayload"], results
    # Exactly one new token was issued from the spent one.
    assert len(await family(engine, t0.session_id)) == 2


async def test_sign_out_is_effective_on_the_next_request(client, engine, kit, agent):
    tenant, account_id, t0 = agent
    other = await open_session(engine, kit, tenant, account_id)
    assert await me_ok(client, tenant.slug, t0.access_token)
    res = await gql(client, SIGN_OUT, tenant=tenant.slug, token=t0.access_token)
    assert res == {"data": {"signOut": {"revokedSessionId": str(t0.session_id)}}}, res
    assert not await me_ok(client, tenant.slug, t0.access_token)
    assert (await refresh(client, tenant.slug, t0.refresh_token))["__typename"] == "AuthError"
    # Signing out twice: the token is no longer accepted.
    assert_unauthenticated(await gql(client, SIGN_OUT, tenant=tenant.slug, token=t0.access_token))
    assert await me_ok(client, tenant.slug, other.access_token)  # other session unaffected


async def test_my_sessions_and_revoking_one_of_them(client, engine, kit, agent):
    tenant, account_id, t0 = agent
    t1 = await open_session(engine, kit, tenant, account_id)
    res = await gql(client, MY_SESSIONS, tenant=tenant.slug, token=t1.access_token)
    sessions = {s["id"]: s for s in res["data"]["mySessions"]}
    assert set(sessions) == {str(t0.session_id), str(t1.session_id)}, res
    assert sessions[str(t1.session_id)]["current"] is True
    assert sessions[str(t0.session_id)]["current"] is False
    res = await gql(client, MY_SESSIONS, tenant=tenant.slug, token=t0.access_token)
    assert [s["id"] for s in res["data"]["mySessions"] if s["current"]] == [str(t0.session_id)]

    res = await gql(
        client, revoke_session_op(str(t0.session_id)), tenant=tenant.slug, token=t1.access_token
    )
    assert res == {"data": {"revokeSession": True}}, res
    assert not await me_ok(client, tenant.slug, t0.access_token)
    res = await gql(client, MY_SESSIONS, tenant=tenant.slug, token=t1.access_token)
    assert [s["id"] for s in res["data"]["mySessions"]] == [str(t1.session_id)]


async def test_revoking_someone_elses_session_does_nothing(client, engine, kit, agent):
    tenant, _, victim = agent
    # Even the tenant's admin cannot end another member's session through revokeSession.
    _, admin = await new_account(engine, kit, tenant, ["admin"])
    for target in (str(victim.session_id), str(uuid.uuid4()), "not-a-uuid"):
        res = await gql(
            client, revoke_session_op(target), tenant=tenant.slug, token=admin.access_token
        )
        assert res == {"data": {"revokeSession": False}}, (target, res)
    assert await me_ok(client, tenant.slug, victim.access_token)
    assert all(r["revoked_at"] is None for r in await family(engine, victim.session_id))


async def test_revoking_own_session_of_another_tenant_does_nothing(
    client, engine, kit, make_tenant
):
    """The same person in two tenants: a session in A cannot be ended from B."""
    a, b = await make_tenant(), await make_tenant()
    account_id, in_a = await new_account(engine, kit, a, ["agent"])
    await add_membership(engine, account_id, b, ["agent"])
    in_b = await open_session(engine, kit, b, account_id)
    res = await gql(
        client, revoke_session_op(str(in_a.session_id)), tenant=b.slug, token=in_b.access_token
    )
    assert res == {"data": {"revokeSession": False}}, res
    assert await me_ok(client, a.slug, in_a.access_token)


async def test_refresh_token_of_tenant_a_refused_in_tenant_b(client, engine, kit, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    account_id, in_a = await new_account(engine, kit, a, ["agent"])
    await add_membership(engine, account_id, b, ["agent"])  # a member of both
    payload = await refresh(client, b.slug, in_a.refresh_token)
    assert payload["__typename"] == "AuthError", payload
    # Nothing was spent or revoked: the token still works where it belongs.
    rows = await family(engine, in_a.session_id)
    assert [(r["used_at"], r["revoked_at"]) for r in rows] == [(None, None)]
    assert (await refresh(client, a.slug, in_a.refresh_token))["__typename"] == "SignInPayload"


@pytest.mark.parametrize("token", ["", "garbage", "x" * 500])
async def test_unknown_refresh_token(client, make_tenant, token):
    tenant = await make_tenant()
    payload = await refresh(client, tenant.slug, token)
    assert payload["__typename"] == "AuthError", payload


async def test_refresh_needs_a_tenant(client, agent):
    _, _, t0 = agent
    res = await gql(client, refresh_op(t0.refresh_token))
    assert res["data"] is None and res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_refresh_refused_when_membership_disabled(client, engine, agent):
    tenant, account_id, t0 = agent
    await execute(
        engine,
        "UPDATE shared.membership SET status = 'disabled' WHERE account_id = :a",
        a=account_id,
    )
    assert (await refresh(client, tenant.slug, t0.refresh_token))["__typename"] == "AuthError"
    used = await scalar(
        engine,
        "SELECT count(*) FROM shared.refresh_token WHERE family_id = :f AND used_at IS NOT NULL",
        f=t0.session_id,
    )
    assert used == 0


async def test_expired_session_cannot_be_refreshed(client, engine, agent):
    tenant, _, t0 = agent
    await execute(
        engine,
        "UPDATE shared.refresh_token SET expires_at = now() - interval '1 second'"
        " WHERE family_id = :f",
        f=t0.session_id,
    )
    assert (await refresh(client, tenant.slug, t0.refresh_token))["__typename"] == "AuthError"
    res = await gql(client, MY_SESSIONS, tenant=tenant.slug, token=t0.access_token)
    assert str(t0.session_id) not in [s["id"] for s in res["data"]["mySessions"]], res
