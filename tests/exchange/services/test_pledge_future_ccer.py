"""A pledge of future CCER (收益权质押): registered before the units exist, frozen by the issuance itself,
in the issuance's transaction, after which it is an ordinary registered pledge of the issued units."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import ParticipantKind
from core.errors import DomainError
from exchange.models import Account, AuditEvent, HoldKind, PledgeKind, PledgeStatus
from exchange.services.issuance import ccer_issue, project_register
from exchange.services.pledges import pledge_confirm, pledge_enforce
from exchange.services.pledges.amendments import pledge_amendment_request
from exchange.services.pledges.future import pledge_request_future
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, snapshot
from tests.helpers.pledges import DAY, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def forest():
    ps = make_pledges()
    owner = ps.ex.trader("Forest owner", kind=ParticipantKind.PROJECT_OWNER)
    project = project_register(
        actor=ps.ex.market.registry_actor,
        code="BJ-TZ-FOREST-9",
        name="Tongzhou forest",
        project_type="forestry",
        methodology="CCER-14-001-V01",
        location="Tongzhou",
        owner=owner[0],
        crediting_start=date(2020, 1, 1),
        crediting_end=date(2040, 1, 1),
    )
    loan = pledge_request_future(
        actor=owner[2],
        account=owner[1],
        lender=ps.bank[0],
        project=project,
        vintage=2025,
        quantity=600,
        price_fen=5000,  # 50.00 a tonne agreed: 600 t worth 30,000.00
        principal_fen=1_800_000,  # LTV 60%
        annual_rate_bp=385,
        maturity_date=date(2027, 11, 25),
        ltv_limit_bp=7000,
        margin_call_bp=8000,
        liquidation_bp=9000,
    )
    loan = pledge_confirm(actor=ps.bank[2], loan=loan, terms_digest=loan.terms_digest)
    loan = ps.register(loan)
    return ps, owner, project, loan


def _issue(ps, project, quantity: int, reference: str = "CCER-ISS-1"):
    return ccer_issue(
        actor=ps.ex.market.registry_actor,
        project=project,
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=quantity,
        external_reference=reference,
    )


def test_a_future_pledge_is_registered_with_nothing_frozen(forest):
    _ps, owner, _, loan = forest

    assert (loan.status, loan.kind, loan.asset, loan.ltv_bp) == (PledgeStatus.REGISTERED, PledgeKind.FUTURE, None, 6000)
    assert loan.registration_reference == f"CNPL-{DAY.year}-{loan.pk:06d}"
    assert loan.collateral.count() == 0
    before = snapshot()
    for call, code in [
        (
            lambda: pledge_amendment_request(actor=owner[2], loan=loan, kind="top_up", quantity=10),
            "invalid_pledge_transition",
        ),
    ]:
        with pytest.raises(DomainError) as refused:
            call()
        assert refused.value.code == code
    assert snapshot() == before


def test_the_issuance_freezes_the_pledged_quantity_in_its_transaction(forest):
    ps, owner, project, loan = forest

    issuance = _issue(ps, project, 1000)

    loan.refresh_from_db()
    assert (loan.kind, loan.asset_id, loan.quantity, loan.status) == (
        PledgeKind.UNITS,
        issuance.asset_id,
        600,
        PledgeStatus.REGISTERED,
    )
    first = issuance.first_serial
    assert balance(owner[1], issuance.asset) == (1000, 600)
    assert blocks(issuance.asset, owner[1]) == [
        (first, first + 599, owner[1].number, "held"),
        (first + 600, first + 999, owner[1].number, "available"),
    ]
    (collateral,) = loan.collateral.all()
    assert (collateral.kind, collateral.hold.kind, collateral.serial_ranges) == (
        "issued",
        HoldKind.PLEDGE,
        [[first, first + 599]],
    )
    frozen = AuditEvent.objects.get(action="pledge.future_frozen")
    issued = AuditEvent.objects.get(action="ccer.issue")
    assert frozen.created_at == issued.created_at  # one transaction: one clock reading
    assert_reconciled()


def test_an_issuance_smaller_than_the_pledge_freezes_what_it_issued(forest):
    ps, owner, project, loan = forest

    issuance = _issue(ps, project, 400)

    loan.refresh_from_db()
    assert (loan.quantity, balance(owner[1], issuance.asset)) == (400, (400, 400))
    assert_reconciled()


def test_an_issuance_that_fails_freezes_nothing(forest):
    ps, _owner, project, loan = forest
    stranger = actor_for(ps.ex.trader("Not the registry")[0])

    with pytest.raises(DomainError):
        ccer_issue(
            actor=stranger,
            project=project,
            vintage=2025,
            monitoring_start=date(2025, 1, 1),
            monitoring_end=date(2025, 12, 31),
            quantity=1000,
            external_reference="X",
        )

    loan.refresh_from_db()
    assert (loan.kind, loan.asset_id) == (PledgeKind.FUTURE, None)


def test_only_the_projects_owner_pledges_its_future_ccer(forest):
    ps, _, project, _ = forest
    _, account, actor = ps.borrower

    with pytest.raises(DomainError) as refused:
        pledge_request_future(
            actor=actor,
            account=account,
            lender=ps.bank[0],
            project=project,
            vintage=2025,
            quantity=10,
            price_fen=5000,
            principal_fen=10_000,
            annual_rate_bp=385,
            maturity_date=date(2027, 11, 25),
            ltv_limit_bp=7000,
            margin_call_bp=8000,
            liquidation_bp=9000,
        )
    assert refused.value.code == "invalid"
    assert not Account.objects.filter(pk=0).exists()


def test_enforcement_waits_for_the_units(forest):
    ps, _, _, loan = forest
    with pytest.raises(DomainError) as refused:
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=5000)
    assert refused.value.code == "invalid_pledge_transition"
