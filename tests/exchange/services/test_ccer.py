"""The CCER project cycle of the 2023 Measures: eligibility at application, publicity counted in working days,
registration, claims and issuance, and old CCER's offset cut-off at surrender."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.conf import settings
from django.test import override_settings

from accounts.models import ParticipantKind
from core import clock
from core.errors import DomainError
from exchange.models import (
    ApprovalRequest,
    AuditEvent,
    CycleStatus,
    Issuance,
    Notice,
    NoticeKind,
    Project,
    ProjectApplication,
    PublicComment,
    ReductionClaim,
)
from exchange.services.approvals import approval_approve, approval_reject
from exchange.services.calendar import calendar_year_load
from exchange.services.ccer import (
    ccer_application_decide,
    ccer_application_submit,
    ccer_comment_add,
    ccer_publicity_open,
    ccer_reference_seed,
    methodology_set_active,
    reduction_claim_decide,
    reduction_claim_submit,
)
from exchange.services.issuance import ccer_issue, project_register
from tests.helpers.compliance import make_cycle
from tests.helpers.ledger import actor_for, assert_reconciled, balance, snapshot

pytestmark = pytest.mark.django_db

REPORT = "d" * 64


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=clock.MARKET_TZ)


@pytest.fixture
def cycle():
    with clock.pinned(_at(date(2026, 9, 24))):
        c = make_cycle(2024)
        ccer_reference_seed(actor=c.registry)
        calendar_year_load(actor=c.registry, code="CN", year=2026)
        yield c


def _owner(cycle, name="Saihanba Forestry", kind=ParticipantKind.PROJECT_OWNER):
    return cycle.market.holder(name, kind=kind)


def _apply(cycle, owner_actor, owner, **kw):
    fields = {
        "owner": owner,
        "code": "AFF-2026-001",
        "name": "Chengde afforestation",
        "project_type": "forestry",
        "methodology": "CCER-14-001-V01",
        "location": "Chengde, Hebei",
        "start_date": date(2021, 3, 1),
        "crediting_start": date(2021, 3, 1),
        "crediting_end": date(2051, 2, 28),
        "validation_body": "China Environmental United Certification Center",
        "validation_report_sha256": REPORT,
    }
    fields.update(kw)
    return ccer_application_submit(actor=owner_actor, **fields)


def _refused(call) -> str:
    with pytest.raises(DomainError) as refused:
        call()
    return refused.value.code


def test_a_covered_entitys_project_is_refused_at_application(cycle):
    entity, _, entity_actor = _owner(cycle, "Jingneng Power", kind=ParticipantKind.COMPLIANCE_ENTITY)
    before = snapshot()
    code = _refused(lambda: _apply(cycle, entity_actor, entity))
    assert code == "ccer_owner_ets_covered"
    assert snapshot() == before
    assert ProjectApplication.objects.count() == 0


@pytest.mark.parametrize(
    ("project_type", "methodology", "crediting_end", "expected"),
    [
        ("forestry", "CCER-14-001-V01", date(2041, 2, 27), "ccer_ineligible"),  # a day under 20 years
        ("forestry", "CCER-14-001-V01", date(2061, 3, 1), "ccer_ineligible"),  # a day over 40 years
        ("renewable", "CCER-01-002-V01", date(2028, 2, 28), "ccer_ineligible"),  # under 7 years
        ("renewable", "CCER-01-002-V01", date(2031, 3, 1), "ccer_ineligible"),  # a day over 10 years
        ("renewable", "CCER-14-001-V01", date(2031, 2, 28), "ccer_ineligible"),  # a forestry methodology
        ("renewable", "CCER-99-999-V01", date(2031, 2, 28), "methodology_not_found"),
    ],
)
def test_the_crediting_period_and_methodology_follow_the_rule(
    cycle, project_type, methodology, crediting_end, expected
):
    owner, _, actor = _owner(cycle)
    before = snapshot()
    code = _refused(
        lambda: _apply(
            cycle, actor, owner, project_type=project_type, methodology=methodology, crediting_end=crediting_end
        )
    )
    assert code == expected
    assert snapshot() == before


def test_the_bounds_themselves_are_accepted(cycle):
    owner, _, actor = _owner(cycle)
    ends = {
        "F-SHORT": ("forestry", "CCER-14-001-V01", date(2041, 2, 28)),  # 20 years from 1 March 2021
        "F-LONG": ("forestry", "CCER-14-002-V01", date(2061, 2, 28)),  # 40 years
        "W-SHORT": ("renewable", "CCER-01-002-V01", date(2028, 2, 29)),  # 7 years
        "W-LONG": ("renewable", "CCER-01-001-V01", date(2031, 2, 28)),  # 10 years
    }
    for code, (project_type, methodology, end) in ends.items():
        application = _apply(
            cycle, actor, owner, code=code, project_type=project_type, methodology=methodology, crediting_end=end
        )
        assert application.status == CycleStatus.APPLIED


def test_a_start_before_the_rules_earliest_and_a_withdrawn_methodology_are_refused(cycle):
    owner, _, actor = _owner(cycle)
    assert _refused(lambda: _apply(cycle, actor, owner, start_date=date(2012, 11, 7))) == "ccer_ineligible"
    from exchange.models import Methodology

    methodology_set_active(
        actor=cycle.registry, methodology=Methodology.objects.get(code="CCER-14-001-V01"), active=False
    )
    assert _refused(lambda: _apply(cycle, actor, owner)) == "methodology_not_found"


def test_the_publicity_window_counts_working_days_over_the_holidays(cycle):
    owner, _, actor = _owner(cycle)
    application = _apply(cycle, actor, owner)
    # Opened Thursday 24 September 2026: Mid-Autumn (25-27 Sep) and National Day (1-7 Oct) are not counted,
    # Saturday 10 October (a make-up working day) is. The 20th working day is Thursday 29 October.
    opened = ccer_publicity_open(actor=cycle.registry, target=application)
    assert (opened.publicity_start, opened.publicity_end) == (date(2026, 9, 24), date(2026, 10, 29))
    with clock.pinned(_at(date(2026, 10, 10))):
        ccer_comment_add(
            actor=cycle.market.holder("Green NGO", kind=ParticipantKind.INVESTOR)[2],
            target=opened,
            text="The baseline ignores natural regrowth.",
        )
    assert (
        _refused(
            lambda: ccer_application_decide(
                actor=cycle.registry, application=opened, register=True, today=date(2026, 10, 29)
            )
        )
        == "publicity_not_over"
    )
    decided = ccer_application_decide(actor=cycle.registry, application=opened, register=True, today=date(2026, 10, 30))
    assert decided.status == CycleStatus.REGISTERED
    project = Project.objects.get(code="AFF-2026-001")
    assert decided.project == project
    assert (project.start_date, project.methodology_ref.code, project.validation_report_sha256) == (
        date(2021, 3, 1),
        "CCER-14-001-V01",
        REPORT,
    )
    assert project.old_ccer is False
    [comment] = PublicComment.objects.filter(application=opened)
    assert (comment.author, comment.received_on) == ("Green NGO", date(2026, 10, 10))
    # A comment after the window is refused.
    with clock.pinned(_at(date(2026, 10, 30))):
        assert _refused(lambda: ccer_comment_add(actor=actor, target=opened, text="late")) == "ccer_cycle_step_refused"


def test_reductions_are_claimed_published_and_issued(cycle):
    owner, account, actor = _owner(cycle)
    application = ccer_publicity_open(actor=cycle.registry, target=_apply(cycle, actor, owner))
    ccer_application_decide(actor=cycle.registry, application=application, register=True, today=date(2026, 10, 30))
    project = Project.objects.get(code="AFF-2026-001")
    claim = reduction_claim_submit(
        actor=actor,
        project=project,
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=5_000,
        verification_body="CQC",
        verification_report_sha256="e" * 64,
    )
    assert claim.status == CycleStatus.APPLIED
    with clock.pinned(_at(date(2026, 11, 2))):
        claim = ccer_publicity_open(actor=cycle.registry, target=claim)
    assert claim.publicity_end == date(2026, 11, 30)
    assert (
        _refused(
            lambda: reduction_claim_decide(actor=cycle.registry, claim=claim, issue=True, today=date(2026, 11, 30))
        )
        == "publicity_not_over"
    )
    issued = reduction_claim_decide(actor=cycle.registry, claim=claim, issue=True, today=date(2026, 12, 1))
    assert issued.status == CycleStatus.ISSUED
    assert balance(account, issued.issuance.asset) == (5_000, 0)
    # The same period can't be claimed twice.
    assert (
        _refused(
            lambda: reduction_claim_submit(
                actor=actor,
                project=project,
                vintage=2025,
                monitoring_start=date(2025, 6, 1),
                monitoring_end=date(2025, 6, 30),
                quantity=1,
                verification_body="CQC",
                verification_report_sha256="e" * 64,
            )
        )
        == "duplicate"
    )
    assert ReductionClaim.objects.count() == 1
    assert_reconciled()


def _published_claim(cycle, quantity):
    owner, account, actor = _owner(cycle)
    application = ccer_publicity_open(actor=cycle.registry, target=_apply(cycle, actor, owner))
    ccer_application_decide(actor=cycle.registry, application=application, register=True, today=date(2026, 10, 30))
    claim = reduction_claim_submit(
        actor=actor,
        project=Project.objects.get(code="AFF-2026-001"),
        vintage=2025,
        monitoring_start=date(2025, 1, 1),
        monitoring_end=date(2025, 12, 31),
        quantity=quantity,
        verification_body="CQC",
        verification_report_sha256="e" * 64,
    )
    with clock.pinned(_at(date(2026, 11, 2))):
        claim = ccer_publicity_open(actor=cycle.registry, target=claim)
    return account, claim


@pytest.fixture
def threshold_1000():
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 1_000}):
        yield


def test_a_claim_above_the_threshold_is_issued_by_a_second_officers_approval(cycle, threshold_1000):
    account, claim = _published_claim(cycle, 5_000)
    first, second = cycle.registry, actor_for(cycle.market.registry)
    with clock.pinned(_at(date(2026, 12, 1))):
        filed = reduction_claim_decide(actor=first, claim=claim, issue=True)
        # Filed for four eyes: nothing issued, the claim still in publicity, waiting on its request.
        assert (filed.status, filed.issuance) == (CycleStatus.PUBLICITY, None)
        approval = ApprovalRequest.objects.get(pk=filed.approval_id)
        assert (approval.operation, approval.quantity, approval.status) == ("ccer.claim_issue", 5_000, "pending")
        assert Issuance.objects.count() == 0
        # Filed as every request is: audited (the requester's approval.waiting event) and the requester told.
        assert AuditEvent.objects.filter(action="approval.request", object_id=str(approval.pk)).count() == 1
        assert Notice.objects.filter(kind=NoticeKind.APPROVAL_WAITING, object_id=str(approval.pk)).count() == 1
        # Asking again files nothing more; one officer can't refuse it around the request.
        assert reduction_claim_decide(actor=first, claim=claim, issue=True).approval_id == approval.pk
        assert ApprovalRequest.objects.count() == 1
        before = snapshot()
        assert (
            _refused(lambda: reduction_claim_decide(actor=first, claim=claim, issue=False, reason="no"))
            == "reduction_claim_awaits_approval"
        )
        # The officer who filed it can't approve it.
        assert _refused(lambda: approval_approve(actor=first, approval=approval)) == "four_eyes_same_user"
        assert snapshot() == before
        approved = approval_approve(actor=second, approval=approval)
    claim.refresh_from_db()
    assert claim.status == CycleStatus.ISSUED
    assert claim.decided_by_id == second.user_id
    assert approved.result == f"transaction:{claim.issuance.transaction_id}"
    assert balance(account, claim.issuance.asset) == (5_000, 0)
    assert AuditEvent.objects.filter(action="ccer.claim_approval_request").count() == 1
    assert_reconciled()


def test_a_rejected_claim_request_refuses_the_claim_and_issues_nothing(cycle, threshold_1000):
    _, claim = _published_claim(cycle, 5_000)
    first, second = cycle.registry, actor_for(cycle.market.registry)
    with clock.pinned(_at(date(2026, 12, 1))):
        filed = reduction_claim_decide(actor=first, claim=claim, issue=True)
        approval_reject(
            actor=second, approval=ApprovalRequest.objects.get(pk=filed.approval_id), reason="report unsigned"
        )
    claim.refresh_from_db()
    assert (claim.status, claim.reason, claim.issuance) == (CycleStatus.REFUSED, "report unsigned", None)
    assert claim.decided_by_id == second.user_id
    assert Issuance.objects.count() == 0
    assert_reconciled()


def test_a_claim_at_the_threshold_is_issued_by_one_officer(cycle, threshold_1000):
    _, claim = _published_claim(cycle, 1_000)
    issued = reduction_claim_decide(actor=cycle.registry, claim=claim, issue=True, today=date(2026, 12, 1))
    assert (issued.status, issued.approval_id) == (CycleStatus.ISSUED, None)
    assert ApprovalRequest.objects.count() == 0


def test_a_refused_application_registers_nothing(cycle):
    owner, _, actor = _owner(cycle)
    application = ccer_publicity_open(actor=cycle.registry, target=_apply(cycle, actor, owner))
    assert (
        _refused(
            lambda: ccer_application_decide(
                actor=cycle.registry, application=application, register=False, today=date(2026, 10, 30)
            )
        )
        == "value_rule_broken"
    )
    refused = ccer_application_decide(
        actor=cycle.registry,
        application=application,
        register=False,
        reason="Additionality not shown",
        today=date(2026, 10, 30),
    )
    assert refused.status == CycleStatus.REFUSED
    assert not Project.objects.filter(code="AFF-2026-001").exists()


def test_old_ccer_is_refused_at_surrender_after_its_cut_off(cycle):
    entity = cycle.entity("Jingneng", emissions=10_000)
    owner, _, _ = _owner(cycle)
    project = project_register(
        actor=cycle.registry,
        code="OLD-HYDRO",
        name="Old hydro",
        project_type="renewable",
        methodology="CMS-002-V01",
        location="Yunnan",
        owner=owner,
        crediting_start=date(2015, 1, 1),
        crediting_end=date(2024, 12, 31),
        filed_on=date(2016, 5, 1),
    )
    assert (project.old_ccer, project.offset_cutoff) == (True, date(2024, 12, 31))
    issuance = ccer_issue(
        actor=cycle.registry,
        project=project,
        vintage=2016,
        monitoring_start=date(2015, 1, 1),
        monitoring_end=date(2016, 12, 31),
        quantity=400,
        external_reference="OLD-1",
    )
    from exchange.services.transfers import transfer_create

    owner_actor = cycle.market.holders["Saihanba Forestry"][2]
    transfer_create(
        actor=owner_actor,
        source=cycle.market.holders["Saihanba Forestry"][1],
        destination=entity.account,
        asset=issuance.asset,
        quantity=400,
    )
    with clock.pinned(_at(date(2025, 1, 2))):
        before = snapshot()
        assert _refused(lambda: cycle.surrender(entity, (issuance.asset, 100))) == "old_ccer_expired"
        assert snapshot() == before
    with clock.pinned(_at(date(2024, 12, 31))):
        cycle.surrender(entity, (issuance.asset, 100))
    assert balance(entity.account, issuance.asset) == (300, 0)
    # A project filed on or after 14 March 2017 is not old CCER.
    later = project_register(
        actor=cycle.registry,
        code="NEW-HYDRO",
        name="Hydro",
        project_type="renewable",
        methodology="CMS-002-V01",
        location="Yunnan",
        owner=owner,
        crediting_start=date(2017, 3, 14),
        crediting_end=date(2027, 3, 13),
        filed_on=date(2017, 3, 14),
    )
    assert (later.old_ccer, later.offset_cutoff) == (False, None)
    assert_reconciled()
