"""Documents and steps of the commission and attribution (报备) tests."""

from __future__ import annotations

from sqlalchemy import func, select

from api.payment import ledger
from api.payment.models import JournalLine
from tenants.sessions import TenantDatabase
from tests.api.sales.helpers import UPDATE_SETTINGS, data
from tests.conftest import gql

_ERR = "... on UserError { code message field }"

CHANNEL_FIELDS = "id name kind accountId active version"
REG_FIELDS = """
  id projectId channelId clientId code phone status registeredBy registeredAt expiresAt
  visitedAt visitedBy note version qrPayload qrUrl
"""
DISPUTE_FIELDS = """
  id projectId clientId firstId secondId evidence status winnerId resolvedBy resolvedAt
  resolutionNote createdAt
"""
RULE_FIELDS = """
  id projectId channelId active basis amount { minorUnits } rateBp tierMeasure period
  tiers { start amount { minorUnits } rateBp } splits { kind shareBp accountId teamId }
  condition collectedBp version
"""
COMMISSION_FIELDS = """
  id contractId projectId unitId clientId ruleId channelId registrationId
  price { minorUnits currency } tier volume rateBp amount { minorUnits currency } condition
  collectedBp status signedAt payableAt approvedBy approvedAt decisionNote paidAt payReference
  clawedBack { minorUnits } endedAt endReason version
  lines { kind accountId teamId channelId shareBp amount { minorUnits } }
"""

