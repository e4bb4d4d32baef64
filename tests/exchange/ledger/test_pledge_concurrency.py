"""A pledge registration racing a transfer of the same units, on real PostgreSQL connections: one wins."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from core import clock
from core.errors import DomainError
from exchange.models import PledgeLoan, PledgeStatus
from exchange.services.pledges import pledge_register
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import assert_reconciled, balance, blocks
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import make_pledges

pytestmark = [pytest.mark.django_db(transaction=True)]

PAIRS = 6


def test_registration_and_transfer_of_the_same_units_race_and_exactly_one_wins():
    with clock.pinned(IN_SESSION):
        ps = make_pledges(units=0)
        borrowers, loans = [], []
        for i in range(PAIRS):
            borrower = ps.ex.trader(f"Borrower {i}", units=100)
            borrowers.append(borrower)
            loans.append(ps.applied(100, borrower=borrower))
        elsewhere = ps.ex.trader("Elsewhere")[1]

        barrier = threading.Barrier(2 * PAIRS)
        outcomes: dict[tuple[int, str], str] = {}
        lock = threading.Lock()

        def run(i: int, what: str) -> None:
            try:
                barrier.wait(10)
                if what == "register":
                    pledge_register(actor=ps.ex.market.registry_actor, loan=loans[i])
                else:
                    _, account, actor = borrowers[i]
                    transfer_create(actor=actor, source=account, destination=elsewhere, asset=ps.cea, quantity=100)
                result = "ok"
            except DomainError as exc:
                result = exc.code
            finally:
                connections.close_all()
            with lock:
                outcomes[(i, what)] = result

        threads = [
            threading.Thread(target=run, args=(i, what)) for i in range(PAIRS) for what in ("register", "transfer")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    registered = 0
    for i, (_, account, _) in enumerate(borrowers):
        pair = (outcomes[(i, "register")], outcomes[(i, "transfer")])
        assert pair in {("ok", "insufficient_available"), ("insufficient_available", "ok")}, pair
        loan = PledgeLoan.objects.get(pk=loans[i].pk)
        if pair[0] == "ok":
            registered += 1
            assert loan.status == PledgeStatus.REGISTERED
            assert balance(account, ps.cea) == (100, 100)
            assert [b[3] for b in blocks(ps.cea, account)] == ["held"]
        else:
            assert loan.status == PledgeStatus.APPLIED
            assert balance(account, ps.cea) == (0, 0)
    assert balance(elsewhere, ps.cea) == ((PAIRS - registered) * 100, 0)
    assert_reconciled()
