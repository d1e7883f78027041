"""Each tenant setting tells what it accepts (kind, bounds, choices), so the console draws its
form from the gateway's declarations; and the gateway refuses, on the setting's own field,
what the console would have refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.setting.service import SPECS
from tests.conftest import gql

SETTINGS = "{ tenantSettings { key value default description kind min max choices } }"
UPDATE = """
mutation($changes: [SettingChange!]!) {
  updateTenantSettings(changes: $changes) {
    __typename
    ... on TenantSettingsPayload { settings { key value kind } }
    ... on UserError { code message field }
  }
}
"""


async def test_every_declared_setting_says_its_kind_bounds_and_choices(client, make_tenant):
    tenant = await make_tenant()
    res = await gql(client, SETTINGS, tenant=tenant.slug)
    got = {s["key"]: s for s in res["data"]["tenantSettings"]}
    assert list(got) == list(SPECS)
    for key, spec in SPECS.items():
        s = got[key]
        kind = {int: "int", Decimal: "decimal", str: "choice"}[spec.kind]
        assert (s["kind"], s["description"], s["default"]) == (
            kind,
            spec.description,
            str(spec.default),
        )
        if kind == "choice":
            assert (s["min"], s["max"], s["choices"]) == (None, None, list(spec.choices))
            assert s["value"] in s["choices"]
        else:
            assert (s["min"], s["max"], s["choices"]) == (str(spec.low), str(spec.high), [])
            assert Decimal(s["min"]) <= Decimal(s["value"]) <= Decimal(s["max"])
    # The money setting's upper bound is past 2**31: it travels as text, exactly.
    assert got["payments.deposit_amount"]["max"] == "10000000000"


@pytest.mark.parametrize(
    "value",
    ["4", "10081", "-1", "30.5", "1e2", "99999999999999999999999", ""],
)
async def test_a_value_out_of_its_declaration_is_refused_on_its_own_field(
    client, make_tenant, value
):
    tenant = await make_tenant()
    res = await gql(
        client,
        UPDATE,
        {"changes": [{"key": "inventory.hold_minutes", "value": value}]},
        tenant=tenant.slug,
    )
    payload = res["data"]["updateTenantSettings"]
    assert (payload["__typename"], payload["code"], payload["field"]) == (
        "ValidationError",
        "BAD_USER_INPUT",
        "inventory.hold_minutes",
    ), payload


async def test_the_bounds_themselves_are_accepted(client, make_tenant):
    tenant = await make_tenant()
    spec = SPECS["payments.deposit_amount"]
    res = await gql(
        client,
        UPDATE,
        {
            "changes": [
                {"key": spec.key, "value": str(spec.high)},
                {"key": "crm.duplicates", "value": "merge"},
            ]
        },
        tenant=tenant.slug,
    )
    payload = res["data"]["updateTenantSettings"]
    assert payload["__typename"] == "TenantSettingsPayload", payload
    values = {s["key"]: s["value"] for s in payload["settings"]}
    assert values[spec.key] == "10000000000"
    assert values["crm.duplicates"] == "merge"


async def test_a_nul_character_is_refused_before_the_setting_is_read(client, make_tenant):
    tenant = await make_tenant()
    res = await gql(
        client,
        UPDATE,
        {"changes": [{"key": "inventory.hold_minutes", "value": "30\x00"}]},
        tenant=tenant.slug,
    )
    assert res["data"] is None
    assert [e["extensions"]["code"] for e in res["errors"]] == ["BAD_USER_INPUT"], res
