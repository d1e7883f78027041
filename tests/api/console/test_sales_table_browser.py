"""The sales table (销控表) live in two real Chromium sessions against the real gateway and
PostgreSQL: a hold made in one session's console (and one made over the API) recolours the
unit's cell in the other within seconds, without a reload; the release too.

With ``ANJU_CONSOLE_SCREENSHOTS=<dir>`` the sales table, the units list and a unit's page are
saved there as PNG (docs/console/ holds the ones the docs show)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.api.unit.helpers import inventory, status_to
from tests.conftest import gql
from tests.console_browser import chromium, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

WAIT = 30  # seconds: an upper bound for a slow CI machine, not a measurement
LIVE = 10  # seconds a live change may take to show in the other session (the brief: a few)
PASSWORD = "sales-table-pass-1"

SIGN_IN = """
mutation($identifier: String!, $password: String!) {
  signIn(identifier: $identifier, password: $password) {
    __typename
    ... on SignInPayload { tokens { accessToken accessTokenExpiresAt refreshToken
                                    refreshTokenExpiresAt sessionId } }
  }
}
"""
HOLD = """
mutation($id: ID!) { holdUnit(input: {unitId: $id}) { __typename } }
"""


async def signed_in(client, slug: str, email: str) -> dict:
    """A session of its own (tokens as the console keeps them)."""
    res = await gql(client, SIGN_IN, {"identifier": email, "password": PASSWORD}, tenant=slug)
    payload = res["data"]["signIn"]
    assert payload["__typename"] == "SignInPayload", payload
    return payload["tokens"]


def open_console(driver, base: str, slug: str, tokens: dict, path: str) -> None:
    """The console signed in as `tokens` (stored as its sign-in page stores them), at `path`."""
    driver.get(f"{base}/console/tenant")
    driver.execute_script(
        "localStorage.setItem('anju.tenant', arguments[0]);"
        "localStorage.setItem('anju.session.' + arguments[0], arguments[1]);",
        slug,
        json.dumps(tokens),
    )
    driver.get(f"{base}/console{path}")


def cell_status(driver, number: str) -> str | None:
    return driver.execute_script(
        "const c = document.querySelector(`[data-unit='${arguments[0]}']`);"
        "return c && c.getAttribute('data-status');",
        number,
    )


def background(driver, number: str) -> str:
    return driver.execute_script(
        "return getComputedStyle(document.querySelector(`[data-unit='${arguments[0]}']`))"
        ".backgroundColor;",
        number,
    )


def shot(driver, name: str) -> None:
    folder = os.environ.get("ANJU_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


async def test_a_hold_in_one_session_recolours_the_other_sessions_sales_table_live(
    live_server, client, make_tenant, member
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    tenant = await make_tenant(name="安居销控")
    slug = tenant.slug
    stock = await inventory(client, slug, floors=6, per_floor=4, project_name="滨江花园")
    building = stock["building"]["id"]
    units = {u["number"]: u["id"] for u in stock["units"]}
    email_a, email_b = f"a@{slug}.example.com", f"b@{slug}.example.com"
    await member(tenant, ["admin"], name="销售经理", email=email_a, password=PASSWORD)
    await member(tenant, ["admin"], name="案场主管", email=email_b, password=PASSWORD)
    tokens_a = await signed_in(client, slug, email_a)
    tokens_b = await signed_in(client, slug, email_b)
    path = f"/buildings/{building}/sales-table"
    connected = (By.CSS_SELECTOR, "[data-testid=live][data-state=connected]")

    with chromium() as a, chromium() as b:
        wait_a, wait_b = WebDriverWait(a, WAIT), WebDriverWait(b, WAIT)
        open_console(a, live_server.url, slug, tokens_a, path)
        open_console(b, live_server.url, slug, tokens_b, path)
        for wait in (wait_a, wait_b):
            wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-unit='101']")))
            wait.until(ec.presence_of_element_located(connected))
        b.execute_script("window.__notReloaded = true")
        assert cell_status(b, "101") == "AVAILABLE"
        available = background(b, "101")
        assert b.find_element(By.CSS_SELECTOR, "[data-testid=count-AVAILABLE]").text == "24"
        # Floors top first: the first row is the 6th floor.
        first_row = b.find_element(By.CSS_SELECTOR, "[data-testid=sales-grid] tbody tr th")
        assert first_row.text == "6 层"

        # Session A holds 101 through the console: the drawer's hold button.
        a.find_element(By.CSS_SELECTOR, "[data-unit='101']").click()
        wait_a.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=hold]"))).click()
        wait_a.until(lambda d: cell_status(d, "101") == "ON_HOLD")
        # Session B, untouched, sees it within seconds: status and colour, and the counts.
        WebDriverWait(b, LIVE).until(lambda d: cell_status(d, "101") == "ON_HOLD")
        assert background(b, "101") != available
        assert b.find_element(By.CSS_SELECTOR, "[data-testid=count-ON_HOLD]").text == "1"
        assert b.find_element(By.CSS_SELECTOR, "[data-testid=count-AVAILABLE]").text == "23"
        wait_a.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=release]")))
        shot(a, "sales-table-unit")

        # A hold made over the API (another member's app) reaches both sessions.
        res = await gql(client, HOLD, {"id": units["603"]}, tenant=slug)
        assert res["data"]["holdUnit"]["__typename"] == "UnitPayload", res
        WebDriverWait(a, LIVE).until(lambda d: cell_status(d, "603") == "ON_HOLD")
        WebDriverWait(b, LIVE).until(lambda d: cell_status(d, "603") == "ON_HOLD")

        # A releases 101 (with the confirmation): B sees it available again.
        a.find_element(By.CSS_SELECTOR, "[data-testid=release]").click()
        wait_a.until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, ".ant-popconfirm .ant-btn-primary"))
        ).click()
        WebDriverWait(b, LIVE).until(lambda d: cell_status(d, "101") == "AVAILABLE")
        assert background(b, "101") == available
        # B's page was never reloaded: the mark set on it at the start is still there.
        assert b.execute_script("return window.__notReloaded === true")

        if os.environ.get("ANJU_CONSOLE_SCREENSHOTS"):
            # A table with every colour: units moved along the sale over the API, seen live.
            await status_to(client, slug, units["102"], "PLANNED")
            await status_to(client, slug, units["201"], "RESERVED")
            await status_to(client, slug, units["202"], "RESERVED", "SUBSCRIBED")
            await status_to(client, slug, units["301"], "RESERVED", "SUBSCRIBED", "CONTRACTED")
            for number in ("401", "402", "501"):
                steps = ("RESERVED", "SUBSCRIBED", "CONTRACTED", "SOLD")
                await status_to(client, slug, units[number], *steps)
            WebDriverWait(b, LIVE).until(lambda d: cell_status(d, "501") == "SOLD")
            shot(b, "sales-table")
            b.get(f"{live_server.url}/console/units?building={building}")
            wait_b.until(ec.visibility_of_element_located((By.LINK_TEXT, "101")))
            shot(b, "units")
            b.get(f"{live_server.url}/console/units/{units['603']}")
            timeline = (By.CSS_SELECTOR, "[data-testid=timeline]")
            wait_b.until(ec.visibility_of_element_located(timeline))
            shot(b, "unit")
            b.get(f"{live_server.url}/console/projects/{stock['project']['id']}")
            wait_b.until(ec.visibility_of_element_located((By.LINK_TEXT, "销控表")))
            shot(b, "project")
