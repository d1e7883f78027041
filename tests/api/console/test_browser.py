"""End to end in a real Chromium against the real gateway and PostgreSQL: an agency signs up
in the browser and lands signed in on the console home. GraphiQL renders from the gateway's
own files. The first page load is measured and printed (no timed assertion)."""

from __future__ import annotations

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
