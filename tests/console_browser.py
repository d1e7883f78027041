"""Headless Chromium for the console's browser tests: Debian's ``chromium`` and
``chromium-driver`` (never a browser that downloads itself), driven by Selenium.

Paths come from ``ANJU_TEST_CHROMIUM`` and ``ANJU_TEST_CHROMEDRIVER`` (default: ``chromium``
and ``chromedriver`` on PATH). ``skip_reason()`` says why the tests cannot run here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from api import console


def chromium_path() -> str | None:
    return os.environ.get("ANJU_TEST_CHROMIUM") or shutil.which("chromium")


def driver_path() -> str | None:
    return os.environ.get("ANJU_TEST_CHROMEDRIVER") or shutil.which("chromedriver")


def skip_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make install)"
    browser, driver = chromium_path(), driver_path()
    if not browser or not os.path.exists(browser):
        return "no chromium: apt-get install chromium chromium-driver (or set ANJU_TEST_CHROMIUM)"
    if not driver or not os.path.exists(driver):
        return "no chromedriver: apt-get install chromium-driver (or set ANJU_TEST_CHROMEDRIVER)"
    if not (console.DIST / "index.html").is_file():
        return f"the console is not built in {console.DIST}: make console"
    return None


@contextmanager
def chromium(lang: str = "zh-CN") -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path() or ""
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1280,900",
        f"--lang={lang}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path()))
    try:
        yield driver
    finally:
        driver.quit()
