"""Settlement follows the one lock order (``exchange.locks``): the enforcement and loan rows of pledged
units sold on enforcement are locked before any balance or hold row, as the pledge services lock them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import clock
from exchange.models import PledgeStatus
from exchange.services.pledges import pledge_enforce
from exchange.services.settlement import settlement_run
from exchange.sql import sql_file
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = pytest.mark.django_db


def _first(queries: list[str], *needles: str) -> int:
    return next(i for i, sql in enumerate(queries) if all(n in sql for n in needles))


def test_settlement_locks_pledge_rows_before_balances_and_holds():
    with clock.pinned(IN_SESSION):
        ps = make_pledges()
        loan = ps.defaulted(500)
    with clock.pinned(at(DAY + timedelta(days=2))):
        pledge_enforce(actor=ps.bank[2], loan=loan, method="sale", price_fen=8000)
        _, buyer_acc, buyer = ps.ex.trader("Buyer", cash_fen=10_000_000)
        ps.ex.order(buyer, buyer_acc, "buy", 8000, 500)

        with CaptureQueriesContext(connection) as captured:
            settlement_run()

    queries = [q["sql"] for q in captured.captured_queries]
    enforcement = _first(queries, 'FROM "exchange_pledgeenforcement"', "FOR UPDATE")
    loan_lock = _first(queries, 'FROM "exchange_pledgeloan"', "FOR UPDATE")
    # The ledger's balance and hold locks are taken by its bookkeeping statement, balances first.
    balances = _first(queries, "greenledger_balances_post(")
    bookkeeping = sql_file("greenledger_balances_post")
    assert bookkeeping.index("FOR UPDATE OF b") < bookkeeping.index("FOR UPDATE OF h")
    ledger_rows = ("exchange_balance", "exchange_hold")
    assert not any("FOR UPDATE" in sql and any(t in sql for t in ledger_rows) for sql in queries[:balances])
    assert enforcement < loan_lock < balances
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.ENFORCED  # the sale filled and settled: the loan is done
