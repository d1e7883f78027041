"""A tenant notice: refused without notice.publish, queued in the request's transaction, fanned
out by the worker's job to the members it addresses (and only them)."""

from __future__ import annotations

from sqlalchemy import text

from api.notify import tasks
from tenants.sessions import TenantDatabase
from tests.conftest import gql

PUBLISH = """
mutation($input: PublishNoticeInput!) {
  publishNotice(input: $input) {
    __typename
    ... on NoticePayload { recipients }
    ... on UserError { code message field }
  }
}
"""
INBOX = "{ inbox { unreadCount items { title body category urgent data } } }"


async def test_notice_reaches_the_roles_it_names(client, engine, make_tenant, member):
    tenant = await make_tenant()
    owners = [await member(tenant, ["owner"]) for _ in range(3)]
    _, agent = await member(tenant, ["agent"])
    _, staff = await member(tenant, ["property_staff"])
    notice = {
        "title": "停水通知",
        "text": "明天 9:00-12:00 停水",
        "roles": ["owner"],
        "urgent": True,
    }
    res = await gql(client, PUBLISH, {"input": notice}, tenant=tenant.slug, token=agent)
    assert res["data"]["publishNotice"]["__typename"] == "PermissionDeniedError", res
    bad = {**notice, "title": "  "}
    res = await gql(client, PUBLISH, {"input": bad}, tenant=tenant.slug, token=staff)
    assert res["data"]["publishNotice"]["field"] == "title", res
    res = await gql(client, PUBLISH, {"input": notice}, tenant=tenant.slug, token=staff)
    assert res["data"]["publishNotice"] == {"__typename": "NoticePayload", "recipients": 3}
    async with engine.connect() as conn:
        jobs = (
            (
                await conn.execute(
                    text(
                        "SELECT args FROM shared.procrastinate_jobs WHERE "
                        "task_name = 'notify:publish_notice'"
                        " AND args->>'tenant' = :t"
                    ),
                    {"t": tenant.slug},
                )
            )
            .scalars()
            .all()
        )
    assert len(jobs) == 1 and jobs[0]["roles"] == ["owner"]
    args = {k: v for k, v in jobs[0].items() if k != "tenant"}
    async with TenantDatabase(engine).session(tenant) as session:
        assert await tasks.publish_notice.work(session, tenant, **args) == 3
        await session.commit()
    for _, token in owners:
        inbox = (await gql(client, INBOX, tenant=tenant.slug, token=token))["data"]["inbox"]
        assert inbox["unreadCount"] == 1
        [item] = inbox["items"]
        assert (item["title"], item["body"], item["category"], item["urgent"]) == (
            "停水通知",
            "明天 9:00-12:00 停水",
            "PROPERTY_NOTICES",
            True,
        )
    for token in (agent, staff):
        inbox = (await gql(client, INBOX, tenant=tenant.slug, token=token))["data"]["inbox"]
        assert inbox["unreadCount"] == 0