CREATE_CHANNEL = f"""
mutation($name: String!, $kind: SalesChannelKind!, $account: ID) {{
  createSalesChannel(name: $name, kind: $kind, accountId: $account) {{
    __typename ... on SalesChannelPayload {{ channel {{ {CHANNEL_FIELDS} }} }} {_ERR}
  }}
}}
"""
UPDATE_CHANNEL = f"""
mutation($c: ID!, $name: String, $active: Boolean) {{
  updateSalesChannel(channelId: $c, name: $name, active: $active) {{
    __typename ... on SalesChannelPayload {{ channel {{ {CHANNEL_FIELDS} }} }} {_ERR}
  }}
}}
"""
REGISTER = f"""
mutation($input: RegisterChannelClientInput!) {{
  registerChannelClient(input: $input) {{
    __typename
    ... on ChannelRegistrationPayload {{
      clientCreated registration {{ {REG_FIELDS} }} dispute {{ {DISPUTE_FIELDS} }}
    }}
    {_ERR}
  }}
}}
"""
VISIT = f"""
mutation($code: String!) {{
  confirmChannelVisit(code: $code) {{
    __typename ... on VisitConfirmedPayload {{ registration {{ {REG_FIELDS} }} }} {_ERR}
  }}
}}
"""
RESOLVE = f"""
mutation($d: ID!, $w: ID!, $note: String!) {{
  resolveAttributionDispute(disputeId: $d, winnerId: $w, note: $note) {{
    __typename ... on AttributionDisputePayload {{ dispute {{ {DISPUTE_FIELDS} }} }} {_ERR}
  }}
}}
"""
DISPUTES = f"""
query($status: AttributionDisputeStatus) {{
  attributionDisputes(status: $status) {{ {DISPUTE_FIELDS} }}
}}
"""
REGISTRATIONS = f"""
query($p: ID, $c: ID, $status: ChannelRegistrationStatus) {{
  channelRegistrations(projectId: $p, channelId: $c, status: $status) {{ {REG_FIELDS} }}
}}
"""
SAVE_RULE = f"""
mutation($input: CommissionRuleInput!) {{
  saveCommissionRule(input: $input) {{
    __typename ... on CommissionRulePayload {{ rule {{ {RULE_FIELDS} }} }} {_ERR}
  }}
}}
"""
DEACTIVATE_RULE = f"""
mutation($r: ID!) {{
  deactivateCommissionRule(ruleId: $r) {{
    __typename ... on CommissionRulePayload {{ rule {{ {RULE_FIELDS} }} }} {_ERR}
  }}
}}
"""
RULES = f"""
query($p: ID, $all: Boolean! = true) {{
  commissionRules(projectId: $p, activeOnly: $all) {{ {RULE_FIELDS} }}
}}
"""
COMMISSIONS = f"""
query($p: ID, $status: CommissionStatus, $c: ID) {{
  commissions(projectId: $p, status: $status, contractId: $c) {{
    edges {{ node {{ {COMMISSION_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
MINE = f"""
query($status: CommissionStatus) {{
  myCommissions(status: $status) {{ edges {{ node {{ {COMMISSION_FIELDS} }} }} }}
}}
"""
DECIDE = f"""
mutation($c: ID!, $approve: Boolean!, $note: String! = "") {{
  decideCommission(commissionId: $c, approve: $approve, note: $note) {{
    __typename ... on CommissionPayload {{ commission {{ {COMMISSION_FIELDS} }} }} {_ERR}
  }}
}}
"""
PAY = f"""
mutation($c: ID!, $ref: String!) {{
  payCommission(commissionId: $c, reference: $ref) {{
    __typename ... on CommissionPayload {{ commission {{ {COMMISSION_FIELDS} }} }} {_ERR}
  }}
}}
"""


def _kw(token) -> dict:
    return {} if token is None else {"token": token}


async def channel(http, slug, name, kind="AGENCY", token=None, account=None) -> dict:
    variables = {"name": name, "kind": kind, "account": account}
    got = data(
        await gql(http, CREATE_CHANNEL, variables, tenant=slug, **_kw(token)), "createSalesChannel"
    )
    assert got["__typename"] == "SalesChannelPayload", got
    return got["channel"]


async def register(http, slug, channel_id, project, name, phone, token=None) -> dict:
    variables = {
        "input": {"channelId": channel_id, "projectId": project, "name": name, "phone": phone}
    }
    return data(
        await gql(http, REGISTER, variables, tenant=slug, **_kw(token)), "registerChannelClient"
    )


async def visit(http, slug, code, token=None) -> dict:
    return data(
        await gql(http, VISIT, {"code": code}, tenant=slug, **_kw(token)), "confirmChannelVisit"
    )


async def save_rule(http, slug, token=None, **input) -> dict:
    return data(
        await gql(http, SAVE_RULE, {"input": input}, tenant=slug, **_kw(token)),
        "saveCommissionRule",
    )


async def commissions(http, slug, token=None, **filters) -> list[dict]:
    res = await gql(http, COMMISSIONS, filters, tenant=slug, **_kw(token))
    return [e["node"] for e in data(res, "commissions")["edges"]]


async def decide(http, slug, commission_id, approve=True, token=None, note="") -> dict:
    variables = {"c": commission_id, "approve": approve, "note": note}
    return data(await gql(http, DECIDE, variables, tenant=slug, **_kw(token)), "decideCommission")


async def pay(http, slug, commission_id, reference="TRF-1", token=None) -> dict:
    variables = {"c": commission_id, "ref": reference}
    return data(await gql(http, PAY, variables, tenant=slug, **_kw(token)), "payCommission")


async def set_window(http, slug, hours: int) -> None:
    changes = [{"key": "sales.attribution_window_hours", "value": str(hours)}]
    got = data(
        await gql(http, UPDATE_SETTINGS, {"changes": changes}, tenant=slug), "updateTenantSettings"
    )
    assert got["__typename"] == "TenantSettingsPayload", got


async def books(engine, tenant) -> dict[str, int]:
    """The ledger's balances (debits minus credits) per account, after checking that every
    journal balances and the whole ledger sums to zero."""
    async with TenantDatabase(engine).session(tenant) as session:
        assert await ledger.unbalanced(session) == []
        total = await session.scalar(select(func.sum(JournalLine.debit - JournalLine.credit)))
        assert int(total or 0) == 0
        return await ledger.balances(session)
