"""A real headless Chromium logs in to the admin, opens the dashboard and a retirement certificate, and saves
screenshots.

Selenium drives Debian's ``chromium`` through Debian's own ``chromedriver`` (same version, both from apt),
so nothing is downloaded at test time. Without Chromium the test skips, except with ``REQUIRE_SERVICES=1``
(CI), where a missing browser fails it; ``.ci/run`` installs it. Screenshots go to the test's temporary
directory, and also to ``$GREENLEDGER_SCREENSHOTS`` if set (``GREENLEDGER_SCREENSHOTS=docs/img`` refreshes
the README's picture).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command

from config.services import require_services
from exchange.models import Retirement
from exchange.services.sealing import audit_seal

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1900",
]


@pytest.fixture
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = f"needs Chromium and chromedriver (apt-get install chromium chromium-driver); missing {missing}"
        if require_services():
            pytest.fail(f"REQUIRE_SERVICES=1: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="gl-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _save(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    target = os.environ.get("GREENLEDGER_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def test_admin_dashboard_and_certificate_in_chromium(browser, live_server, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    audit_seal()

    # when the admin logs in through the login form
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("greenledger-demo")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The click returns before the browser has the next page; wait for it (or fail naming what it shows).
    try:
        WebDriverWait(browser, 20).until(lambda driver: driver.find_elements(By.ID, "gl-dashboard"))
    except TimeoutException:
        pytest.fail(f"no dashboard after logging in: at {browser.current_url}, {browser.title!r}")

    # then the index is the dashboard: the market with a chart per listed asset, supply, pledges, compliance
    assert browser.find_element(By.ID, "gl-dashboard").is_displayed()
    market = browser.find_element(By.ID, "gl-market").text
    assert "CEA-2024" in market
    assert "CCER-BJ-TZ-FOREST-001-2023" in market
    # a chart per listed asset: ten past closes each, and BEA-2025's one (the Beijing pilot's last past day)
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline.close")) == 4
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart circle.close")) == 31
    assert "6,290,000" in browser.find_element(By.ID, "gl-supply").text
    assert "Below the margin-call level" in browser.find_element(By.ID, "gl-pledges").text
    assert "Compliance year 2025" in browser.find_element(By.ID, "gl-compliance").text
    _save(browser, tmp_path, "admin-dashboard.png")

    # and the demo retirement's public certificate shows its verified proof, without a login
    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/registry/retirements/{Retirement.objects.get().pk}")
    assert browser.find_element(By.ID, "verification").text == "Verified"
    assert "Grand Canal Culture Festival 2026" in browser.find_element(By.TAG_NAME, "main").text
    _save(browser, tmp_path, "retirement-certificate.png")
