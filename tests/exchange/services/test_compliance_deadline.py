"""The deadline job: statuses, shortfalls and penalty ranges to the fen, once."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, connection, transaction

from core.errors import DomainError
from exchange.models import AuditEvent, ComplianceYear, Obligation, VerifiedEmission
from exchange.services.compliance import (
    compliance_assess,
    compliance_deadlines_run,
    emissions_record,
    penalty_window,
)
from exchange.tasks import compliance_deadlines_task
from tests.factories import DailyPriceFactory, make_trade
from tests.helpers.compliance import Cycle, make_cycle
from tests.helpers.ledger import snapshot

pytestmark = pytest.mark.django_db


def _state() -> dict[str, object]:
    return snapshot() | {
        "obligations": sorted(
            Obligation.objects.values_list(
                "pk", "status", "shortfall", "price_fen", "penalty_min_fen", "penalty_max_fen", "assessed_at"
            )
        ),
        "closed": list(ComplianceYear.objects.values_list("year", "closed_at")),
    }


@pytest.fixture
def crafted() -> tuple[Cycle, dict[str, object]]:
    """Compliance year 2023 (deadline 2024-12-31): one entity complete, two short, one never verified."""
    cycle = make_cycle(2023)
    cea = cycle.market.cea
    complete = cycle.entity("Complete Co.", emissions=1000)
    short = cycle.entity("Short Co.", emissions=500)
    nothing = cycle.entity("Nothing Co.", emissions=10)
    unverified = cycle.entity("Unverified Co.")
    ccer = cycle.ccer(complete, 50)
    cycle.market.give(complete.account, 950)
    cycle.market.give(short.account, 463)
    cycle.surrender(complete, (cea, 950), (ccer, 50))
    cycle.surrender(short, (cea, 400))
    cycle.surrender(short, (cea, 63))
    return cycle, {"complete": complete, "short": short, "nothing": nothing, "unverified": unverified}


def _trade(cycle: Cycle, quantity: int, price_fen: int, day: date) -> None:
    seller = cycle.market.holder("Trader A")[1]
    buyer = cycle.market.holder("Trader B")[1]
    cycle.market.give(seller, quantity)
    make_trade(
        asset=cycle.market.cea, seller=seller, buyer=buyer, quantity=quantity, price_fen=price_fen, day=day
    )


def _assessed(obligation: Obligation) -> tuple[object, ...]:
    obligation.refresh_from_db()
    return (
        obligation.status,
        obligation.assessed_emissions,
        obligation.assessed_surrendered,
        obligation.shortfall,
        obligation.price_fen,
        obligation.penalty_min_fen,
        obligation.penalty_max_fen,
    )


def test_the_month_before_the_deadline():
    assert penalty_window(date(2024, 12, 31)) == (date(2024, 12, 1), date(2024, 12, 31))
    assert penalty_window(date(2025, 3, 31)) == (date(2025, 3, 1), date(2025, 3, 31))
    assert penalty_window(date(2025, 3, 15)) == (date(2025, 2, 16), date(2025, 3, 15))
    assert penalty_window(date(2025, 1, 10)) == (date(2024, 12, 11), date(2025, 1, 10))


def test_statuses_shortfalls_and_penalties_from_the_months_average_price(crafted):
    cycle, e = crafted
    # In the window (December 2024): 100 t at 60.00 and 300 t at 61.01, VWAP 60.7575 -> 60.76 (half up).
    _trade(cycle, 100, 6000, date(2024, 12, 2))
    _trade(cycle, 300, 6101, date(2024, 12, 31))
    # Outside it: must not count.
    _trade(cycle, 1000, 9999, date(2024, 11, 30))
    _trade(cycle, 1000, 1, date(2025, 1, 1))

    assessed = compliance_deadlines_run(today=date(2025, 1, 1))

    assert assessed == [2023]
    assert _assessed(e["complete"].obligation) == ("complete", 1000, 1000, 0, 6076, 0, 0)
    # 37 t short: 37 x 60.76 x 5 = 11,240.60 CNY; x 10 = 22,481.20 CNY.
    assert _assessed(e["short"].obligation) == ("short", 500, 463, 37, 6076, 1_124_060, 2_248_120)
    assert _assessed(e["nothing"].obligation) == ("short", 10, 0, 10, 6076, 303_800, 607_600)
    assert _assessed(e["unverified"].obligation) == ("unverified", None, 0, None, None, None, None)
    year = ComplianceYear.objects.get(pk=2023)
    assert year.closed_at is not None
    events = AuditEvent.objects.filter(action="compliance.assess")
    assert events.count() == 4
    short_event = events.get(object_id=str(e["short"].obligation.pk)).payload_json
    assert {
        k: short_event[k] for k in ("status", "shortfall", "price_fen", "penalty_min_fen", "penalty_max_fen")
    } == {
        "status": "short",
        "shortfall": "37",
        "price_fen": "6076",
        "penalty_min_fen": "1124060",
        "penalty_max_fen": "2248120",
    }
    close = AuditEvent.objects.get(action="compliance.year_close").payload_json
    assert (close["price_window"], close["counts"], close["shortfall"]) == (
        ["2024-12-01", "2024-12-31"],
        {"open": "0", "complete": "1", "short": "2", "unverified": "1"},
        "47",
    )


def test_running_the_job_twice_changes_nothing_more(crafted):
    cycle, _ = crafted
    _trade(cycle, 10, 5000, date(2024, 12, 20))
    compliance_deadlines_run(today=date(2025, 1, 1))
    before = _state()

    assert compliance_deadlines_run(today=date(2025, 1, 2)) == []
    compliance_assess(actor=cycle.registry, year=ComplianceYear.objects.get(pk=2023), today=date(2025, 1, 3))
    assert compliance_deadlines_task.run() == []

    assert _state() == before


def test_without_trades_in_the_month_the_previous_close_prices_the_penalty(crafted):
    cycle, e = crafted
    for day, close in ((date(2024, 11, 28), 5500), (date(2024, 11, 29), 5612), (date(2024, 12, 5), 9000)):
        DailyPriceFactory(asset=cycle.market.cea, day=day, close_fen=close)

    compliance_deadlines_run(today=date(2025, 1, 1))

    assert _assessed(e["short"].obligation) == ("short", 500, 463, 37, 5612, 1_038_220, 2_076_440)


def test_without_any_price_the_penalty_is_left_open(crafted):
    _, e = crafted

    compliance_deadlines_run(today=date(2025, 1, 1))

    assert _assessed(e["short"].obligation) == ("short", 500, 463, 37, None, None, None)


def test_nothing_is_assessed_before_the_deadline_has_passed(crafted):
    cycle, _ = crafted
    before = _state()

    assert compliance_deadlines_run(today=date(2024, 12, 31)) == []
    with pytest.raises(DomainError) as refused:
        compliance_assess(actor=cycle.registry, year=cycle.year, today=date(2024, 12, 31))

    assert refused.value.code == "deadline_not_reached"
    assert _state() == before


def test_the_scheduled_task_assesses_past_deadlines(crafted):
    compliance_deadlines_task.run()  # today is after 2024-12-31

    assert ComplianceYear.objects.get(pk=2023).closed_at is not None
    assert set(Obligation.objects.values_list("status", flat=True)) == {"complete", "short", "unverified"}


def test_a_closed_year_takes_no_more_emissions_and_no_surrenders_but_a_short_obligations(crafted):
    """After the assessment only a short obligation takes surrenders (late completion, Decree 775 art. 24):
    a complete or unverified one refuses them, and no obligation takes emission versions."""
    cycle, e = crafted
    cycle.market.give(e["short"].account, 37)
    cycle.market.give(e["complete"].account, 5)
    cycle.market.give(e["unverified"].account, 5)
    compliance_deadlines_run(today=date(2025, 1, 1))
    before = _state()

    with pytest.raises(DomainError) as complete:
        cycle.surrender(e["complete"], (cycle.market.cea, 5))
    with pytest.raises(DomainError) as unverified:
        cycle.surrender(e["unverified"], (cycle.market.cea, 5))
    with pytest.raises(DomainError) as correction:
        emissions_record(actor=cycle.verifier, obligation=e["short"].obligation, quantity=463)

    assert (complete.value.code, unverified.value.code, correction.value.code) == (
        "compliance_year_closed",
        "compliance_year_closed",
        "compliance_year_closed",
    )
    assert _state() == before


def test_a_late_surrender_completes_a_short_obligation_as_late_complete(crafted):
    cycle, e = crafted
    cycle.market.give(e["short"].account, 40)
    compliance_deadlines_run(today=date(2025, 1, 1))
    assessed = _assessed(e["short"].obligation)

    with pytest.raises(DomainError) as too_much:
        cycle.surrender(e["short"], (cycle.market.cea, 38))
    assert too_much.value.code == "exceeds_remaining_obligation"
    cycle.surrender(e["short"], (cycle.market.cea, 30))
    assert _assessed(e["short"].obligation) == assessed  # still short by the assessed 37 t, 7 t to go
    cycle.surrender(e["short"], (cycle.market.cea, 7), key="late-2")

    e["short"].obligation.refresh_from_db()
    assert e["short"].obligation.status == "late_complete"
    assert e["short"].obligation.completed_at is not None
    # The assessment stays as it was: the shortfall and the penalty range at the deadline.
    assert _assessed(e["short"].obligation)[1:] == assessed[1:]
    event = AuditEvent.objects.filter(action="compliance.surrender").order_by("-seq").first().payload_json
    assert (event["status_before"], event["status"]) == ("short", "late_complete")
    before = _state()
    with pytest.raises(DomainError) as after:
        cycle.surrender(e["short"], (cycle.market.cea, 3))
    assert after.value.code == "compliance_year_closed"
    assert _state() == before
    # Replaying the completing surrender's key changes nothing.
    cycle.surrender(e["short"], (cycle.market.cea, 7), key="late-2")
    assert _state() == before


def test_postgres_refuses_changing_assessed_obligations_closed_years_and_emission_versions(crafted):
    _, e = crafted
    table = Obligation._meta.db_table

    def refused(statement: str, params: list[object]) -> None:
        with (
            pytest.raises(IntegrityError, match="greenledger"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, params)

    # An open obligation keeps its entity; an emission version is never rewritten.
    refused(
        f"UPDATE {table} SET entity_id = %s WHERE id = %s",
        [e["nothing"].participant.pk, e["short"].obligation.pk],
    )
    refused(
        f"DELETE FROM {VerifiedEmission._meta.db_table} WHERE obligation_id = %s", [e["short"].obligation.pk]
    )
    compliance_deadlines_run(today=date(2025, 1, 1))
    # Once assessed, nothing changes, not even to the same value; a closed year neither.
    refused(f"UPDATE {table} SET assessed_at = assessed_at WHERE id = %s", [e["short"].obligation.pk])
    refused(f"DELETE FROM {table} WHERE id = %s", [e["complete"].obligation.pk])
    refused(f"UPDATE {ComplianceYear._meta.db_table} SET deadline = '2030-01-01' WHERE year = 2023", [])
    refused(
        f"INSERT INTO {VerifiedEmission._meta.db_table} (obligation_id, version, quantity, report_reference, "
        "note, actor_label, created_at) VALUES (%s, 9, 1, '', '', 'x', now())",
        [e["short"].obligation.pk],
    )

    assert _assessed(e["short"].obligation)[:4] == ("short", 500, 463, 37)
