"""What the database itself says about pledges: CHECK and UNIQUE constraints, append-only records on
PostgreSQL, and the scheduled job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django_celery_beat.models import PeriodicTask

from core import clock
from exchange.models import MarginCall, PledgeCollateral, PledgeLoan, PledgeStatus, PledgeValuation
from exchange.services.pledges import pledges_value
from tests.helpers.pledges import DAY, at, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def called():
    """A registered pledge with a valuation that raised a margin call (LTV 82.31%)."""
    ps = make_pledges()
    loan = ps.registered(500)
    ps.close_at(DAY, 7200)
    ps.close_at(DAY + timedelta(days=1), 6480)
    ps.close_at(DAY + timedelta(days=2), 5832)
    with clock.pinned(at(DAY + timedelta(days=2), 15, 40)):
        pledges_value()
    return ps, loan


@pytest.fixture
def registered():
    ps = make_pledges()
    return ps, ps.registered(500)


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"margin_call_bp": 7000}, "pledge_levels_ordered"),
        ({"liquidation_bp": 7999}, "pledge_levels_ordered"),
        ({"liquidation_bp": 10001}, "pledge_levels_ordered"),
        ({"quantity": 0}, "pledge_amounts_valid"),
        ({"principal_fen": -1}, "pledge_amounts_valid"),
        ({"maturity_date": DAY}, "pledge_maturity_after_start"),
        ({"registration_reference": None}, "pledge_registered_iff_reference"),
        ({"status": PledgeStatus.REQUESTED}, "pledge_registered_iff_reference"),
        ({"lender": F("borrower")}, "pledge_lender_not_borrower"),
    ],
)
def test_the_database_refuses_an_invalid_loan(registered, change, constraint):
    _, loan = registered

    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        PledgeLoan.objects.filter(pk=loan.pk).update(**change)


def test_registration_references_are_unique(registered):
    ps, loan = registered
    other = ps.registered(10)

    with pytest.raises(IntegrityError), transaction.atomic():
        PledgeLoan.objects.filter(pk=other.pk).update(registration_reference=loan.registration_reference)


def test_one_valuation_per_pledge_per_day(called):
    _, loan = called
    valuation = PledgeValuation.objects.get(loan=loan)
    valuation.pk = None

    with pytest.raises(IntegrityError), transaction.atomic():
        valuation.save()


APPEND_ONLY = [
    "UPDATE exchange_pledgevaluation SET ltv_bp = 1",
    "DELETE FROM exchange_pledgevaluation",
    "UPDATE exchange_margincall SET cure_by = cure_by + 30",
    "DELETE FROM exchange_margincall",
    "UPDATE exchange_pledgecollateral SET serial_ranges = '[[900, 999]]'",
    "DELETE FROM exchange_pledgecollateral",
]


def test_valuations_margin_calls_and_collateral_records_are_append_only(called):
    for sql in APPEND_ONLY:
        table = sql.split()[1] if sql.startswith("UPDATE") else sql.split()[2]
        with (
            pytest.raises(IntegrityError, match=f"of {table} rows is refused"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)

    assert (PledgeValuation.objects.count(), MarginCall.objects.count(), PledgeCollateral.objects.count()) == (1, 1, 1)


def test_the_pledge_job_is_scheduled_after_the_close_and_settlement():
    task = PeriodicTask.objects.get(name="pledge-valuation")

    assert task.task == "exchange.pledges_value"
    assert task.enabled
    cron = task.crontab
    assert (cron.hour, cron.minute, cron.day_of_week, str(cron.timezone)) == ("15", "40", "1-5", "Asia/Shanghai")
    day_close = PeriodicTask.objects.get(name="day-close").crontab
    settlement = PeriodicTask.objects.get(name="settlement").crontab
    assert (int(day_close.hour), int(day_close.minute)) < (int(settlement.hour), int(settlement.minute)) < (15, 40)
