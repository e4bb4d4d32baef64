"""Release for compliance: with the lender's consent, pledged units leave the pledge into the borrower's
surrender in one transaction, and the loan's collateral and LTV are updated (or substitute units are
pledged in their place). Without consent, with a margin call open, or above the LTV limit, nothing moves."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from core import clock
from core.errors import DomainError
from exchange.models import AccountKind, PledgeComplianceRelease, PledgeLoan, Surrender
from exchange.services.compliance import compliance_year_create, emissions_record, entities_cover
from exchange.services.pledges import pledges_value
from exchange.services.pledges.compliance_release import (
    pledge_compliance_release_decide,
    pledge_compliance_release_request,
)
from tests.helpers.ledger import assert_reconciled, balance, snapshot, system
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import DAY, at, make_pledges

YEAR = 2024
# 70% at 80.00 with the call at 75%: a close at 72.00 (the band's floor) raises a margin call
CALLABLE = {"principal_fen": 1_680_000, "margin_call_bp": 7500}


def _covered(ps):
    registry = ps.ex.market.registry_actor
    year = compliance_year_create(actor=registry, year=YEAR)
    [obligation] = entities_cover(actor=registry, year=year, entities=[ps.borrower[0]])
    emissions_record(actor=registry, obligation=obligation, quantity=600)
    return obligation


def refused(call, code: str) -> DomainError:
    before = snapshot()
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert snapshot() == before
    return caught.value


@pytest.mark.django_db
@pytest.mark.usefixtures("in_session")
class TestReleaseForCompliance:
    @pytest.fixture
    def ps(self):
        ps = make_pledges()
        _covered(ps)
        ps.loan = ps.registered(500)  # 24,000.00 against 500 t at 80.00: LTV 60%
        return ps

    def test_nothing_moves_without_the_lenders_consent(self, ps):
        pledge_compliance_release_request(actor=ps.borrower[2], loan=ps.loan, quantity=50, year=YEAR)
        assert balance(ps.account, ps.cea) == (1000, 500)

        refused(
            lambda: pledge_compliance_release_decide(actor=ps.borrower[2], loan=ps.loan, consent=True),
            "pledge_lender_only",
        )
        refusal = pledge_compliance_release_decide(actor=ps.bank[2], loan=ps.loan, consent=False, reason="No.")

        assert (refusal.status, refusal.surrender) == ("refused", None)
        assert balance(ps.account, ps.cea) == (1000, 500)
        assert Surrender.objects.count() == 0
        refused(
            lambda: pledge_compliance_release_decide(actor=ps.bank[2], loan=ps.loan, consent=True),
            "pledge_compliance_release_not_pending",
        )

    def test_consent_releases_the_units_into_the_surrender_and_updates_ltv(self, ps):
        pledge_compliance_release_request(actor=ps.borrower[2], loan=ps.loan, quantity=50, year=YEAR)

        release = pledge_compliance_release_decide(actor=ps.bank[2], loan=ps.loan, consent=True)

        loan = PledgeLoan.objects.get(pk=ps.loan.pk)
        # 450 t pledged at 80.00 = 36,000.00 against 24,000.00: LTV 66.67%, rounded up
        assert (loan.quantity, loan.collateral_value_fen, loan.ltv_bp) == (450, 3_600_000, 6667)
        assert (release.status, release.ltv_bp_after, release.surrender.obligation.year_id) == ("released", 6667, YEAR)
        assert balance(ps.account, ps.cea) == (950, 450)
        assert balance(system(AccountKind.SURRENDER), ps.cea)[0] == 50
        assert_reconciled()

    def test_substitute_units_keep_the_collateral_whole(self, ps):
        pledge_compliance_release_request(
            actor=ps.borrower[2], loan=ps.loan, quantity=200, year=YEAR, substitute_quantity=200
        )

        pledge_compliance_release_decide(actor=ps.bank[2], loan=ps.loan, consent=True)

        loan = PledgeLoan.objects.get(pk=ps.loan.pk)
        assert (loan.quantity, loan.ltv_bp) == (500, 6000)
        assert balance(ps.account, ps.cea) == (800, 500)
        assert loan.collateral.order_by("id").last().kind == "substitute"
        assert_reconciled()

    def test_a_release_above_the_ltv_limit_is_refused(self, ps):
        pledge_compliance_release_request(actor=ps.borrower[2], loan=ps.loan, quantity=200, year=YEAR)

        error = refused(
            lambda: pledge_compliance_release_decide(actor=ps.bank[2], loan=ps.loan, consent=True),
            "ltv_limit_exceeded",
        )

        assert error.details["ltv_percent"] == "100.00"  # 24,000.00 / (300 x 80.00)
        assert PledgeComplianceRelease.objects.get().status == "requested"

    def test_a_release_while_a_margin_call_is_open_is_refused(self, ps):
        loan = ps.registered(300, **CALLABLE)
        pledge_compliance_release_request(
            actor=ps.borrower[2], loan=loan, quantity=10, year=YEAR, substitute_quantity=100
        )
        ps.close_at(DAY, 7200)  # LTV 16,800 / 21,600 = 77.78%: at the 75% call level
        with clock.pinned(at(DAY, 15, 40)):
            pledges_value()

        refused(
            lambda: pledge_compliance_release_decide(actor=ps.bank[2], loan=loan, consent=True),
            "pledge_margin_call_open",
        )


@pytest.mark.django_db(transaction=True)
def test_a_release_racing_a_margin_call_one_wins_and_the_books_reconcile():
    with clock.pinned(IN_SESSION):
        ps = make_pledges()
        _covered(ps)
        loan = ps.registered(300, **CALLABLE)
        # 50 t surrendered against 150 t of substitute: 400 t at 72.00 = 28,800.00, LTV 58.34%
        pledge_compliance_release_request(
            actor=ps.borrower[2], loan=loan, quantity=50, year=YEAR, substitute_quantity=150
        )
        ps.close_at(DAY, 7200)
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def run(what: str) -> None:
        try:
            barrier.wait(10)
            with clock.pinned(at(DAY, 15, 40)):
                if what == "release":
                    pledge_compliance_release_decide(actor=ps.bank[2], loan=loan, consent=True)
                else:
                    pledges_value()
            outcomes[what] = "ok"
        except DomainError as exc:
            outcomes[what] = exc.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(what,)) for what in ("release", "valuation")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    loan.refresh_from_db()
    assert outcomes["valuation"] == "ok"
    # the valuation came first (its margin call refuses the release), or the release did (and the valuation
    # found the loan with its substitute below the call level)
    assert outcomes["release"] in {"ok", "pledge_margin_call_open"}
    if outcomes["release"] == "ok":
        assert (loan.quantity, loan.margin_call_id, loan.ltv_bp) == (400, None, 5834)
        assert balance(ps.account, ps.cea) == (950, 400)
    else:
        assert (loan.quantity, loan.ltv_bp) == (300, 7778)
        assert loan.margin_call_id is not None
        assert balance(ps.account, ps.cea) == (1000, 300)
    assert_reconciled()
