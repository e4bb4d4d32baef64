"""Pledge loans: each step and each refusal with its code; what is frozen, on which serials, after each step."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import transaction

from accounts.models import ParticipantKind
from core import clock
from core.errors import DomainError
from exchange.models import (
    AccountKind,
    ApprovalOperation,
    ApprovalRequest,
    AuditEvent,
    CollateralKind,
    Hold,
    HoldKind,
    HoldStatus,
    PledgeAmendment,
    PledgeCollateral,
    PledgeLoan,
    PledgeStatus,
    TransactionKind,
)
from exchange.services.accounts import system_account
from exchange.services.approvals import approval_approve, pledge_register_or_file
from exchange.services.cash import cash_asset
from exchange.services.issuance import cea_vintage_create
from exchange.services.ledger import Leg, journal_open, ledger_post
from exchange.services.pledges import (
    TRANSITIONS,
    pledge_confirm,
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_external_reference_record,
    pledge_register,
    pledge_reject,
    pledge_release,
    pledge_withdraw,
    simple_interest_fen,
)
from exchange.services.pledges.amendments import pledge_amendment_request
from exchange.services.retirement import retirement_create, units_cancel
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, snapshot
from tests.helpers.pledges import DAY, PRINCIPAL_FEN, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def ps():
    return make_pledges()


def refused(call, code: str) -> DomainError:
    """Run ``call``; it must be refused with ``code`` and change nothing."""
    before = snapshot()
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert snapshot() == before
    return caught.value


# --- the happy paths ---------------------------------------------------------------------------------------
def test_request_freezes_nothing_and_registration_freezes_the_exact_blocks(ps):
    loan = ps.request(500)

    assert (loan.status, loan.registration_reference, loan.ltv_bp) == (PledgeStatus.REQUESTED, None, 6000)
    assert balance(ps.account, ps.cea) == (1000, 0)
    pledge_confirm(actor=ps.bank[2], loan=loan, terms_digest=loan.terms_digest)
    loan.refresh_from_db()
    # the joint application freezes nothing either: the pledge takes effect at registration
    assert (loan.status, loan.registration_reference, balance(ps.account, ps.cea)) == (
        PledgeStatus.APPLIED,
        None,
        (1000, 0),
    )

    pledge_register(actor=ps.ex.market.registry_actor, loan=loan)

    loan.refresh_from_db()
    assert loan.status == PledgeStatus.REGISTERED
    assert loan.registration_reference == f"CNPL-2026-{loan.pk:06d}"
    assert loan.lender_account == ps.bank_account
    assert balance(ps.account, ps.cea) == (1000, 500)
    assert blocks(ps.cea, ps.account) == [
        (1, 500, ps.account.number, "held"),
        (501, 1000, ps.account.number, "available"),
    ]
    (collateral,) = loan.collateral.all()
    assert (collateral.kind, collateral.quantity, collateral.serial_ranges) == (CollateralKind.INITIAL, 500, [[1, 500]])
    assert (collateral.hold.kind, collateral.hold.status, collateral.hold.reference) == (
        HoldKind.PLEDGE,
        HoldStatus.ACTIVE,
        f"pledge:{loan.pk}",
    )
    assert list(AuditEvent.objects.filter(action__startswith="pledge.").values_list("action", flat=True)) == [
        "pledge.request",
        "pledge.confirm",
        "pledge.register",
    ]
    event = AuditEvent.objects.get(action="pledge.register")
    assert (event.actor_participant_id, event.object_id) == (ps.ex.market.registry.pk, str(loan.pk))
    assert_reconciled()


def test_a_named_serial_range_is_the_range_frozen(ps):
    loan = ps.applied(100, serials=(301, 400))

    ps.register(loan)

    assert blocks(ps.cea, ps.account) == [
        (1, 300, ps.account.number, "available"),
        (301, 400, ps.account.number, "held"),
        (401, 1000, ps.account.number, "available"),
    ]
    assert loan.collateral.get().serial_ranges == [[301, 400]]


def test_top_up_freezes_more_units_and_lowers_ltv(ps):
    loan = ps.registered(500)

    collateral = ps.top_up(loan, 100).collateral  # the registered amendment, the one way to top up

    loan.refresh_from_db()
    assert (loan.quantity, loan.collateral_value_fen, loan.ltv_bp) == (600, 4_800_000, 5000)
    assert (collateral.kind, collateral.serial_ranges) == (CollateralKind.TOP_UP, [[501, 600]])
    assert balance(ps.account, ps.cea) == (1000, 600)
    # two holds of one pledge: adjacent blocks stay apart (one per hold), both held
    assert blocks(ps.cea, ps.account) == [
        (1, 500, ps.account.number, "held"),
        (501, 600, ps.account.number, "held"),
        (601, 1000, ps.account.number, "available"),
    ]
    assert_reconciled()


def test_a_top_up_applied_with_the_same_key_happens_once(ps):
    loan = ps.registered(500)

    first = pledge_amendment_request(actor=ps.borrower[2], loan=loan, kind="top_up", quantity=100, idempotency_key="t1")
    again = pledge_amendment_request(actor=ps.borrower[2], loan=loan, kind="top_up", quantity=100, idempotency_key="t1")

    assert again.pk == first.pk
    assert PledgeAmendment.objects.filter(loan=loan).count() == 1
    refused(
        lambda: pledge_amendment_request(
            actor=ps.borrower[2], loan=loan, kind="top_up", quantity=50, idempotency_key="t1"
        ),
        "idempotency_conflict",
    )


def test_there_is_one_way_to_top_up_a_pledge_the_registered_amendment():
    from django.urls import NoReverseMatch, resolve, reverse

    import exchange.services.pledges as pledges
    from exchange.services.pledges import registration

    assert not hasattr(pledges, "pledge_top_up")
    assert not hasattr(registration, "pledge_top_up")
    assert "top_up" not in TRANSITIONS
    with pytest.raises(NoReverseMatch):
        reverse("pledge-top-up", kwargs={"pk": 1})
    assert resolve(reverse("pledge-amendments", kwargs={"pk": 1})).url_name == "pledge-amendments"


def test_release_gives_every_unit_back_and_records_interest(ps):
    loan = ps.registered(500)
    ps.top_up(loan, 100)

    with clock.pinned(at(date(2027, 2, 25))):  # 92 days later
        pledge_release(actor=ps.bank[2], loan=loan, repayment_reference="BOB-20270225-01")

    loan.refresh_from_db()
    assert (loan.status, loan.closed_on) == (PledgeStatus.RELEASED, date(2027, 2, 25))
    # actual/360 by hand: 24,000.00 x 3.85% x 92 / 360 = 236.1333... -> 236.13 yuan
    assert loan.interest_fen == 23_613
    assert balance(ps.account, ps.cea) == (1000, 0)
    assert blocks(ps.cea, ps.account) == [(1, 1000, ps.account.number, "available")]
    assert set(Hold.objects.filter(kind=HoldKind.PLEDGE).values_list("status", flat=True)) == {HoldStatus.RELEASED}
    event = AuditEvent.objects.get(action="pledge.release")
    assert '"repayment_reference":"BOB-20270225-01"' in event.payload
    assert_reconciled()


def test_reject_and_withdraw_end_a_request_and_move_nothing(ps):
    rejected = ps.request(100)
    withdrawn = ps.request(100)
    before = balance(ps.account, ps.cea)

    pledge_reject(actor=ps.bank[2], loan=rejected, reason="collateral concentration")
    pledge_withdraw(actor=ps.borrower[2], loan=withdrawn)

    rejected.refresh_from_db()
    withdrawn.refresh_from_db()
    assert (rejected.status, rejected.note) == (PledgeStatus.REJECTED, "collateral concentration")
    assert withdrawn.status == PledgeStatus.WITHDRAWN
    assert balance(ps.account, ps.cea) == before == (1000, 0)
    assert not Hold.objects.filter(kind=HoldKind.PLEDGE).exists()


def test_default_after_maturity_keeps_the_units_frozen(ps):
    loan = ps.defaulted(500)

    assert (loan.status, loan.default_reason, loan.defaulted_on) == (
        PledgeStatus.DEFAULTED,
        "matured",
        DAY + timedelta(days=2),
    )
    assert balance(ps.account, ps.cea) == (1000, 500)
    assert blocks(ps.cea, ps.account)[0] == (1, 500, ps.account.number, "held")


def test_default_at_the_liquidation_level_needs_no_maturity(ps):
    loan = ps.registered(500)
    ps.close_at(DAY, 7200)
    ps.close_at(DAY + timedelta(days=1), 6480)
    ps.close_at(DAY + timedelta(days=2), 5832)
    ps.close_at(DAY + timedelta(days=5), 5249)  # Monday: 500 x 52.49 = 26,245.00; LTV 91.45%
    from exchange.services.pledges import pledges_value

    with clock.pinned(at(DAY + timedelta(days=5), 16)):
        pledges_value()
        pledge_default(actor=ps.bank[2], loan=loan)

    loan.refresh_from_db()
    assert (loan.status, loan.default_reason, loan.ltv_bp) == (PledgeStatus.DEFAULTED, "liquidation_level", 9145)


# --- every transition that is not in the table is refused --------------------------------------------------
def _loan_in(ps, state: str) -> PledgeLoan:
    short = {"maturity_date": DAY + timedelta(days=1)}
    if state == PledgeStatus.REQUESTED:
        return ps.request(10, **short)
    if state == PledgeStatus.APPLIED:
        return ps.applied(10, **short)
    if state == PledgeStatus.WITHDRAWN:
        return pledge_withdraw(actor=ps.borrower[2], loan=ps.request(10, **short))
    if state == PledgeStatus.REJECTED:
        return pledge_reject(actor=ps.bank[2], loan=ps.request(10, **short))
    if state == PledgeStatus.REGISTERED:
        return ps.registered(10, **short)
    if state == PledgeStatus.RELEASED:
        return pledge_release(actor=ps.bank[2], loan=ps.registered(10, **short))
    loan = ps.defaulted(10)
    if state == PledgeStatus.ENFORCED:
        with clock.pinned(at(DAY + timedelta(days=2))):
            pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)
            pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)
    return loan


def _act(ps, action: str, loan: PledgeLoan):
    bank, borrower = ps.bank[2], ps.borrower[2]
    return {
        "confirm": lambda: pledge_confirm(actor=bank, loan=loan, terms_digest=loan.terms_digest),
        "register": lambda: ps.register(loan),
        "reject": lambda: pledge_reject(actor=bank, loan=loan),
        "withdraw": lambda: pledge_withdraw(actor=borrower, loan=loan),
        "release": lambda: pledge_release(actor=bank, loan=loan),
        "default": lambda: pledge_default(actor=bank, loan=loan),
        "enforce": lambda: pledge_enforce(actor=bank, loan=loan, method="agreement", price_fen=8000),
        "court": lambda: pledge_enforce_court_order(
            actor=ps.ex.market.registry_actor,
            loan=loan,
            court_reference="(2026) Jing 0105 Min Chu 1",
            document_sha256="0" * 64,
            units_to_lender=0,
            price_fen=8000,
        ),
    }[action]


INVALID = [
    (state, action)
    for state in PledgeStatus.values
    for action, (allowed, _) in TRANSITIONS.items()
    if state not in allowed
]


@pytest.mark.parametrize(("state", "action"), INVALID)
def test_every_other_transition_is_refused_with_409(ps, state, action):
    loan = _loan_in(ps, state)
    loan.refresh_from_db()
    assert loan.status == state

    with clock.pinned(at(DAY + timedelta(days=2))):  # past maturity, so only the state can refuse
        error = refused(_act(ps, action, loan), "invalid_pledge_transition")

    assert error.status == 409
    assert error.details == {"pledge": loan.pk, "action": action, "from": state, "to": TRANSITIONS[action][1]}


def test_the_table_allows_exactly_the_issue_lifecycle():
    allowed = {(frm, action, to) for action, (froms, to) in TRANSITIONS.items() for frm in froms}
    assert allowed == {
        ("requested", "confirm", "applied"),
        ("applied", "register", "registered"),
        ("requested", "reject", "rejected"),
        ("applied", "reject", "rejected"),
        ("requested", "withdraw", "withdrawn"),
        ("applied", "withdraw", "withdrawn"),
        ("registered", "release", "released"),
        ("registered", "default", "defaulted"),
        ("defaulted", "enforce", "enforced"),
        ("registered", "court", "enforced"),
        ("defaulted", "court", "enforced"),
    }


# --- refusals of a request ---------------------------------------------------------------------------------
def test_request_for_more_than_available_is_refused(ps):
    error = refused(lambda: ps.request(1001), "insufficient_available")
    assert error.details == {"account": ps.account.number, "asset": "CEA-2024", "available": 1000, "requested": 1001}


def test_request_refusals(ps):
    other_bank = ps.ex.trader("Another investor", kind=ParticipantKind.INVESTOR)[0]
    unlisted = cea_vintage_create(actor=ps.ex.market.registry_actor, vintage=2025)
    ps.ex.market.give(ps.account, 10, asset=unlisted)
    borrower = ps.borrower[2]
    from exchange.services.pledges import pledge_request

    def ask(**changes):
        terms = {
            "actor": borrower,
            "account": ps.account,
            "lender": ps.bank[0],
            "asset": ps.cea,
            "quantity": 100,
            "principal_fen": 400_000,
            "annual_rate_bp": 385,
            "maturity_date": date(2027, 11, 25),
            "ltv_limit_bp": 7000,
            "margin_call_bp": 8000,
            "liquidation_bp": 9000,
            **changes,
        }
        return lambda: pledge_request(**terms)

    refused(ask(lender=other_bank), "invalid_lender")
    refused(ask(lender=ps.borrower[0]), "invalid_lender")
    refused(ask(asset=cash_asset()), "asset_not_pledgeable")
    refused(ask(asset=unlisted, quantity=10), "collateral_not_priced")
    # 100 t x 80.00 = 8,000.00; 6,000.00 is 75% > 70%
    error = refused(ask(principal_fen=600_000), "ltv_limit_exceeded")
    assert (error.details["ltv_percent"], error.details["ltv_limit_percent"]) == ("75.00", "70.00")
    assert refused(ask(margin_call_bp=9000), "invalid_pledge_terms").details == {
        "levels": "0 < LTV limit < margin-call level < liquidation level <= 10000 bp."
    }
    refused(ask(maturity_date=DAY), "invalid_pledge_terms")
    refused(ask(start_date=date(2027, 12, 1)), "invalid_pledge_terms")
    refused(ask(serials=(1, 99)), "invalid_pledge_terms")
    refused(ask(account=ps.bank_account), "account_not_found")
    refused(ask(actor=ps.bank[2]), "account_not_found")
    transfer_create(
        actor=borrower, source=ps.account, destination=ps.bank_account, asset=ps.cea, quantity=10, serials=(5, 14)
    )
    refused(ask(quantity=100, serials=(1, 100)), "serials_not_available")


def test_request_with_the_same_key_is_one_request(ps):
    first = ps.request(100, idempotency_key="loan-1")
    again = ps.request(100, idempotency_key="loan-1")

    assert again.pk == first.pk
    assert PledgeLoan.objects.count() == 1
    refused(lambda: ps.request(200, idempotency_key="loan-1"), "idempotency_conflict")


# --- refusals of the other steps ---------------------------------------------------------------------------
def test_only_the_lender_confirms_and_anyone_else_is_told_not_found(ps):
    loan = ps.request(100)
    stranger = ps.ex.trader("Stranger")[2]
    other_bank = ps.ex.trader("Other bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)[2]
    digest = loan.terms_digest

    refused(lambda: pledge_confirm(actor=ps.borrower[2], loan=loan, terms_digest=digest), "pledge_lender_only")
    refused(lambda: pledge_confirm(actor=stranger, loan=loan, terms_digest=digest), "pledge_not_found")
    refused(lambda: pledge_confirm(actor=other_bank, loan=loan, terms_digest=digest), "pledge_not_found")
    refused(lambda: pledge_withdraw(actor=ps.bank[2], loan=loan), "pledge_borrower_only")


def test_only_the_registry_registers_and_only_a_joint_application(ps):
    loan = ps.request(100)

    refused(lambda: pledge_register(actor=ps.bank[2], loan=loan), "wrong_participant_kind")
    refused(lambda: pledge_register(actor=ps.borrower[2], loan=loan), "wrong_participant_kind")
    # the lender has not confirmed: no joint application yet
    refused(lambda: ps.register(loan), "invalid_pledge_transition")


def test_the_lender_confirms_exactly_the_terms_applied_for(ps):
    loan = ps.request(100)
    other = ps.request(200)

    error = refused(
        lambda: pledge_confirm(actor=ps.bank[2], loan=loan, terms_digest=other.terms_digest), "pledge_terms_mismatch"
    )

    assert error.status == 409
    assert len(loan.terms_digest) == 64
    assert loan.terms_digest != other.terms_digest
    loan.refresh_from_db()
    assert (loan.status, loan.lender_confirmed_at) == (PledgeStatus.REQUESTED, None)


def test_the_registry_may_refuse_a_joint_application_and_the_borrower_may_withdraw_it(ps):
    refused_loan, withdrawn = ps.applied(100), ps.applied(100)

    pledge_reject(actor=ps.ex.market.registry_actor, loan=refused_loan, reason="The pledgor is not the holder.")
    pledge_withdraw(actor=ps.borrower[2], loan=withdrawn)

    refused_loan.refresh_from_db()
    withdrawn.refresh_from_db()
    assert (refused_loan.status, refused_loan.note, withdrawn.status) == (
        PledgeStatus.REJECTED,
        "The pledgor is not the holder.",
        PledgeStatus.WITHDRAWN,
    )
    assert balance(ps.account, ps.cea) == (1000, 0)


def test_registration_above_the_four_eyes_threshold_waits_for_a_second_registry_user(ps, settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 99}
    loan = ps.applied(100)
    first = ps.ex.market.registry_actor
    second = actor_for(ps.ex.market.registry)

    refused(lambda: ps.register(loan), "approval_required")
    approval = pledge_register_or_file(actor=first, loan=loan)
    assert isinstance(approval, ApprovalRequest)
    assert (approval.operation, approval.params) == (ApprovalOperation.PLEDGE_REGISTER, {"pledge": loan.pk})
    assert balance(ps.account, ps.cea) == (1000, 0)
    refused(lambda: approval_approve(actor=first, approval=approval), "four_eyes_same_user")

    approval_approve(actor=second, approval=approval)

    loan.refresh_from_db()
    approval.refresh_from_db()
    assert (loan.status, approval.result) == (PledgeStatus.REGISTERED, f"pledge:{loan.pk}")
    assert balance(ps.account, ps.cea) == (1000, 100)
    assert_reconciled()


def test_the_lender_records_the_external_registration(ps):
    loan = ps.registered(100)
    unregistered = ps.request(10)

    pledge_external_reference_record(actor=ps.bank[2], loan=loan, reference="  04567890001234567890  ")

    loan.refresh_from_db()
    assert loan.external_registration_reference == "04567890001234567890"
    refused(
        lambda: pledge_external_reference_record(actor=ps.borrower[2], loan=loan, reference="X"), "pledge_lender_only"
    )
    refused(
        lambda: pledge_external_reference_record(actor=ps.bank[2], loan=unregistered, reference="X"),
        "invalid_pledge_transition",
    )


def test_registration_is_refused_when_the_units_left_since_the_request(ps):
    loan = ps.applied(600)
    transfer_create(actor=ps.borrower[2], source=ps.account, destination=ps.bank_account, asset=ps.cea, quantity=500)

    error = refused(lambda: ps.register(loan), "insufficient_available")

    assert (error.details["available"], error.details["requested"]) == (500, 600)
    loan.refresh_from_db()
    assert loan.status == PledgeStatus.APPLIED


def test_registration_to_another_participants_account_is_refused(ps):
    loan = ps.request(100)
    refused(
        lambda: pledge_confirm(actor=ps.bank[2], loan=loan, terms_digest=loan.terms_digest, lender_account=ps.account),
        "account_not_found",
    )


def test_default_before_any_ground_is_refused(ps):
    loan = ps.registered(500)

    error = refused(lambda: pledge_default(actor=ps.bank[2], loan=loan), "pledge_default_not_due")

    assert error.details["maturity"] == "2027-11-25"
    assert error.details["ltv_percent"] == "60.00"


def test_top_up_refusals(ps):
    loan = ps.registered(500)

    def top_up(actor, quantity):
        return lambda: pledge_amendment_request(actor=actor, loan=loan, kind="top_up", quantity=quantity)

    refused(top_up(ps.bank[2], 10), "pledge_borrower_only")
    refused(top_up(ps.borrower[2], 501), "insufficient_available")
    refused(top_up(ps.borrower[2], 0), "invalid_pledge_terms")
    assert not PledgeAmendment.objects.exists()


# --- pledged units are frozen ------------------------------------------------------------------------------
@pytest.fixture
def pledged(ps):
    """1000 t, of which 1-500 pledged: 500 available."""
    ps.registered(500)
    return ps


def test_pledged_units_cannot_be_transferred(pledged):
    ps = pledged
    refused(
        lambda: transfer_create(
            actor=ps.borrower[2], source=ps.account, destination=ps.bank_account, asset=ps.cea, quantity=501
        ),
        "insufficient_available",
    )
    refused(
        lambda: transfer_create(
            actor=ps.borrower[2],
            source=ps.account,
            destination=ps.bank_account,
            asset=ps.cea,
            quantity=10,
            serials=(1, 10),
        ),
        "serials_not_available",
    )


def test_pledged_units_cannot_be_sold(pledged):
    ps = pledged
    refused(lambda: ps.ex.order(ps.borrower[2], ps.account, "sell", 8000, 501), "insufficient_available")


def test_pledged_units_cannot_be_retired(pledged):
    ps = pledged
    refused(
        lambda: retirement_create(
            actor=ps.borrower[2], account=ps.account, asset=ps.cea, quantity=501, beneficiary="b", reason="r"
        ),
        "insufficient_available",
    )


def test_pledged_units_cannot_be_cancelled_by_the_registry(pledged):
    ps = pledged
    refused(
        lambda: units_cancel(
            actor=ps.ex.market.registry_actor, account=ps.account, asset=ps.cea, quantity=501, reason="correction"
        ),
        "insufficient_available",
    )


def test_pledged_units_cannot_be_surrendered(pledged):
    """Surrender (the compliance service) posts to the surrender sink through the same ledger_post."""
    ps = pledged

    def surrender():
        with transaction.atomic():
            txn, _ = journal_open(
                kind=TransactionKind.SURRENDER, actor=ps.borrower[2], idempotency_key=None, request={"q": 501}
            )
            ledger_post(txn, [Leg(ps.cea, ps.account, system_account(AccountKind.SURRENDER), 501)])

    refused(surrender, "insufficient_available")


def test_pledged_units_cannot_be_pledged_again(pledged):
    ps = pledged
    refused(lambda: ps.request(501), "insufficient_available")
    second = ps.applied(500)  # the 500 free units may be pledged
    ps.ex.order(ps.borrower[2], ps.account, "sell", 8000, 1)  # ... until one of them is on sale

    refused(lambda: ps.register(second), "insufficient_available")


# --- arithmetic ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("principal", "rate_bp", "days", "interest"),
    [
        (1825, 1000, 1, 1),  # exactly 0.5 fen: half up
        (1824, 1000, 1, 0),  # 0.4997 fen
        (PRINCIPAL_FEN, 385, 2, 506),  # 506.30
        (PRINCIPAL_FEN, 385, 365, 92_400),  # a whole year: exactly 3.85%
        (PRINCIPAL_FEN, 385, 366, 92_653),  # actual/365 over a leap year: 366 days of interest
        (PRINCIPAL_FEN, 385, 0, 0),
    ],
)
def test_simple_interest_actual_365_half_up(principal, rate_bp, days, interest):
    start = date(2027, 6, 1)
    assert simple_interest_fen(principal, rate_bp, start, start + timedelta(days=days)) == interest


@pytest.mark.parametrize(
    ("principal", "rate_bp", "days", "interest"),
    [
        (1800, 1000, 1, 1),  # exactly 0.5 fen: half up
        (1799, 1000, 1, 0),  # 0.4997 fen
        (PRINCIPAL_FEN, 385, 2, 513),  # 24,000.00 x 3.85% x 2 / 360 = 5.1333 yuan
        (PRINCIPAL_FEN, 385, 360, 92_400),  # 360 days: exactly 3.85%
        (PRINCIPAL_FEN, 385, 365, 93_683),  # a calendar year: 365/360 of the rate, 936.8333 yuan
    ],
)
def test_simple_interest_actual_360_half_up(principal, rate_bp, days, interest):
    start = date(2027, 6, 1)
    assert simple_interest_fen(principal, rate_bp, start, start + timedelta(days=days), days_in_year=360) == interest


def test_a_loan_counts_actual_360_by_default_and_actual_365_when_agreed(ps):
    by_default, by_365 = ps.registered(500), ps.registered(100, principal_fen=2_400_000 // 5, day_count="act/365")

    with clock.pinned(at(date(2027, 2, 25))):  # 92 days later
        pledge_release(actor=ps.bank[2], loan=by_default)
        pledge_release(actor=ps.bank[2], loan=by_365)

    by_default.refresh_from_db()
    by_365.refresh_from_db()
    assert (by_default.day_count, by_365.day_count) == ("act/360", "act/365")
    # 24,000.00 x 3.85% x 92 / 360 = 236.13; 4,800.00 x 3.85% x 92 / 365 = 46.5797 -> 46.58 yuan
    assert (by_default.interest_fen, by_365.interest_fen) == (23_613, 4_658)
    refused(lambda: ps.request(10, day_count="30/360"), "invalid_pledge_terms")


def test_interest_never_runs_before_the_start():
    assert simple_interest_fen(PRINCIPAL_FEN, 385, date(2027, 6, 1), date(2027, 5, 1)) == 0


def test_a_viewer_may_not_act(ps):
    loan = ps.request(100)
    viewer = actor_for(ps.bank[0], role="viewer")
    refused(lambda: pledge_confirm(actor=viewer, loan=loan, terms_digest=loan.terms_digest), "role_forbidden")


def test_pledge_collateral_rows_point_at_pledge_holds(pledged):
    assert {c.hold.kind for c in PledgeCollateral.objects.select_related("hold")} == {HoldKind.PLEDGE}
