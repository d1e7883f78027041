"""End to end in a real Chromium against the real gateway and PostgreSQL: an agency signs up
in the browser and lands signed in on the console home. GraphiQL renders from the gateway's
own files. The first page load is measured and printed (no timed assertion)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.conftest import unique_slug
from tests.console_browser import chromium, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

WAIT = 30  # seconds: an upper bound for a slow CI machine, not a measurement
WELCOME = "欢迎，王经理"  # noqa: RUF001 (the console's zh-CN text)


def first_load_ms(driver) -> dict:
    return driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {dom: n.domContentLoadedEventEnd - n.startTime,"
        " load: n.loadEventEnd - n.startTime};"
    )


def only_from(driver, origin: str) -> list[str]:
    """Resources the page loaded from anywhere but the gateway."""
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [u for u in urls if not u.startswith(origin) and not u.startswith("data:")]


def test_an_agency_signs_up_in_the_browser_and_lands_on_the_console_home(live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    slug = unique_slug("web")
    welcome_shown = ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=welcome]"))
    an_error = ec.visibility_of_element_located((By.CSS_SELECTOR, ".ant-form-item-explain-error"))
    with chromium() as driver:
        wait = WebDriverWait(driver, WAIT)
        driver.get(f"{live_server.url}/console/sign-up")
        form = wait.until(ec.visibility_of_element_located((By.ID, "sign-up_tenantName")))
        shown = driver.execute_script("return performance.now()")
        timing = first_load_ms(driver)
        print(
            f"\nconsole first page load: DOMContentLoaded {timing['dom']:.0f} ms, "
            f"load {timing['load']:.0f} ms, sign-up form shown at {shown:.0f} ms"
        )
        assert driver.find_element(By.TAG_NAME, "h3").text == "注册公司"  # zh-CN by default

        # The form checks before sending: an empty submit shows what is missing.
        driver.find_element(By.CSS_SELECTOR, "form#sign-up button[type=submit]").click()
        wait.until(an_error)

        form.send_keys("网页房产")
        driver.find_element(By.ID, "sign-up_tenantSlug").send_keys(slug)
        driver.find_element(By.ID, "sign-up_name").send_keys("王经理")
        driver.find_element(By.ID, "sign-up_email").send_keys(f"boss@{slug}.example.com")
        driver.find_element(By.ID, "sign-up_password").send_keys("browser-pass-123")
        driver.find_element(By.CSS_SELECTOR, "form#sign-up button[type=submit]").click()

        welcome = wait.until(welcome_shown)
        assert welcome.text == WELCOME
        assert urlsplit(driver.current_url).path in ("/console", "/console/")  # the home route
        assert driver.find_element(By.CSS_SELECTOR, "[data-testid=tenant]").text == slug
        assert "网页房产" in driver.find_element(By.CSS_SELECTOR, ".ant-descriptions").text
        stored = driver.execute_script(f"return localStorage.getItem('anju.session.{slug}')")
        assert stored and "accessToken" in stored
        assert only_from(driver, live_server.url) == []

        # Reloading keeps the session: the console home again, from the stored tokens.
        driver.refresh()
        again = wait.until(welcome_shown)
        assert again.text == WELCOME


def test_graphiql_renders_from_the_gateway_alone(live_server_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    editor = (By.CSS_SELECTOR, ".graphiql-container .CodeMirror")
    with (
        live_server_factory(env="development", worker_in_process=False) as server,
        chromium("en") as driver,
    ):
        driver.get(f"{server.url}/graphql")
        WebDriverWait(driver, WAIT).until(ec.visibility_of_element_located(editor))
        assert only_from(driver, server.url) == []


# ---------------------------------------------------------------- pages hidden by permission

PASSWORD = "browser-pass-123"


async def console_run(c, name: str, variables=None, *, tenant=None, token=None) -> dict:
    """One console document by its id, as the console sends it."""
    from mobile_contracts.contracts import documents

    [doc] = [d for d in documents() if d.app == "console" and d.name == name]
    headers = {"X-Anju-App": "console"}
    if tenant:
        headers["X-Tenant"] = tenant
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"documentId": doc.id, "operationName": name, "variables": variables or {}}
    resp = await c.post("/graphql", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    res = resp.json()
    assert "errors" not in res, (name, res)
    return res["data"]


async def agency_with_a_site_visitor(server) -> tuple[str, dict, str]:
    """An agency (its admin's tokens) and a member whose only role is a custom one without
    member.read (the staff page's permission); the member's email."""
    import re
    from urllib.parse import parse_qs, urlsplit

    import httpx

    slug = unique_slug("perm")
    visitor = f"visitor@{slug}.example.com"
    outbox = server.server.config.app.state.email.outbox
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        signed = (
            await console_run(
                c,
                "SignUp",
                {
                    "input": {
                        "tenantSlug": slug,
                        "tenantName": "权限房产",
                        "name": "王经理",
                        "email": f"boss@{slug}.example.com",
                        "password": PASSWORD,
                        "locale": "zh-CN",
                    }
                },
            )
        )["signUp"]
        assert signed["__typename"] == "SignUpPayload", signed
        admin = signed["tokens"]
        token = admin["accessToken"]
        role = (
            await console_run(
                c,
                "CreateCustomRole",
                {
                    "input": {
                        "key": "site_visitor",
                        "name": "Site visitor",
                        "permissions": ["project.read", "unit.read"],
                        "dataScope": "own",
                    }
                },
                tenant=slug,
                token=token,
            )
        )["createRole"]
        assert role["__typename"] == "RolePayload", role
        before = len(outbox)
        invited = (
            await console_run(
                c,
                "InviteStaff",
                {"input": {"name": "访客小李", "roles": ["agent"], "email": visitor}},
                tenant=slug,
                token=token,
            )
        )["inviteMember"]
        assert invited["__typename"] == "InvitationPayload", invited
        [message] = [m for m in outbox[before:] if visitor in str(m.to)]
        [link] = re.findall(r"https?://\S+", message.text)
        accepted = (
            await console_run(
                c,
                "AcceptInvitation",
                {
                    "token": parse_qs(urlsplit(link).query)["token"][0],
                    "password": PASSWORD,
                    "name": None,
                },
                tenant=slug,
            )
        )["acceptInvitation"]
        assert accepted["__typename"] == "SignInPayload", accepted
        staff = await console_run(c, "StaffMembers", tenant=slug, token=token)
        [member] = [m for m in staff["members"] if m["account"]["name"] == "访客小李"]
        assigned = (
            await console_run(
                c,
                "AssignStaffRoles",
                {"accountId": member["account"]["id"], "roles": ["site_visitor"]},
                tenant=slug,
                token=token,
            )
        )["assignRoles"]
        assert assigned["__typename"] == "MemberPayload", assigned
        assert assigned["member"]["roles"] == ["site_visitor"]
        # Teams and a routing rule through the console's own documents (for its pages).
        parent = None
        for kind, name in (("company", "权限房产"), ("office", "浦东门店"), ("team", "销售一组")):
            made = (
                await console_run(
                    c,
                    "CreateTeam",
                    {"input": {"name": name, "kind": kind, "parentId": parent}},
                    tenant=slug,
                    token=token,
                )
            )["createTeam"]
            assert made["__typename"] == "TeamPayload", made
            parent = made["team"]["id"]
        boss = next(m for m in staff["members"] if m["account"]["name"] == "王经理")
        joined = (
            await console_run(
                c,
                "AddTeamMember",
                {"teamId": parent, "accountId": boss["account"]["id"]},
                tenant=slug,
                token=token,
            )
        )["addTeamMember"]
        assert joined["__typename"] == "TeamMembershipPayload", joined
        rule = {"name": "网络线索", "teamId": parent, "mode": "CLAIM", "claimMinutes": 60}
        route = (
            await console_run(
                c,
                "CreateLeadRoute",
                {"input": {**rule, "sources": ["PORTAL"], "districts": ["浦东"]}},
                tenant=slug,
                token=token,
            )
        )["createLeadRoute"]
        assert route["__typename"] == "LeadRoutePayload", route
    return slug, admin, visitor


def menu_texts(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    items = driver.find_elements(By.CSS_SELECTOR, "nav .ant-menu-item")
    return [i.text for i in items]


def screenshot(driver, name: str) -> None:
    """With ANJU_CONSOLE_SCREENSHOTS=<dir> (docs/console), the page as it is now."""
    import os
    import pathlib

    folder = os.environ.get("ANJU_CONSOLE_SCREENSHOTS")
    if folder:
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(pathlib.Path(folder) / f"{name}.png"))


async def test_a_member_without_the_staff_permission_sees_no_staff_menu_and_is_refused_the_page(
    live_server_factory,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    welcome_shown = ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=welcome]"))
    forbidden = ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=forbidden]"))
    with live_server_factory(email_backend="capture") as server:
        slug, admin, visitor = await agency_with_a_site_visitor(server)
        with chromium() as driver:
            wait = WebDriverWait(driver, WAIT)
            # The member signs in with the console's form.
            driver.get(f"{server.url}/console/tenant")
            driver.execute_script(f"localStorage.setItem('anju.tenant', '{slug}')")
            driver.get(f"{server.url}/console/sign-in")
            wait.until(ec.visibility_of_element_located((By.ID, "password-sign-in_identifier")))
            driver.find_element(By.ID, "password-sign-in_identifier").send_keys(visitor)
            driver.find_element(By.ID, "password-sign-in_password").send_keys(PASSWORD)
            driver.find_element(
                By.CSS_SELECTOR, "form#password-sign-in button[type=submit]"
            ).click()
            assert wait.until(welcome_shown).text == "欢迎，访客小李"  # noqa: RUF001
            # Only the pages of the member's permissions: home, sessions, projects and units.
            wait.until(lambda d: menu_texts(d) == ["首页", "登录会话", "楼盘项目", "房源"])
            # The staff page by its URL: refused, and its query never answered with data.
            driver.get(f"{server.url}/console/staff")
            shown = wait.until(forbidden)
            assert "member.read" in shown.text
            assert driver.find_elements(By.CSS_SELECTOR, ".ant-table") == []
            driver.get(f"{server.url}/console/settings")
            assert "tenant.manage" in wait.until(forbidden).text
            screenshot(driver, "forbidden")

        with chromium() as driver:
            wait = WebDriverWait(driver, WAIT)
            # The admin, from stored tokens: every page; the first load of /console/ timed.
            driver.get(f"{server.url}/console/tenant")
            driver.execute_script(
                "localStorage.setItem('anju.tenant', arguments[0]);"
                "localStorage.setItem('anju.session.' + arguments[0], arguments[1]);",
                slug,
                json.dumps(admin),
            )
            driver.get(f"{server.url}/console/")
            wait.until(welcome_shown)
            shown = driver.execute_script("return performance.now()")
            timing = first_load_ms(driver)
            print(
                f"\nconsole /console/ first load: DOMContentLoaded {timing['dom']:.0f} ms, "
                f"load {timing['load']:.0f} ms, home shown (viewer read) at {shown:.0f} ms"
            )
            wait.until(
                lambda d: (
                    menu_texts(d)
                    == [
                        "首页",
                        "员工",
                        "角色",
                        "登录会话",
                        "团队",
                        "公司设置",
                        "线索分配",
                        "审计日志",
                        "楼盘项目",
                        "房源",
                    ]
                )
            )
            for path, ready, name in (
                ("/staff", ".ant-table-row", None),
                ("/teams", ".ant-table-row", "teams"),
                ("/settings", "#settings_inventory\\.hold_minutes", "settings"),
                ("/routing", ".ant-table-row", "routing"),
                ("/audit", ".ant-table-row", "audit"),
            ):
                driver.get(f"{server.url}/console{path}")
                wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ready)))
                assert driver.find_elements(By.CSS_SELECTOR, "[data-testid=forbidden]") == []
                if name:
                    screenshot(driver, name)
            # The audit log names what the admin did (the custom role, the assignment).
            text = driver.find_element(By.CSS_SELECTOR, ".ant-table").text
            assert "createRole" in text and "assignRoles" in text, text[:500]
            assert only_from(driver, server.url) == []
