"""Every admin list fits a 1,400-px-wide window in Chinese: the page doesn't scroll sideways, the results table
doesn't either, and an account number stays on one line. Each list is opened in a real headless Chromium with
the demo data, as the superuser (who sees every list); a list that overflows saves its screenshot to the test's
directory, and the failure names the lists and by how many pixels they overflow.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from tests.exchange.admin.test_admin_browser import _save
from tests.exchange.admin.test_roles_browser import PASSWORD, _log_in, chinese_browser  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# An account number (CN-100-000003, exchange/services/accounts.py) or a pledge's registration reference.
ACCOUNT_NUMBER = r"\b(CN-\d{3}-\d{6}|CNPL-\d{4}-\d{6})\b"

# The page's and the results table's overflow, and the account numbers that wrap (a text node whose range
# covers more than one line box).
MEASURE = """
const page = document.documentElement;
const results = document.querySelector('#changelist .results');
const pattern = new RegExp(arguments[0]);
const wrapped = [];
for (const cell of document.querySelectorAll('#result_list td, #result_list th')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const match = node.textContent.match(pattern);
    if (!match) continue;
    const range = document.createRange();
    range.setStart(node, match.index);
    range.setEnd(node, match.index + match[0].length);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    if (lines.size > 1) wrapped.push(match[0]);
  }
}
return {
  page: page.scrollWidth - page.clientWidth,
  results: results ? results.scrollWidth - results.clientWidth : 0,
  rows: document.querySelectorAll('#result_list tbody tr').length,
  wrapped: wrapped,
};
"""


def _changelists() -> list[str]:
    return sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    )


def test_every_admin_list_fits_1400_px_and_keeps_account_numbers_on_one_line(
    chinese_browser,  # noqa: F811
    live_server,
    tmp_path,
):
    browser, url = chinese_browser, live_server.url
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    get_user_model().objects.create_superuser("wide_check", "wide_check@demo.greenledger.cn", PASSWORD)
    browser.set_window_size(1400, 1000)
    _log_in(browser, url, "wide_check")
    assert browser.execute_script("return window.innerWidth") <= 1400

    overflowing, wrapping, with_rows = {}, {}, 0
    for path in _changelists():
        browser.get(f"{url}{path}")
        measured = browser.execute_script(MEASURE, ACCOUNT_NUMBER)
        assert browser.find_elements("id", "changelist"), f"{path} shows no list: {browser.title!r}"
        with_rows += measured["rows"] > 0
        if measured["page"] > 0 or measured["results"] > 0:
            overflowing[path] = (measured["page"], measured["results"])
            _save(browser, tmp_path, re.sub(r"\W+", "-", path.strip("/")) + ".png")
        if measured["wrapped"]:
            wrapping[path] = measured["wrapped"][:3]

    assert with_rows >= 20  # the demo data fills most lists, so the widths measured are real ones
    assert overflowing == {}, f"lists wider than the window (page px, table px): {overflowing}"
    assert wrapping == {}, f"account numbers that wrap: {wrapping}"
