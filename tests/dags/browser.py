"""Debian's headless chromium driven by selenium, logged in to a running Airflow's UI.

`make test` installs `chromium` and `chromium-driver` (the Makefile's chromium
target); the driver is named by path so selenium never looks for one online.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

WAIT = 30  # seconds for a page or an element


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium; a clear failure naming the fix if it is not installed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver: run `make chromium`",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1000")
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.set_page_load_timeout(WAIT)
    try:
        yield session
    finally:
        session.quit()


def login(session: Any, base_url: str, user: str, password: str, next_path: str) -> None:
    """Sign in through the Simple auth manager's login form, landing on `next_path`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    session.get(f"{base_url}/auth/login?next={next_path}")
    wait = WebDriverWait(session, WAIT)
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys(user)
    session.find_element(By.NAME, "password").send_keys(password)
    session.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda s: s.get_cookie("_token") is not None and "/auth/login" not in s.current_url)


def element(session: Any, css: str) -> Any:
    """The first element matching `css`, waited for."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(session, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )
