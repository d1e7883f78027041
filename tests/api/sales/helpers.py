"""Documents and steps of the pledge (认筹) tests: register, list, count, withdraw, pay the fee,
showings done, and reads of the rows behind them."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from api.live.models import OutboxEvent
from api.sales.models import Pledge
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import SHOWING
from tests.conftest import gql

PLEDGE_FIELDS = """
  id queueNumber status clientId agentId fee { minorUnits currency } feeStatus
  refunded { minorUnits } paymentId paidAt genuine withdrawnAt withdrawReason version
  project { id }
"""

REGISTER = f"""
mutation($input: RegisterPledgeInput!) {{
  registerPledge(input: $input) {{
    __typename
    ... on PledgePayload {{ pledge {{ {PLEDGE_FIELDS} }} }}
    ... on UserError {{ code message field }}
  }}
}}
"""

WITHDRAW = f"""
mutation($p: ID!, $r: String! = "") {{
  withdrawPledge(pledgeId: $p, reason: $r) {{
    __typename
    ... on WithdrawPledgePayload {{
      refunded {{ minorUnits currency }} pledge {{ {PLEDGE_FIELDS} }}
    }}
    ... on UserError {{ code message field }}
  }}
}}
"""

START_PAYMENT = f"""
mutation($p: ID!, $platform: PaymentPlatform! = IOS) {{
  startPledgePayment(pledgeId: $p, platform: $platform) {{
    __typename
    ... on PledgePaymentPayload {{
      clientSecret publishableKey stripeAccountId
      payment {{ id kind status amount currency clientId }}
      pledge {{ {PLEDGE_FIELDS} }}
    }}
    ... on UserError {{ code message field }}
  }}
}}
"""

ONE = f"query($id: ID!) {{ pledge(id: $id) {{ {PLEDGE_FIELDS} }} }}"

LIST = f"""
query($p: ID!, $status: PledgeStatus, $genuine: Boolean, $first: Int = 50, $after: String) {{
  pledges(projectId: $p, status: $status, genuine: $genuine, first: $first, after: $after) {{
    edges {{ cursor node {{ {PLEDGE_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""

SUMMARY = """
query($p: ID!) {
  pledgeSummary(projectId: $p) {
    projectId active genuine padded withdrawn converted total lastQueueNumber
  }
}
"""

CREATE_CLIENT = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename ... on ClientPayload { client { id } } ... on UserError { code message field }
  }
}
"""

SHOWING_DONE = """
mutation($s: ID!) {
  showingFeedback(showingId: $s, items: []) {
    __typename ... on ShowingPayload { showing { status } } ... on UserError { code message }
  }
}
"""

UPDATE_SETTINGS = """
mutation($changes: [SettingChange!]!) {
  updateTenantSettings(changes: $changes) {
    __typename ... on UserError { code message field }
  }
}
"""


_PHONES = itertools.count(1)  # a client's phone (one each: no duplicates flagged)
_SLOTS = itertools.count(1)  # each showing its own hour: one agent's showings never overlap


def data(res: dict, field: str) -> dict:
    assert "errors" not in res, res
    return res["data"][field]


async def new_client(http, slug, name, token=None) -> str:
    kw = {} if token is None else {"token": token}
    phone = f"+86139{next(_PHONES):08d}"
    res = await gql(
        http, CREATE_CLIENT, {"input": {"name": name, "phone": phone}}, tenant=slug, **kw
    )
    got = data(res, "createClient")
    assert got["__typename"] == "ClientPayload", got
    return got["client"]["id"]


async def register(http, slug, project, client, fee=0, token=None) -> dict:
    """The answer of registerPledge (a PledgePayload or a UserError)."""
    kw = {} if token is None else {"token": token}
    variables = {"input": {"projectId": project, "clientId": client, "fee": fee}}
    return data(await gql(http, REGISTER, variables, tenant=slug, **kw), "registerPledge")


async def registered(http, slug, project, client, fee=0, token=None) -> dict:
    got = await register(http, slug, project, client, fee, token)
    assert got["__typename"] == "PledgePayload", got
    return got["pledge"]


async def withdraw(http, slug, pledge_id, reason="", token=None) -> dict:
    kw = {} if token is None else {"token": token}
    res = await gql(http, WITHDRAW, {"p": pledge_id, "r": reason}, tenant=slug, **kw)
    return data(res, "withdrawPledge")


async def summary(http, slug, project, token=None) -> dict | None:
    kw = {} if token is None else {"token": token}
    return data(await gql(http, SUMMARY, {"p": project}, tenant=slug, **kw), "pledgeSummary")


async def listed(http, slug, project, token=None, **filters) -> list[dict]:
    kw = {} if token is None else {"token": token}
    res = await gql(http, LIST, {"p": project, **filters}, tenant=slug, **kw)
    return [e["node"] for e in data(res, "pledges")["edges"]]


async def showing(http, slug, client, unit, *, done: bool) -> str:
    """A showing of ``unit`` to ``client`` (tomorrow, one hour); ``done``: feedback given."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1, hours=next(_SLOTS))
    res = await gql(
        http,
        SHOWING,
        {
            "input": {
                "clientId": client,
                "startsAt": start.isoformat(),
                "endsAt": (start + timedelta(hours=1)).isoformat(),
                "unitIds": [unit],
                "listingIds": [],
            }
        },
        tenant=slug,
    )
    got = data(res, "scheduleShowing")
    assert got["__typename"] == "ShowingPayload", got
    if done:
        await complete(http, slug, got["showing"]["id"])
    return got["showing"]["id"]


async def complete(http, slug, showing_id) -> None:
    got = data(await gql(http, SHOWING_DONE, {"s": showing_id}, tenant=slug), "showingFeedback")
    assert got == {"__typename": "ShowingPayload", "showing": {"status": "done"}}, got


async def set_refund_pct(http, slug, pct: int) -> None:
    changes = [{"key": "sales.pledge_refund_pct", "value": str(pct)}]
    got = data(
        await gql(http, UPDATE_SETTINGS, {"changes": changes}, tenant=slug), "updateTenantSettings"
    )
    assert got["__typename"] == "TenantSettingsPayload", got


async def pledge_rows(engine, tenant) -> list[Pledge]:
    async with TenantDatabase(engine).session(tenant) as session:
        return list((await session.scalars(select(Pledge).order_by(Pledge.queue_number))).all())


async def live_events(engine, tenant, entity: str) -> list[str]:
    """The kinds of the outbox events of one pledge, in the order they were written."""
    async with engine.connect() as conn:
        rows = await conn.scalars(
            select(OutboxEvent.kind)
            .where(
                OutboxEvent.tenant_id == uuid.UUID(str(tenant.id)),
                OutboxEvent.entity_id == uuid.UUID(entity),
            )
            .order_by(OutboxEvent.id)
        )
        return list(rows.all())
