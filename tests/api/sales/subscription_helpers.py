"""Documents and steps of the subscription (认购) tests: reserve, subscribe, decide, extend,
change unit, withdraw, list, and reads of the rows behind them."""

from __future__ import annotations

from sqlalchemy import select

from api.sales.models import Subscription, SubscriptionRequest
from tenants.sessions import TenantDatabase
from tests.api.client.helpers import join, team
from tests.api.sales.helpers import UPDATE_SETTINGS, data
from tests.api.unit.helpers import RESERVE_UNIT, ok
from tests.conftest import gql

SUB_FIELDS = """
  id status projectId unitId clientId agentId pledgeId depositId
  listPrice { minorUnits currency } discount { minorUnits } discountPct
  agreedPrice { minorUnits currency amount } signDeadline overdue note withdrawnAt
  withdrawReason refunded { minorUnits currency } version
  requests { id kind status unitId listPrice { minorUnits } agreedPrice { minorUnits } days
    reason requestedBy decidedBy decisionNote }
"""

_RESULT = f"""
    __typename
    ... on SalesSubscriptionPayload {{ subscription {{ {SUB_FIELDS} }} }}
    ... on UserError {{ code message field }}
"""

SUBSCRIBE = f"""
mutation($input: SubscribeUnitInput!) {{ subscribeUnit(input: $input) {{ {_RESULT} }} }}
"""

DECIDE_DISCOUNT = f"""
mutation($s: ID!, $approve: Boolean!, $note: String! = "") {{
  decideSubscriptionDiscount(subscriptionId: $s, approve: $approve, note: $note) {{ {_RESULT} }}
}}
"""

CHANGE_UNIT = f"""
mutation($input: ChangeSubscriptionUnitInput!) {{
  changeSubscriptionUnit(input: $input) {{ {_RESULT} }}
}}
"""

_REQUEST_RESULT = f"""
    __typename
    ... on SubscriptionRequestPayload {{
      subscription {{ {SUB_FIELDS} }}
      request {{ id kind status days reason requestedBy decidedBy decisionNote }}
    }}
    ... on UserError {{ code message field }}
"""

REQUEST_EXTENSION = f"""
mutation($s: ID!, $days: Int!, $reason: String!) {{
  requestSubscriptionExtension(subscriptionId: $s, days: $days, reason: $reason) {{
    {_REQUEST_RESULT}
  }}
}}
"""

DECIDE_EXTENSION = f"""
mutation($r: ID!, $approve: Boolean!, $note: String! = "") {{
  decideSubscriptionExtension(requestId: $r, approve: $approve, note: $note) {{
    {_REQUEST_RESULT}
  }}
}}
"""

WITHDRAW_SUB = f"""
mutation($s: ID!, $reason: String!) {{
  withdrawSubscription(subscriptionId: $s, reason: $reason) {{
    __typename
    ... on WithdrawSubscriptionPayload {{
      refunded {{ minorUnits currency }} subscription {{ {SUB_FIELDS} }}
    }}
    ... on UserError {{ code message field }}
  }}
}}
"""

ONE_SUB = f"""
query($id: ID!, $locale: String) {{
  salesSubscription(id: $id) {{ {SUB_FIELDS} agreementUrl(locale: $locale) }}
}}
"""

