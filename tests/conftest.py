"""Shared test setup.

Every test runs on PostgreSQL (the machine's, or the embedded one: ``config.services``). Tests that need
Redis carry ``@pytest.mark.redis`` and skip without it, with a reason; with ``REQUIRE_SERVICES=1`` (as CI
sets it) any skip is reported as a failure instead, so a green CI run means every test ran against the
real services.
"""

from __future__ import annotations

import os

import pytest

from config.services import require_services


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    redis = bool(os.environ.get("REDIS_URL"))
    for item in items:
        if "redis" in item.keywords and not redis:
            item.add_marker(
                pytest.mark.skip(reason="needs Redis (set REDIS_URL or start it on 127.0.0.1:6379)")
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if require_services() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"REQUIRE_SERVICES=1 and this test was skipped: {reason}"
    return report


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    from exchange.selectors.calendar import clear_calendar_cache
    from exchange.services.accounts import clear_caches
    from exchange.services.cash import clear_cash_cache
    from exchange.services.session_close import clear_sessions_cache

    clear_caches()
    clear_cash_cache()
    clear_sessions_cache()
    clear_calendar_cache()


@pytest.fixture
def cleared_cache():
    """Django's cache emptied before and after the test: the throttles' counters and the pages' cached parts."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def flushed_db(transactional_db):
    """A transactional test's database emptied first, every sequence counting from 1 again.

    For a test that needs numbers from the start (an audit trail whose first event is 1). Resetting the
    sequences alone (``reset_sequences``) is not enough when the rows the migrations seed are still there,
    as they are in the first transactional test of a run: the next rulebook would be given id 1 again. A
    test that needs the shipped markets installs them (``make_market`` does).
    """
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def market(db):
    """A fresh market: the registry, the exchange, the system accounts and the CEA and CCER assets
    (``tests.helpers.market.make_market``). Live-server modules declare their own ``market`` over HTTP."""
    from tests.helpers.market import make_market

    return make_market()


@pytest.fixture
def in_session():
    """The market clock pinned inside a trading session; modules that trade use it for every test with
    ``pytest.mark.usefixtures("in_session")``."""
    from core import clock
    from tests.helpers.market import IN_SESSION

    with clock.pinned(IN_SESSION):
        yield
