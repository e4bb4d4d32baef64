"""The daily valuation: one per pledge per day, one margin call per breach (emailed once), maturity flags."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail

from core import clock
from core.errors import DomainError
from exchange.models import AuditEvent, MarginCall, PledgeLoan, PledgeStatus, PledgeValuation, PriceSource
from exchange.services.pledges import pledge_default, pledges_value
from exchange.tasks import pledges_value_task
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]

THU, FRI, MON, TUE = (DAY + timedelta(days=n) for n in (1, 2, 5, 6))


@pytest.fixture
def ps():
    return make_pledges()


def run_job(day, capture):
    """The scheduled task at 15:40 on ``day``, with on-commit callbacks (the emails) run."""
    with clock.pinned(at(day, 15, 40)), capture(execute=True):
        return pledges_value_task()


def test_a_price_fall_raises_one_margin_call_however_many_runs_see_it(ps, django_capture_on_commit_callbacks):
    loan = ps.registered(500)  # LTV 60% at 80.00
    ps.close_at(DAY, 7200)
    ps.close_at(THU, 6480)
    ps.close_at(FRI, 5832)

    assert run_job(DAY, django_capture_on_commit_callbacks) == 1  # 36,000.00: LTV 66.67%
    assert run_job(DAY, django_capture_on_commit_callbacks) == 0  # the same day again: nothing
    assert run_job(THU, django_capture_on_commit_callbacks) == 1  # 32,400.00: LTV 74.08%
    assert MarginCall.objects.count() == 0
    assert mail.outbox == []

    assert run_job(FRI, django_capture_on_commit_callbacks) == 1  # 29,160.00: LTV 82.31% >= 80%
    assert run_job(FRI, django_capture_on_commit_callbacks) == 0
    assert run_job(MON, django_capture_on_commit_callbacks) == 1  # no trade: Friday's close again, still breached
    assert run_job(TUE, django_capture_on_commit_callbacks) == 1

    assert list(
        PledgeValuation.objects.filter(loan=loan).order_by("day").values_list("day", "price_fen", "ltv_bp")
    ) == [(DAY, 7200, 6667), (THU, 6480, 7408), (FRI, 5832, 8231), (MON, 5832, 8231), (TUE, 5832, 8231)]
    (call,) = MarginCall.objects.all()
    assert (call.raised_on, call.ltv_bp, call.level_bp, call.cure_by) == (FRI, 8231, 8000, MON)
    assert AuditEvent.objects.filter(action="pledge.margin_call").count() == 1
    loan.refresh_from_db()
    assert (loan.margin_call_id, loan.ltv_bp, loan.valued_on) == (call.pk, 8231, TUE)

    # one notice to each party, sent once
    assert sorted(m.to[0] for m in mail.outbox) == sorted([ps.borrower[0].email, ps.bank[0].email])
    assert all("Margin call on pledge CNPL-2026-" in m.subject and "82.31%" in m.subject for m in mail.outbox)
    assert "by 2026-11-30" in mail.outbox[0].body


def test_a_met_call_closes_and_a_new_breach_raises_a_new_call(ps, django_capture_on_commit_callbacks):
    loan = ps.registered(500)
    ps.close_at(DAY, 7200)
    ps.close_at(THU, 6480)
    ps.close_at(FRI, 5832)
    run_job(FRI, django_capture_on_commit_callbacks)
    first = MarginCall.objects.get()

    with clock.pinned(at(MON)):
        ps.top_up(loan, 100)  # 600 x 58.32 = 34,992.00: LTV 68.59%
    loan.refresh_from_db()
    assert (loan.ltv_bp, loan.margin_call_id) == (6859, None)
    assert AuditEvent.objects.filter(action="pledge.margin_call_met").count() == 1

    ps.close_at(TUE, 5249)  # 600 x 52.49 = 31,494.00: LTV 76.21%, healthy
    run_job(TUE, django_capture_on_commit_callbacks)
    ps.close_at(TUE + timedelta(days=1), 4725)  # 600 x 47.25 = 28,350.00: LTV 84.66%
    run_job(TUE + timedelta(days=1), django_capture_on_commit_callbacks)

    assert MarginCall.objects.count() == 2
    second = MarginCall.objects.exclude(pk=first.pk).get()
    assert (second.raised_on, second.ltv_bp) == (TUE + timedelta(days=1), 8466)
    assert len(mail.outbox) == 4  # two parties x two breaches


def test_a_missed_margin_call_lets_the_lender_declare_default_after_its_cure_date(
    ps, django_capture_on_commit_callbacks
):
    loan = ps.registered(500)
    ps.close_at(DAY, 7200)
    ps.close_at(THU, 6480)
    ps.close_at(FRI, 5832)
    run_job(FRI, django_capture_on_commit_callbacks)  # call raised Friday, cure by Monday

    with clock.pinned(at(MON)), pytest.raises(DomainError) as early:
        pledge_default(actor=ps.bank[2], loan=loan)
    assert early.value.code == "pledge_default_not_due"
    assert early.value.details["margin_call_cure_by"] == "2026-11-30"

    with clock.pinned(at(TUE)):
        pledge_default(actor=ps.bank[2], loan=loan)

    loan.refresh_from_db()
    assert (loan.status, loan.default_reason) == (PledgeStatus.DEFAULTED, "margin_call_missed")


def test_loans_past_maturity_are_flagged_once_and_notified(ps, django_capture_on_commit_callbacks):
    loan = ps.registered(500, maturity_date=THU)

    run_job(THU, django_capture_on_commit_callbacks)
    loan.refresh_from_db()
    assert loan.past_maturity_on is None
    run_job(FRI, django_capture_on_commit_callbacks)
    run_job(MON, django_capture_on_commit_callbacks)

    loan.refresh_from_db()
    assert loan.past_maturity_on == FRI
    assert AuditEvent.objects.filter(action="pledge.past_maturity").count() == 1
    subject = f"Pledge {loan.registration_reference} is past its maturity (2026-11-26)"
    assert [m.subject for m in mail.outbox] == [subject, subject]


def test_only_registered_pledges_are_valued_at_the_listing_reference_before_any_close(
    ps, django_capture_on_commit_callbacks
):
    registered = ps.registered(100)
    ps.request(100)  # requested: not valued
    with clock.pinned(at(DAY)):
        ps.defaulted(100)  # defaulted: not valued

    assert run_job(DAY, django_capture_on_commit_callbacks) == 1

    (valuation,) = PledgeValuation.objects.all()
    assert (valuation.loan_id, valuation.price_fen, valuation.price_source, valuation.price_day) == (
        registered.pk,
        8000,
        PriceSource.REFERENCE,
        None,
    )
    assert valuation.value_fen == 800_000


def test_a_run_with_nothing_to_value_changes_nothing(ps, django_capture_on_commit_callbacks):
    ps.request(100)
    events = AuditEvent.objects.count()

    assert run_job(DAY, django_capture_on_commit_callbacks) == 0

    assert AuditEvent.objects.count() == events
    assert not PledgeValuation.objects.exists()


def test_the_valuation_run_is_audited_with_each_ltv(ps):
    loan = ps.registered(500)

    with clock.pinned(at(DAY, 15, 40)):
        pledges_value()

    event = AuditEvent.objects.get(action="pledge.valuation_run")
    assert json.loads(event.payload)["valued"] == [[str(loan.pk), "6000"]]  # canonical JSON: numbers as strings
    assert PledgeLoan.objects.get(pk=loan.pk).valued_on == DAY


def test_the_margin_call_notice_is_written_in_chinese_where_chinese_is_the_language(
    ps, django_capture_on_commit_callbacks
):
    from django.test import override_settings
    from django.utils import translation

    ps.registered(500)  # LTV 60% at 80.00
    ps.close_at(DAY, 7200)
    ps.close_at(THU, 6480)
    ps.close_at(FRI, 5832)

    # A notice is a record, written in the registry's language (Chinese outside the tests), whatever the
    # language active when the job runs (docs/i18n.md).
    with override_settings(LANGUAGE_CODE="zh-hans"), translation.override("en"):
        assert run_job(FRI, django_capture_on_commit_callbacks) == 1  # 29,160.00: LTV 82.31% >= 80%

    assert {m.subject.split("：")[0] for m in mail.outbox} == {
        f"质押 {PledgeLoan.objects.get().registration_reference} 追加保证金通知"
    }
    body = mail.outbox[0].body
    assert "质押率 82.31% 已达到追保线 80.00%" in body
    assert "请在 2026-11-30 前补足质押物或还款" in body
    assert "Margin call" not in mail.outbox[0].subject
