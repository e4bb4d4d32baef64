"""The notice outbox: a notice is written with its cause, sent by a job with retries, and marked delivered
only when the mail server accepted it; its state is in the admin and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction
from django.test import override_settings

from core import clock
from exchange.models import MarginCall, Notice, NoticeKind, NoticeStatus
from exchange.services.notices import MAX_ATTEMPTS, backoff, notices_send
from exchange.services.pledges import pledge_default, pledge_enforce, pledge_enforcement_agree
from exchange.tasks import notices_send_task, pledges_value_task
from tests.helpers.api import client_for
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]

THU, FRI = DAY + timedelta(days=1), DAY + timedelta(days=2)
FAILING = "tests.exchange.services.test_notices.RefusingBackend"


class RefusingBackend(EmailBackend):
    """A mail server that is down."""

    def send_messages(self, messages):
        raise ConnectionRefusedError(111, "Connection refused")


def closes(ps):
    """Falling closes within the band: LTV 82.31% on Friday, over the 80% call level."""
    ps.close_at(DAY, 7200)
    ps.close_at(THU, 6480)
    ps.close_at(FRI, 5832)


@pytest.fixture
def breached(django_capture_on_commit_callbacks):
    """A pledge whose valuation on Friday raises a margin call, with the mail server down."""
    ps = make_pledges()
    loan = ps.registered(500)
    closes(ps)
    with (
        override_settings(EMAIL_BACKEND=FAILING),
        clock.pinned(at(FRI, 15, 40)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        pledges_value_task()
    return ps, loan


def test_a_margin_call_notice_that_fails_to_send_stays_pending_and_is_not_recorded_as_sent(breached):
    ps, _ = breached

    call = MarginCall.objects.get()
    assert call.notified == []
    notices = list(Notice.objects.order_by("address"))
    assert [(n.kind, n.object_type, n.object_id) for n in notices] == [
        (NoticeKind.MARGIN_CALL, "margin_call", str(call.pk))
    ] * 2
    assert sorted(n.address for n in notices) == sorted([ps.borrower[0].email, ps.bank[0].email])
    assert {(n.status, n.attempts, n.delivered_at) for n in notices} == {(NoticeStatus.PENDING, 1, None)}
    assert all("ConnectionRefusedError" in n.last_error for n in notices)
    assert {n.next_attempt_at for n in notices} == {at(FRI, 15, 40) + backoff(1)}
    assert mail.outbox == []


def test_the_job_retries_after_the_backoff_and_marks_delivered_once_sent(breached):
    ps, _ = breached

    with clock.pinned(at(FRI, 15, 40) + timedelta(seconds=30)):
        assert notices_send_task() == 0  # not due yet
    assert mail.outbox == []
    with clock.pinned(at(FRI, 15, 42)):
        assert notices_send_task() == 2
        assert notices_send_task() == 0  # sent once

    assert sorted(m.to[0] for m in mail.outbox) == sorted([ps.borrower[0].email, ps.bank[0].email])
    assert all("Margin call on pledge" in m.subject for m in mail.outbox)
    assert {(n.status, n.attempts, n.last_error, n.delivered_at) for n in Notice.objects.all()} == {
        (NoticeStatus.DELIVERED, 2, "", at(FRI, 15, 42))
    }


def test_a_notice_that_never_goes_through_is_failed_after_its_attempts_and_stays_visible(breached):
    when = at(FRI, 15, 40)
    with override_settings(EMAIL_BACKEND=FAILING):
        for attempt in range(2, MAX_ATTEMPTS + 2):
            when += backoff(attempt - 1)
            with clock.pinned(when):
                notices_send()

    assert {(n.status, n.attempts) for n in Notice.objects.all()} == {(NoticeStatus.FAILED, MAX_ATTEMPTS)}
    assert mail.outbox == []
    assert [backoff(n) for n in (1, 2, 3, 10, 20)] == [timedelta(minutes=m) for m in (1, 2, 4, 360, 360)]


def test_a_cause_rolled_back_leaves_no_notice():
    ps = make_pledges()
    loan = ps.registered(500)
    closes(ps)

    def job_then_failure() -> None:
        with transaction.atomic():
            pledges_value_task()
            raise RuntimeError("the job's transaction is rolled back")

    with clock.pinned(at(FRI, 15, 40)), pytest.raises(RuntimeError):
        job_then_failure()

    assert (Notice.objects.count(), MarginCall.objects.filter(loan=loan).count()) == (0, 0)


def test_default_and_enforcement_write_their_notices(django_capture_on_commit_callbacks):
    ps = make_pledges()
    loan = ps.registered(500, maturity_date=DAY + timedelta(days=1))

    with clock.pinned(at(FRI)), django_capture_on_commit_callbacks(execute=True):
        pledge_default(actor=ps.bank[2], loan=loan)
        pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=8000)
        pledge_enforcement_agree(actor=ps.borrower[2], loan=loan)

    kinds = sorted(Notice.objects.values_list("kind", "status"))
    delivered = NoticeStatus.DELIVERED
    # default; the lender's proposal; the enforcement: one notice to each party for each
    assert kinds == sorted([(NoticeKind.DEFAULT, delivered)] * 2 + [(NoticeKind.ENFORCEMENT, delivered)] * 4)
    assert len(mail.outbox) == 6


def test_the_api_lists_only_the_callers_own_notices_with_their_state(breached):
    ps, _ = breached

    response = client_for(ps.borrower[2]).get("/api/v1/notices")

    assert response.status_code == 200
    [notice] = response.json()["results"]
    assert (notice["address"], notice["kind"], notice["status"], notice["attempts"]) == (
        ps.borrower[0].email,
        "margin_call",
        "pending",
        1,
    )
    assert "Connection refused" in notice["last_error"]
    filtered = client_for(ps.bank[2]).get("/api/v1/notices?status=delivered")
    assert (filtered.status_code, filtered.json()["results"]) == (200, [])


def test_the_admin_shows_notices_read_only(admin_client, breached):
    listing = admin_client.get("/admin/exchange/notice/")
    notice = Notice.objects.first()
    page = admin_client.get(f"/admin/exchange/notice/{notice.pk}/change/")

    assert listing.status_code == page.status_code == 200
    assert b"Connection refused" in page.content
    assert admin_client.get("/admin/exchange/notice/add/").status_code == 403
