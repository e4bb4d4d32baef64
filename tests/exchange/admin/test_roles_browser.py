"""Every demo login does its main flow in the admin, in Chinese, in a real headless Chromium asking for
zh-CN: the registry officer reads the dashboard, the second registry officer approves a waiting request,
the registry settles now, a trader requests a pledge, the bank officer accepts and registers it,
the auditor reads the audit trail. Each step saves a screenshot to the test's directory (and to
``$GREENLEDGER_SCREENSHOTS`` if set: ``GREENLEDGER_SCREENSHOTS=docs/img`` refreshes the README's picture).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from datetime import timedelta

import pytest
from django.core.management import call_command

from config.services import require_services
from core import clock
from exchange.models import ApprovalRequest, ApprovalStatus, PledgeLoan, PledgeStatus, SettlementBatch
from tests.exchange.admin.test_admin_browser import CHROMEDRIVER, CHROMIUM, FLAGS, _save

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "greenledger-demo"


@pytest.fixture
def chinese_browser():
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
    profile = tempfile.mkdtemp(prefix="gl-chromium-zh-")
    for flag in [*FLAGS, f"--user-data-dir={profile}", "--lang=zh-CN"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _log_in(browser, url: str, username: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(f"{url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    try:
        WebDriverWait(browser, 20).until(lambda driver: driver.find_elements(By.ID, "user-tools"))
    except TimeoutException:
        pytest.fail(f"{username} could not log in: at {browser.current_url}, {browser.title!r}")


def _open(browser, url: str) -> str:
    from selenium.webdriver.common.by import By

    browser.get(url)
    return browser.find_element(By.ID, "content").text


def _run_action(browser, action: str, pk: int) -> str:
    """Tick a row, choose the action, press the admin's Go button; the messages shown after."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value(action)
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    WebDriverWait(browser, 20).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "ul.messagelist"))
    return browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text


def test_each_demo_login_does_its_work_in_chinese(chinese_browser, live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, url = chinese_browser, live_server.url
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())

    # the registry officer: the dashboard, in Chinese, money in yuan
    _log_in(browser, url, "admin")
    dashboard = browser.find_element(By.ID, "gl-dashboard").text
    assert "市场 — 交易日" in dashboard
    assert "各状态存量（吨）" in dashboard
    assert "2,400,000.00" in dashboard  # the demo pledge's principal, in yuan
    groups = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#content-main .module caption a")]
    assert groups[:7] == ["注册登记", "交易", "结算", "质押", "履约", "审计", "访问权限"]
    _save(browser, tmp_path, "admin-dashboard-zh.png")

    # the second registry officer approves the allocation the first requested (four eyes)
    waiting = ApprovalRequest.objects.get(status=ApprovalStatus.PENDING)
    _log_in(browser, url, "registry_officer")
    page = _open(browser, f"{url}/admin/exchange/approvalrequest/?status__exact=pending")
    assert "审批申请" in page
    _run_action(browser, "approve", waiting.pk)
    assert ApprovalRequest.objects.get(pk=waiting.pk).status == ApprovalStatus.APPROVED
    _save(browser, tmp_path, "roles-registry-officer-approves.png")

    # the registry settles now (settlement is the registry's, no longer the exchange operator's)
    batches = SettlementBatch.objects.count()
    _log_in(browser, url, "admin")
    _open(browser, f"{url}/admin/exchange/settlementbatch/")
    browser.find_element(By.XPATH, "//button[text()='立即结算']").click()
    WebDriverWait(browser, 20).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "ul.messagelist"))
    assert "结算批次" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert SettlementBatch.objects.count() == batches + 1
    _save(browser, tmp_path, "roles-registry-settles.png")

    # a trader requests a pledge: 10,000 t of CEA-2024 for 500,000.00 yuan at 3.85%
    from accounts.models import Participant
    from exchange.models import Account, Asset

    jingneng = Participant.objects.get(name="Jingneng Thermal Power Co.")
    bank = Participant.objects.get(name="Bank of Beijing Tongzhou Branch")
    account = Account.objects.filter(participant=jingneng, kind="holding").order_by("id").first()
    today = clock.trading_day()
    _log_in(browser, url, "jingneng_trader")
    form = _open(browser, f"{url}/admin/exchange/pledgeloan/add/")
    assert "本金（元）" in form
    assert "年利率（%）" in form
    browser.execute_script(
        "for (const [name, value, label] of arguments[0]) {"
        "  const select = document.querySelector(`select[name=${name}]`);"
        "  select.add(new Option(label, value, true, true));"
        "}",
        [["account", str(account.pk), account.number], ["lender", str(bank.pk), bank.name]],
    )
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.NAME, "asset")).select_by_value(str(Asset.objects.get(code="CEA-2024").pk))
    for name, value in {
        "quantity": "10000",
        "principal_fen": "500,000.00",
        "annual_rate_bp": "3.85",
        "start_date": today.isoformat(),
        "maturity_date": (today + timedelta(days=365)).isoformat(),
        "ltv_limit_bp": "70",
        "margin_call_bp": "80",
        "liquidation_bp": "90",
        "cure_period_days": "3",
    }.items():
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.NAME, "_save").click()
    WebDriverWait(browser, 20).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "ul.messagelist"))
    loan = PledgeLoan.objects.get(status=PledgeStatus.REQUESTED)
    assert (loan.quantity, loan.principal_fen, loan.annual_rate_bp) == (10_000, 50_000_000, 385)
    _save(browser, tmp_path, "roles-trader-requests-pledge.png")

    # the bank officer confirms the same terms (a joint application), and the registry registers the pledge,
    # which freezes the units (Civil Code art. 443: a rights pledge is created by registration)
    _log_in(browser, url, "bank_bj_officer")
    _open(browser, f"{url}/admin/exchange/pledgeloan/")
    _run_action(browser, "accept", loan.pk)
    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.APPLIED
    _log_in(browser, url, "registry_officer")
    _open(browser, f"{url}/admin/exchange/pledgeloan/")
    _run_action(browser, "register", loan.pk)
    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.REGISTERED
    detail = _open(browser, f"{url}/admin/exchange/pledgeloan/{loan.pk}/change/")
    assert "500,000.00" in detail
    assert "3.85%" in detail
    _save(browser, tmp_path, "roles-bank-officer-registers.png")

    # the auditor reads the audit trail and can change nothing
    _log_in(browser, url, "auditor")
    trail = _open(browser, f"{url}/admin/exchange/auditevent/")
    assert "审计事件" in trail
    assert not browser.find_elements(By.CSS_SELECTOR, "a.addlink")
    _save(browser, tmp_path, "roles-auditor-reads.png")
