"""Races on real PostgreSQL connections: a pledge registration against a transfer of the same units, and an
enforcement against a top-up of the same pledge. One wins; the books reconcile."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from core import clock
from core.errors import DomainError
from exchange.models import PledgeLoan, PledgeStatus
from exchange.services.pledges import pledge_enforce_court_order, pledge_register
from exchange.services.pledges.amendments import (
    pledge_amendment_confirm,
    pledge_amendment_register,
    pledge_amendment_request,
)
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


def test_enforcement_racing_a_top_up_one_wins_and_the_books_reconcile():
    """A court order executed by the registry against the registration of the borrower's top-up amendment of
    the same pledge, on real connections: both lock the loan first, so either the top-up lands first (and the
    order releases it with the rest) or the enforcement does (and the top-up is refused); no unit is lost or
    doubly held."""
    with clock.pinned(IN_SESSION):
        ps = make_pledges(units=0)
        pairs = []
        applied = {}
        for i in range(PAIRS):
            borrower = ps.ex.trader(f"Borrower {i}", units=200)
            pairs.append((borrower, ps.registered(100, borrower=borrower)))
            # the top-up amendment, applied by both parties: the registry's registration races the order
            amendment = pledge_amendment_request(actor=borrower[2], loan=pairs[-1][1], kind="top_up", quantity=50)
            applied[i] = pledge_amendment_confirm(
                actor=ps.bank[2], amendment=amendment, terms_digest=amendment.terms_digest
            )

        barrier = threading.Barrier(2 * PAIRS)
        outcomes: dict[tuple[int, str], str] = {}
        lock = threading.Lock()

        def run(i: int, what: str) -> None:
            _, loan = pairs[i]
            try:
                barrier.wait(10)
                if what == "enforce":
                    pledge_enforce_court_order(
                        actor=ps.ex.market.registry_actor,
                        loan=loan,
                        court_reference=f"(2026) Jing 0105 Min Chu {i}",
                        document_sha256="ab" * 32,
                        units_to_lender=50,
                        price_fen=8000,
                    )
                else:
                    pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=applied[i])
                result = "ok"
            except DomainError as exc:
                result = exc.code
            finally:
                connections.close_all()
            with lock:
                outcomes[(i, what)] = result

        threads = [threading.Thread(target=run, args=(i, w)) for i in range(PAIRS) for w in ("enforce", "top_up")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

    for i, ((_, account, _), loan) in enumerate(pairs):
        pair = (outcomes[(i, "enforce")], outcomes[(i, "top_up")])
        assert pair in {("ok", "ok"), ("ok", "invalid_pledge_transition")}, pair
        loan = PledgeLoan.objects.get(pk=loan.pk)
        assert loan.status == PledgeStatus.ENFORCED
        # the lender has exactly the 50 t the order named; everything else is the borrower's and free
        assert balance(account, ps.cea) == (150, 0)
        enforcement = loan.enforcements.get()
        assert (enforcement.units_to_lender, enforcement.units_released) == (50, 100 if pair[1] == "ok" else 50)
    assert balance(ps.bank_account, ps.cea) == (50 * PAIRS, 0)
    assert_reconciled()
