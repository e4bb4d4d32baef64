"""Amendments of a registered pledge (top-up, partial release, extension), registered like the pledge:
the borrower applies, the lender confirms the same terms, the registry registers (four eyes above the
threshold) with an amendment number. Nothing changes before registration; every refusal changes nothing."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connections

from core import clock
from core.errors import DomainError
from exchange.models import (
    ApprovalOperation,
    ApprovalRequest,
    AuditEvent,
    CollateralKind,
    PledgeAmendment,
    PledgeStatus,
)
from exchange.selectors.registry import pledge_certificate
from exchange.services.approvals import approval_approve, pledge_amendment_register_or_file
from exchange.services.pledges import pledge_default, pledges_value
from exchange.services.pledges.amendments import (
    pledge_amendment_confirm,
    pledge_amendment_register,
    pledge_amendment_reject,
    pledge_amendment_request,
)
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, snapshot
from tests.helpers.market import IN_SESSION
from tests.helpers.pledges import DAY, at, make_pledges

# 70% at 80.00 with the call at 75%: a close at 72.00 (the band's floor) raises a margin call
CALLABLE = {"principal_fen": 1_680_000, "margin_call_bp": 7500}


def refused(call, code: str) -> DomainError:
    before = snapshot()
    amendments = list(PledgeAmendment.objects.order_by("id").values())
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert snapshot() == before
    assert list(PledgeAmendment.objects.order_by("id").values()) == amendments
    return caught.value


def applied(ps, loan, **change):
    amendment = pledge_amendment_request(actor=ps.borrower[2], loan=loan, **change)
    return pledge_amendment_confirm(actor=ps.bank[2], amendment=amendment, terms_digest=amendment.terms_digest)


def registered(ps, loan, **change):
    return pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=applied(ps, loan, **change))


@pytest.mark.django_db
@pytest.mark.usefixtures("in_session")
class TestAmendments:
    @pytest.fixture
    def ps(self):
        ps = make_pledges()
        ps.loan = ps.registered(500)  # 24,000.00 against 500 t at 80.00: LTV 60%, serials 1-500 frozen
        return ps

    def test_a_top_up_freezes_nothing_until_the_registry_registers_it(self, ps):
        amendment = pledge_amendment_request(actor=ps.borrower[2], loan=ps.loan, kind="top_up", quantity=100)
        assert balance(ps.account, ps.cea) == (1000, 500)
        refused(
            lambda: pledge_amendment_confirm(actor=ps.bank[2], amendment=amendment, terms_digest="0" * 64),
            "pledge_terms_mismatch",
        )
        refused(
            lambda: pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=amendment),
            "invalid_pledge_transition",
        )
        pledge_amendment_confirm(actor=ps.bank[2], amendment=amendment, terms_digest=amendment.terms_digest)
        assert balance(ps.account, ps.cea) == (1000, 500)

        done = pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=amendment)

        ps.loan.refresh_from_db()
        assert (done.status, done.number, done.reference) == ("registered", 1, f"{ps.loan.registration_reference}-A01")
        assert done.serial_ranges == [[501, 600]]
        assert done.collateral.kind == CollateralKind.TOP_UP
        assert (ps.loan.quantity, ps.loan.ltv_bp, done.ltv_bp_after) == (600, 5000, 5000)
        assert balance(ps.account, ps.cea) == (1000, 600)
        assert AuditEvent.objects.filter(action="pledge.amendment_register", object_id=str(done.pk)).count() == 1
        assert_reconciled()

    def test_a_partial_release_frees_the_latest_collateral_and_updates_ltv(self, ps):
        registered(ps, ps.loan, kind="top_up", quantity=100)  # A01: serials 501-600

        done = registered(ps, ps.loan, kind="partial_release", quantity=150)

        ps.loan.refresh_from_db()
        assert (done.number, done.reference) == (2, f"{ps.loan.registration_reference}-A02")
        assert (ps.loan.quantity, ps.loan.ltv_bp) == (450, 6667)  # 24,000 / (450 x 80.00), rounded up
        assert balance(ps.account, ps.cea) == (1000, 450)
        held = [(first, last) for first, last, _number, state in blocks(ps.cea, ps.account) if state == "held"]
        # the top-up left first, then 50 t of the initial hold (a hold releases its lowest blocks first)
        assert held == [(51, 500)]
        assert_reconciled()

    def test_a_partial_release_records_the_serials_it_freed_on_the_amendment_and_in_its_audit_event(self, ps):
        registered(ps, ps.loan, kind="top_up", quantity=100)  # A01: serials 501-600

        done = registered(ps, ps.loan, kind="partial_release", quantity=150)

        done.refresh_from_db()
        assert done.serial_ranges == [[1, 50], [501, 600]]  # the top-up whole, then the initial hold's lowest 50
        event = AuditEvent.objects.get(action="pledge.amendment_register", object_id=str(done.pk))
        assert json.loads(event.payload)["serial_ranges"] == [
            ["1", "50"],
            ["501", "600"],
        ]  # as the payload writes numbers
        held = [(first, last) for first, last, _number, state in blocks(ps.cea, ps.account) if state == "held"]
        assert held == [(51, 500)]  # and exactly those are free again

    def test_a_partial_release_above_the_ltv_limit_or_under_a_margin_call_is_refused(self, ps):
        amendment = applied(ps, ps.loan, kind="partial_release", quantity=100)  # 400 t: LTV 75% > 70%

        error = refused(
            lambda: pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=amendment),
            "ltv_limit_exceeded",
        )
        assert error.details["ltv_percent"] == "75.00"

        loan = ps.registered(300, **CALLABLE)
        small = applied(ps, loan, kind="partial_release", quantity=1)
        ps.close_at(DAY, 7200)
        with clock.pinned(at(DAY, 15, 40)):
            pledges_value()
        refused(
            lambda: pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=small),
            "pledge_margin_call_open",
        )

    def test_a_registered_top_up_meets_an_open_margin_call(self, ps):
        loan = ps.registered(300, **CALLABLE)  # serials 501-800
        amendment = applied(ps, loan, kind="top_up", quantity=100)
        ps.close_at(DAY, 7200)
        with clock.pinned(at(DAY, 15, 40)):
            pledges_value()
        loan.refresh_from_db()
        call = loan.margin_call
        assert call is not None

        with clock.pinned(at(DAY, 15, 45)):
            done = pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=amendment)

        loan.refresh_from_db()
        assert (loan.quantity, loan.margin_call_id, done.ltv_bp_after) == (400, None, 5834)  # 16,800 / 28,800
        met = AuditEvent.objects.get(action="pledge.margin_call_met", object_id=str(call.pk))
        payload = json.loads(met.payload)
        assert (payload["by"], payload["ltv_bp"]) == ("amendment", "5834")
        assert_reconciled()

    def test_an_extension_moves_the_maturity_and_nothing_else(self, ps):
        before = ps.loan.maturity_date
        later = before + timedelta(days=180)

        done = registered(ps, ps.loan, kind="extension", maturity_date=later)

        ps.loan.refresh_from_db()
        assert (ps.loan.maturity_date, done.previous_maturity_date, ps.loan.quantity) == (later, before, 500)
        assert balance(ps.account, ps.cea) == (1000, 500)

    def test_bad_or_second_applications_are_refused(self, ps):
        borrower = ps.borrower[2]
        refused(
            lambda: pledge_amendment_request(actor=ps.bank[2], loan=ps.loan, kind="top_up", quantity=1),
            "pledge_borrower_only",
        )
        refused(
            lambda: pledge_amendment_request(actor=borrower, loan=ps.loan, kind="partial_release", quantity=500),
            "invalid_pledge_terms",
        )
        refused(
            lambda: pledge_amendment_request(
                actor=borrower, loan=ps.loan, kind="extension", maturity_date=ps.loan.maturity_date
            ),
            "invalid_pledge_terms",
        )
        refused(
            lambda: pledge_amendment_request(actor=borrower, loan=ps.loan, kind="top_up", quantity=501),
            "insufficient_available",
        )
        pledge_amendment_request(actor=borrower, loan=ps.loan, kind="top_up", quantity=10)
        refused(
            lambda: pledge_amendment_request(actor=borrower, loan=ps.loan, kind="top_up", quantity=10),
            "pledge_amendment_open",
        )

    def test_the_lender_or_the_registry_may_reject_and_nothing_moves(self, ps):
        amendment = pledge_amendment_request(actor=ps.borrower[2], loan=ps.loan, kind="top_up", quantity=10)
        pledge_amendment_reject(actor=ps.bank[2], amendment=amendment, reason="No.")
        second = applied(ps, ps.loan, kind="top_up", quantity=10)

        done = pledge_amendment_reject(actor=ps.ex.market.registry_actor, amendment=second, reason="Not the holder.")

        assert (done.status, done.reason, done.number) == ("rejected", "Not the holder.", None)
        assert balance(ps.account, ps.cea) == (1000, 500)

    def test_a_pledge_in_default_is_not_amended(self, ps):
        amendment = applied(ps, ps.loan, kind="top_up", quantity=10)
        with clock.pinned(at(ps.loan.maturity_date + timedelta(days=1))):
            pledge_default(actor=ps.bank[2], loan=ps.loan)
            refused(
                lambda: pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=amendment),
                "invalid_pledge_transition",
            )

    def test_above_the_threshold_a_second_registry_user_registers(self, ps, settings):
        settings.GREENLEDGER = {**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 99}
        amendment = applied(ps, ps.loan, kind="top_up", quantity=100)
        first, second = ps.ex.market.registry_actor, actor_for(ps.ex.market.registry)
        refused(lambda: pledge_amendment_register(actor=first, amendment=amendment), "approval_required")

        approval = pledge_amendment_register_or_file(actor=first, amendment=amendment)
        assert isinstance(approval, ApprovalRequest)
        assert approval.operation == ApprovalOperation.PLEDGE_AMENDMENT_REGISTER
        assert balance(ps.account, ps.cea) == (1000, 500)
        approval_approve(actor=second, approval=approval)

        amendment.refresh_from_db()
        assert (amendment.status, amendment.number) == ("registered", 1)
        assert balance(ps.account, ps.cea) == (1000, 600)

    def test_the_certificate_shows_the_amendment_history(self, ps):
        registered(ps, ps.loan, kind="top_up", quantity=100)
        registered(ps, ps.loan, kind="extension", maturity_date=ps.loan.maturity_date + timedelta(days=30))
        pledge_amendment_request(actor=ps.borrower[2], loan=ps.loan, kind="top_up", quantity=5)  # not registered

        found = pledge_certificate(ps.loan.registration_reference)

        assert [(a.reference, a.kind) for a in found.amendments] == [
            (f"{ps.loan.registration_reference}-A01", "top_up"),
            (f"{ps.loan.registration_reference}-A02", "extension"),
        ]


@pytest.mark.django_db(transaction=True)
def test_a_top_up_racing_a_default_one_wins_and_the_books_reconcile():
    with clock.pinned(IN_SESSION):
        ps = make_pledges()
        loan = ps.registered(300, maturity_date=DAY + timedelta(days=1))
        amendment = applied(ps, loan, kind="top_up", quantity=100)
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def run(what: str) -> None:
        try:
            barrier.wait(10)
            with clock.pinned(at(DAY + timedelta(days=2))):
                if what == "top_up":
                    pledge_amendment_register(actor=ps.ex.market.registry_actor, amendment=amendment)
                else:
                    pledge_default(actor=ps.bank[2], loan=loan)
            outcomes[what] = "ok"
        except DomainError as exc:
            outcomes[what] = exc.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(what,)) for what in ("top_up", "default")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    loan.refresh_from_db()
    amendment.refresh_from_db()
    # the default came first (a pledge in default is not amended), or the top-up did (and is enforceable too)
    assert outcomes["default"] == "ok"
    assert outcomes["top_up"] in {"ok", "invalid_pledge_transition"}
    assert loan.status == PledgeStatus.DEFAULTED
    if outcomes["top_up"] == "ok":
        assert (loan.quantity, amendment.status) == (400, "registered")
        assert balance(ps.account, ps.cea) == (1000, 400)
    else:
        assert (loan.quantity, amendment.status) == (300, "applied")
        assert balance(ps.account, ps.cea) == (1000, 300)
    assert_reconciled()