LIST_SUBS = """
query($p: ID, $status: SalesSubscriptionStatus, $overdue: Boolean, $first: Int = 50,
      $after: String) {
  salesSubscriptions(projectId: $p, status: $status, overdue: $overdue, first: $first,
                     after: $after) {
    edges { cursor node { id status overdue unitId } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

UNIT_TIMELINE = """
query($id: ID!) {
  unit(id: $id) { status listPrice { minorUnits }
    timeline { kind fromStatus toStatus newPrice { minorUnits } reason refId data } }
}
"""


def _kw(token) -> dict:
    return {} if token is None else {"token": token}


async def reserve(http, slug, unit_id, token=None) -> None:
    res = await gql(http, RESERVE_UNIT, {"input": {"unitId": unit_id}}, tenant=slug, **_kw(token))
    ok(res, "reserveUnit", "UnitPayload")


async def subscribe(http, slug, unit, client, token=None, **extra) -> dict:
    """The answer of subscribeUnit (a payload or a UserError)."""
    variables = {"input": {"unitId": unit, "clientId": client, **extra}}
    return data(await gql(http, SUBSCRIBE, variables, tenant=slug, **_kw(token)), "subscribeUnit")


async def subscribed(http, slug, unit, client, token=None, **extra) -> dict:
    got = await subscribe(http, slug, unit, client, token, **extra)
    assert got["__typename"] == "SalesSubscriptionPayload", got
    return got["subscription"]


async def decide_discount(http, slug, sub_id, approve, token=None, note="") -> dict:
    variables = {"s": sub_id, "approve": approve, "note": note}
    res = await gql(http, DECIDE_DISCOUNT, variables, tenant=slug, **_kw(token))
    return data(res, "decideSubscriptionDiscount")


async def change_unit(http, slug, sub_id, unit, reason="换房", token=None, **extra) -> dict:
    variables = {"input": {"subscriptionId": sub_id, "unitId": unit, "reason": reason, **extra}}
    res = await gql(http, CHANGE_UNIT, variables, tenant=slug, **_kw(token))
    return data(res, "changeSubscriptionUnit")


async def request_extension(http, slug, sub_id, days, reason="client abroad", token=None):
    variables = {"s": sub_id, "days": days, "reason": reason}
    res = await gql(http, REQUEST_EXTENSION, variables, tenant=slug, **_kw(token))
    return data(res, "requestSubscriptionExtension")


async def decide_extension(http, slug, req_id, approve, token=None, note="") -> dict:
    variables = {"r": req_id, "approve": approve, "note": note}
    res = await gql(http, DECIDE_EXTENSION, variables, tenant=slug, **_kw(token))
    return data(res, "decideSubscriptionExtension")


async def withdraw_sub(http, slug, sub_id, reason="client changed plans", token=None) -> dict:
    variables = {"s": sub_id, "reason": reason}
    res = await gql(http, WITHDRAW_SUB, variables, tenant=slug, **_kw(token))
    return data(res, "withdrawSubscription")


async def one_sub(http, slug, sub_id, token=None, locale=None) -> dict | None:
    res = await gql(http, ONE_SUB, {"id": sub_id, "locale": locale}, tenant=slug, **_kw(token))
    return data(res, "salesSubscription")


async def listed_subs(http, slug, token=None, **filters) -> list[dict]:
    res = await gql(http, LIST_SUBS, filters, tenant=slug, **_kw(token))
    return [e["node"] for e in data(res, "salesSubscriptions")["edges"]]


async def timeline(http, slug, unit_id) -> dict:
    return data(await gql(http, UNIT_TIMELINE, {"id": unit_id}, tenant=slug), "unit")


async def set_settings(http, slug, **values) -> None:
    changes = [{"key": f"sales.{k}", "value": str(v)} for k, v in values.items()]
    got = data(
        await gql(http, UPDATE_SETTINGS, {"changes": changes}, tenant=slug),
        "updateTenantSettings",
    )
    assert got["__typename"] == "TenantSettingsPayload", got


async def sub_rows(engine, tenant) -> list[Subscription]:
    async with TenantDatabase(engine).session(tenant) as session:
        return list((await session.scalars(select(Subscription).order_by(Subscription.id))).all())


async def request_rows(engine, tenant) -> list[SubscriptionRequest]:
    async with TenantDatabase(engine).session(tenant) as session:
        stmt = select(SubscriptionRequest).order_by(SubscriptionRequest.id)
        return list((await session.scalars(stmt)).all())


async def same_team(http, slug, *account_ids) -> None:
    """The members in one sales team (a manager sees the team's clients)."""
    company = await team(http, slug, "Acme", "company")
    office = await team(http, slug, "Office", "office", company)
    team_id = await team(http, slug, "Sales 1", "team", office)
    for account_id in account_ids:
        await join(http, slug, team_id, account_id)
