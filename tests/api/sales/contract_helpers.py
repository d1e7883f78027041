"""Documents and steps of the contract (签约) tests, and a gateway that seals through a
loopback timestamp authority."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from tests.api.client.helpers import CREATE
from tests.api.sales.helpers import data
from tests.api.sales.subscription_helpers import reserve, subscribed
from tests.api.unit.helpers import inventory
from tests.conftest import gql

CONTRACT_FIELDS = """
  id number revision amendsId status subscriptionId projectId unitId clientId agentId
  templateId locale price { minorUnits currency } priceInCapitals
  paymentPlan { label amount { minorUnits } amountInCapitals due }
  extraClauses note documentSha256 signedSha256 signedAt registrationNumber registeredAt
  canceledAt cancelReason version documentUrl signedDocumentUrl certificateUrl certificate
"""

_RESULT = f"""
    __typename
    ... on SalesContractPayload {{ contract {{ {CONTRACT_FIELDS} }} }}
    ... on UserError {{ code message field }}
"""

CREATE_CONTRACT = f"""
mutation($input: CreateContractInput!) {{ createContract(input: $input) {{ {_RESULT} }} }}
"""

REQUEST_CODE = """
mutation($c: ID!) {
  requestContractSigningCode(contractId: $c) {
    __typename
    ... on ContractSigningCodeSent { expiresAt resendAfterSeconds phone documentSha256 }
    ... on UserError { code message field }
  }
}
"""

SIGN = f"""
mutation($c: ID!, $code: String!, $sha: String!) {{
  signContract(contractId: $c, code: $code, documentSha256: $sha) {{ {_RESULT} }}
}}
"""

REGISTER = f"""
mutation($c: ID!, $number: String!) {{
  recordContractRegistration(contractId: $c, number: $number) {{ {_RESULT} }}
}}
"""

AMEND = f"""
mutation($input: AmendContractInput!) {{ amendContract(input: $input) {{ {_RESULT} }} }}
"""

CANCEL = f"""
mutation($c: ID!, $reason: String!) {{
  cancelContract(contractId: $c, reason: $reason) {{ {_RESULT} }}
}}
"""

ONE = f"query($id: ID!) {{ salesContract(id: $id) {{ {CONTRACT_FIELDS} }} }}"

SAVE_TEMPLATE = """
mutation($input: ContractTemplateInput!) {
  saveContractTemplate(input: $input) {
    __typename
    ... on ContractTemplatePayload { template { id locale name title clauses isDefault } }
    ... on UserError { code message field }
  }
}
"""

CODE_RE = re.compile(r"(?:验证码|code is) (\d{6})")
PHONES = iter(range(10_000_000, 99_999_999))


def _kw(token) -> dict:
    return {} if token is None else {"token": token}


async def create_contract(http, slug, sub_id, token=None, **extra) -> dict:
    res = await gql(
        http,
        CREATE_CONTRACT,
        {"input": {"subscriptionId": sub_id, **extra}},
        tenant=slug,
        **_kw(token),
    )
    return data(res, "createContract")


async def created(http, slug, sub_id, token=None, **extra) -> dict:
    got = await create_contract(http, slug, sub_id, token, **extra)
    assert got["__typename"] == "SalesContractPayload", got
    return got["contract"]


async def request_code(http, slug, contract_id, token=None) -> dict:
    res = await gql(http, REQUEST_CODE, {"c": contract_id}, tenant=slug, **_kw(token))
    return data(res, "requestContractSigningCode")


async def sign(http, slug, contract_id, code, sha, token=None, headers=None) -> dict:
    res = await gql(
        http, SIGN, {"c": contract_id, "code": code, "sha": sha}, tenant=slug, **_kw(token)
    )
    return data(res, "signContract")


async def one(http, slug, contract_id, token=None) -> dict | None:
    return data(
        await gql(http, ONE, {"id": contract_id}, tenant=slug, **_kw(token)), "salesContract"
    )


def code_sent(sms, phone: str) -> str:
    message = sms.last_to(phone)
    assert message is not None, sms.outbox[-3:]
    return CODE_RE.search(message.text).group(1)


async def fetch(http, url: str) -> httpx.Response:
    """A private media link, fetched from the test gateway (the link names the configured
    host; its path and signed query are what count)."""
    parts = urlsplit(url)
    return await http.get(f"{parts.path}?{parts.query}")


async def buyer_with_subscription(http, tenant, agent_token, *, price=300_000_000, name="张三"):
    """A unit reserved and subscribed by a new buyer (phone and ID number on record).
    Returns (subscription, unit id, buyer phone, buyer ID number)."""
    slug = tenant.slug
    inv = await inventory(http, slug, floors=1, per_floor=1, price=price, project_name="海港一号")
    unit = inv["units"][0]["id"]
    n = next(PHONES)
    phone, id_number = f"+86139{n:08d}", f"1101011990{n:08d}"
    res = await gql(
        http,
        CREATE,
        {"input": {"name": name, "phone": phone, "idNumber": id_number}},
        tenant=slug,
        token=agent_token,
    )
    buyer = data(res, "createClient")["client"]["id"]
    await reserve(http, slug, unit)
    sub = await subscribed(http, slug, unit, buyer, agent_token)
    return sub, unit, phone, id_number
