"""Compliance that can be cured and rules held as data: deductions (等量核减) shown on both years,
conservative determination, allocation by sector rule (the power benchmark to the tonne), carryover limits
from the trade tape, the official monthly price in penalties."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.errors import DomainError
from exchange.models import (
    AllocationDeduction,
    AllocationEntry,
    AllocationRule,
    AuditEvent,
    CarryoverRule,
    Obligation,
    OfficialPrice,
    VerifiedEmission,
)
from exchange.selectors.compliance import compliance_statement_lines
from exchange.selectors.compliance_rules import carryover_limit, penalty_month
from exchange.services.allocation import (
    allocation_final_run,
    allocation_input_record,
    allocation_rule_set,
    deduction_decide,
    preallocation_run,
)
from exchange.services.compliance import SurrenderLine, compliance_deadlines_run, surrender_create
from exchange.services.compliance_rules import carryover_rule_set, official_price_set
from exchange.services.obligations import compliance_year_create, emissions_determine, entities_cover
from tests.factories import make_trade
from tests.helpers.compliance import Cycle, make_cycle
from tests.helpers.ledger import assert_reconciled, balance, snapshot

pytestmark = pytest.mark.django_db

PLAN_2023_2024 = "2023-2024 national power allocation plan (demo figures)"


def _state() -> dict[str, object]:
    return snapshot() | {
        "obligations": sorted(Obligation.objects.values_list("pk", "status", "shortfall", "completed_at")),
        "emissions": VerifiedEmission.objects.count(),
        "entries": AllocationEntry.objects.count(),
        "deductions": sorted(AllocationDeduction.objects.values_list("pk", "quantity", "applied_entry_id")),
        "rules": AllocationRule.objects.count() + CarryoverRule.objects.count() + OfficialPrice.objects.count(),
    }


def _refused(call) -> str:
    before = _state()
    with pytest.raises(DomainError) as refused:
        call()
    assert _state() == before
    return refused.value.code


# --- deduction of an unsurrendered shortfall from the next year's allocation -----------------------------
@pytest.fixture
def short_2023() -> tuple[Cycle, object, object]:
    """2023 (deadline 2024-12-31): Short Co. verified 500 t and surrendered 463 t; Complete Co. all of 100 t."""
    cycle = make_cycle(2023)
    short = cycle.entity("Short Co.", emissions=500)
    complete = cycle.entity("Complete Co.", emissions=100)
    cycle.market.give(short.account, 463)
    cycle.market.give(complete.account, 100)
    cycle.surrender(short, (cycle.market.cea, 463))
    cycle.surrender(complete, (cycle.market.cea, 100))
    compliance_deadlines_run(today=date(2025, 1, 1))
    return cycle, short, complete


def test_a_deduction_shows_in_the_next_years_allocation_and_on_both_years(short_2023):
    cycle, short, _ = short_2023
    deduction = deduction_decide(
        actor=cycle.registry, obligation=short.obligation, reason="Not corrected after the order"
    )
    assert (deduction.quantity, deduction.target_year, deduction.applied_entry_id) == (37, 2024, None)

    year_2024 = compliance_year_create(actor=cycle.registry, year=2024)
    entities_cover(actor=cycle.registry, year=year_2024, entities=[short.participant])
    result = preallocation_run(actor=cycle.registry, year=year_2024)

    [entry] = result.entries
    # 70% of 500 t verified for 2023 is 350 t; less the 37 t deducted: 313 t.
    assert (entry.computed, entry.deducted, entry.quantity, entry.basis) == (350, 37, 313, 500)
    cea_2024 = entry.transaction.postings.first().asset
    assert balance(short.account, cea_2024)[0] == 313
    deduction.refresh_from_db()
    assert deduction.applied_entry_id == entry.pk
    assert deduction.applied_at is not None
    lines = [(line.year, line.event, line.quantity) for line in compliance_statement_lines(short.participant)]
    assert (2023, "deduction_decided", 37) in lines
    assert (2024, "allocation_deducted", 37) in lines
    assert_reconciled()


def test_the_final_allocation_also_takes_the_deduction(short_2023):
    cycle, short, _ = short_2023
    deduction_decide(actor=cycle.registry, obligation=short.obligation, quantity=30)
    year_2024 = compliance_year_create(actor=cycle.registry, year=2024)
    [obligation] = entities_cover(actor=cycle.registry, year=year_2024, entities=[short.participant], sector="steel")
    VerifiedEmission.objects.create(
        obligation=obligation, version=1, quantity=420, actor_label="test", created_at=obligation.created_at
    )
    allocation_rule_set(
        actor=cycle.registry,
        year=2024,
        sector="steel",
        stage="final",
        method="verified_emissions",
        share_bp=10000,
        effective_from=date(2025, 3, 1),
        source="2024 steel, cement, aluminium plan",
    )
    result = allocation_final_run(actor=cycle.registry, year=year_2024, today=date(2025, 6, 1))

    [entry] = result.entries
    assert (entry.kind, entry.computed, entry.deducted, entry.target, entry.quantity) == ("true_up", 420, 30, 390, 390)
    before = _state()
    again = allocation_final_run(actor=cycle.registry, year=year_2024, today=date(2025, 6, 1))
    assert [e.pk for e in again.entries] == [entry.pk]
    assert _state() == before
    assert_reconciled()


def test_deduction_refusals_change_nothing(short_2023):
    cycle, short, complete = short_2023
    assert _refused(lambda: deduction_decide(actor=cycle.registry, obligation=complete.obligation)) == (
        "obligation_not_short"
    )
    assert _refused(lambda: deduction_decide(actor=cycle.registry, obligation=short.obligation, quantity=38)) == (
        "deduction_exceeds_shortfall"
    )
    by_entity = _refused(lambda: deduction_decide(actor=short.actor, obligation=short.obligation))
    assert by_entity == "wrong_participant_kind"
    deduction_decide(actor=cycle.registry, obligation=short.obligation, quantity=37)
    assert _refused(lambda: deduction_decide(actor=cycle.registry, obligation=short.obligation, quantity=5)) == (
        "deduction_decided"
    )
    # Deciding the same deduction again changes nothing; what is deducted is no longer to surrender.
    before = _state()
    deduction_decide(actor=cycle.registry, obligation=short.obligation, quantity=37)
    assert _state() == before
    cycle.market.give(short.account, 1)
    assert _refused(lambda: cycle.surrender(short, (cycle.market.cea, 1))) == "exceeds_remaining_obligation"


# --- conservative determination --------------------------------------------------------------------------
def test_emissions_determined_conservatively_are_flagged_and_become_the_obligation():
    cycle = make_cycle(2024)  # emissions due by 2025-09-30
    silent = cycle.entity("Silent Co.")
    reported = cycle.entity("Reported Co.", emissions=80)

    def determine(obligation, basis="Capacity x hours x the sector's highest intensity", today=date(2025, 10, 1)):
        return emissions_determine(actor=cycle.registry, obligation=obligation, quantity=1200, basis=basis, today=today)

    assert _refused(lambda: determine(silent.obligation, today=date(2025, 9, 30))) == "emissions_due_not_reached"
    assert _refused(lambda: determine(reported.obligation)) == "emissions_already_verified"
    assert _refused(lambda: determine(silent.obligation, basis="  ")) == "determination_basis_missing"

    emission = determine(silent.obligation)
    assert (emission.version, emission.quantity, emission.conservative) == (1, 1200, True)
    before = _state()
    assert determine(silent.obligation).pk == emission.pk  # the same figure again changes nothing
    assert _state() == before
    event = AuditEvent.objects.get(action="compliance.emissions_determine")
    assert event.payload_json["quantity"] == "1200"
    # It is the obligation: surrenders count against it.
    cycle.market.give(silent.account, 1200)
    cycle.surrender(silent, (cycle.market.cea, 1200))
    compliance_deadlines_run(today=date(2026, 1, 1))
    silent.obligation.refresh_from_db()
    assert (silent.obligation.status, silent.obligation.assessed_emissions) == ("complete", 1200)


# --- allocation rules: the power benchmark ---------------------------------------------------------------
def test_power_benchmark_allocation_is_computed_exactly():
    cycle = make_cycle(2024)
    plant = cycle.entity("Coal Plant", sector="power")
    year = cycle.year
    rule = allocation_rule_set(
        actor=cycle.registry,
        year=2024,
        sector="power",
        stage="final",
        method="benchmark",
        benchmark_ppm=821_800,  # 0.8218 tCO2/MWh
        heat_benchmark_ppm=110_500,  # 0.1105 tCO2/GJ
        output_unit="MWh",
        factors=["cooling", "heat_supply", "load"],
        effective_from=date(2025, 1, 1),
        source=PLAN_2023_2024,
    )
    allocation_input_record(
        actor=cycle.verifier,
        obligation=plant.obligation,
        output=123_456,
        heat_output=10_000,
        factors={"cooling": 990_000, "heat_supply": 1_000_000, "load": 1_012_000},
        reference="PR-2024-001",
    )
    expected = int(
        Decimal(123_456) * Decimal("0.8218") * Decimal("0.99") * Decimal("1.012") + Decimal(10_000) * Decimal("0.1105")
    )
    assert expected == 102_751

    result = allocation_final_run(actor=cycle.registry, year=year, today=date(2025, 6, 1))

    [entry] = result.entries
    assert (entry.rule_id, entry.computed, entry.target, entry.quantity) == (rule.pk, 102_751, 102_751, 102_751)
    assert balance(plant.account, cycle.market.cea) == (102_751, 0)
    # A new version of the rule, effective later, doesn't change a run dated before it.
    allocation_rule_set(
        actor=cycle.registry,
        year=2024,
        sector="power",
        stage="final",
        method="benchmark",
        benchmark_ppm=800_000,
        heat_benchmark_ppm=110_500,
        output_unit="MWh",
        factors=["cooling", "heat_supply", "load"],
        effective_from=date(2025, 9, 1),
        source=PLAN_2023_2024 + ", corrected",
    )
    before = _state()
    allocation_final_run(actor=cycle.registry, year=year, today=date(2025, 6, 1))
    assert _state() == before
    assert_reconciled()


def test_allocation_rule_refusals_change_nothing():
    cycle = make_cycle(2024)

    def rule(**changes):
        values = {
            "actor": cycle.registry,
            "year": 2024,
            "sector": "power",
            "stage": "final",
            "method": "benchmark",
            "benchmark_ppm": 821_800,
            "effective_from": date(2025, 1, 1),
            "source": PLAN_2023_2024,
        }
        return lambda: allocation_rule_set(**(values | changes))

    assert _refused(rule(method="lottery")) == "invalid_compliance_rule"
    assert _refused(rule(benchmark_ppm=0)) == "invalid_compliance_rule"
    assert _refused(rule(source="")) == "invalid_compliance_rule"
    assert _refused(rule(share_bp=10_001)) == "invalid"
    first = rule()()
    before = _state()
    assert rule()().pk == first.pk
    assert _state() == before


# --- carryover limits from the tape ----------------------------------------------------------------------
def test_the_carryover_limit_comes_from_net_sales_on_the_tape_and_is_enforced():
    cycle = make_cycle(2024)
    entity = cycle.entity("Seller Co.", emissions=0)
    buyer = cycle.market.holder("Buyer Co.")[1]
    cea_2024 = cycle.market.cea
    # On the tape, within 2024-01-01..2025-12-31: sold 3,000 t and bought 1,000 t of CEA-2024: net sales 2,000 t.
    cycle.market.give(entity.account, 3_000)
    make_trade(
        asset=cea_2024, seller=entity.account, buyer=buyer, quantity=3_000, price_fen=9_000, day=date(2025, 3, 3)
    )
    cycle.market.give(buyer, 1_000)
    make_trade(
        asset=cea_2024, seller=buyer, buyer=entity.account, quantity=1_000, price_fen=9_000, day=date(2025, 4, 1)
    )
    # Outside the window: not counted.
    cycle.market.give(entity.account, 500)
    make_trade(
        asset=cea_2024, seller=entity.account, buyer=buyer, quantity=500, price_fen=9_000, day=date(2023, 12, 29)
    )
    rule = carryover_rule_set(
        actor=cycle.registry,
        year=2024,
        base_tonnes=10_000,
        net_sales_multiple_bp=15_000,
        sales_from=date(2024, 1, 1),
        sales_to=date(2025, 12, 31),
        first_vintage=2019,
        effective_from=date(2024, 10, 1),
        source="2023-2024 power allocation plan, carryover",
    )
    limit = carryover_limit(entity.participant.pk, rule)
    assert (limit.sold, limit.bought, limit.net_sales, limit.limit, limit.used) == (3_000, 1_000, 2_000, 13_000, 0)

    year_2025 = compliance_year_create(actor=cycle.registry, year=2025)
    [obligation] = entities_cover(actor=cycle.registry, year=year_2025, entities=[entity.participant])
    VerifiedEmission.objects.create(
        obligation=obligation, version=1, quantity=20_000, actor_label="test", created_at=obligation.created_at
    )
    cycle.market.give(entity.account, 13_001)

    def surrender(quantity: int, key: str | None = None):
        return surrender_create(
            actor=entity.actor,
            account=entity.account,
            year=2025,
            items=[SurrenderLine(cea_2024, quantity)],
            idempotency_key=key,
        )

    assert _refused(lambda: surrender(13_001)) == "carryover_limit_exceeded"
    surrender(12_000)
    assert _refused(lambda: surrender(1_001)) == "carryover_limit_exceeded"
    surrender(1_000)
    assert carryover_limit(entity.participant.pk, rule).used == 13_000
    # Not enforced (a rule only shown): the next version lets it through.
    carryover_rule_set(
        actor=cycle.registry,
        year=2024,
        base_tonnes=10_000,
        net_sales_multiple_bp=15_000,
        sales_from=date(2024, 1, 1),
        sales_to=date(2025, 12, 31),
        first_vintage=2019,
        effective_from=date(2024, 10, 2),
        source="2023-2024 power allocation plan, carryover",
        enforced=False,
    )
    surrender(1)


def test_a_late_entity_carries_nothing_over():
    cycle = make_cycle(2024)
    late = cycle.entity("Late Co.", emissions=10)
    compliance_deadlines_run(today=date(2026, 1, 1))  # 2024 assessed short by 10 t
    rule = carryover_rule_set(
        actor=cycle.registry,
        year=2024,
        base_tonnes=10_000,
        net_sales_multiple_bp=15_000,
        sales_from=date(2024, 1, 1),
        sales_to=date(2025, 12, 31),
        first_vintage=2019,
        effective_from=date(2024, 10, 1),
        source="2023-2024 power allocation plan, carryover",
    )
    limit = carryover_limit(late.participant.pk, rule)
    assert (limit.eligible, limit.limit) == (False, 0)


# --- the official monthly price --------------------------------------------------------------------------
def test_penalties_use_the_official_monthly_price_when_entered():
    assert penalty_month(date(2025, 12, 31)) == date(2025, 12, 1)
    assert penalty_month(date(2025, 12, 15)) == date(2025, 11, 1)
    cycle = make_cycle(2023)
    short = cycle.entity("Short Co.", emissions=10)
    official_price_set(
        actor=cycle.registry, market="CN-ETS", month=date(2024, 12, 1), price_fen=9_812, source="MEE notice"
    )
    price = official_price_set(
        actor=cycle.registry, market="cn-ets", month=date(2024, 12, 9), price_fen=9_813, source="MEE notice, corrected"
    )
    assert (price.month, price.version) == (date(2024, 12, 1), 2)
    assert (
        _refused(
            lambda: official_price_set(
                actor=cycle.registry, market="CN-ETS", month=date(2024, 12, 1), price_fen=0, source="x"
            )
        )
        == "invalid_compliance_rule"
    )

    compliance_deadlines_run(today=date(2025, 1, 1))

    short.obligation.refresh_from_db()
    assert (short.obligation.price_fen, short.obligation.penalty_min_fen, short.obligation.penalty_max_fen) == (
        9_813,
        10 * 9_813 * 5,
        10 * 9_813 * 10,
    )
    close = AuditEvent.objects.get(action="compliance.year_close").payload_json
    assert close["price_source"] == "official:CN-ETS:2024-12:v2"


@pytest.mark.django_db(transaction=True)
def test_concurrent_surrenders_for_two_later_years_never_exceed_the_carryover_limit():
    import threading

    from django.db import connection

    from exchange.services.obligations import emissions_record

    cycle = make_cycle(2024)
    entity = cycle.entity("Banker Co.", emissions=0)
    carryover_rule_set(
        actor=cycle.registry,
        year=2024,
        base_tonnes=100,
        net_sales_multiple_bp=15_000,
        sales_from=date(2024, 1, 1),
        sales_to=date(2025, 12, 31),
        first_vintage=2019,
        effective_from=date(2024, 10, 1),
        source="test plan",
        timely_compliance_required=False,
    )
    for year in (2025, 2026):
        compliance_year = compliance_year_create(actor=cycle.registry, year=year)
        [obligation] = entities_cover(actor=cycle.registry, year=compliance_year, entities=[entity.participant])
        emissions_record(actor=cycle.verifier, obligation=obligation, quantity=1_000)
    cycle.market.give(entity.account, 400)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def surrender(index: int) -> None:
        try:
            start.wait(timeout=10)
            cycle.surrender(entity, (cycle.market.cea, 20), year=2025 + index % 2, key=f"carry-{index}")
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=surrender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["carryover_limit_exceeded"] * 3 + ["ok"] * 5
    assert carryover_limit(entity.participant.pk, CarryoverRule.objects.get()).used == 100
    assert balance(entity.account, cycle.market.cea) == (300, 0)
    assert_reconciled()


def test_an_entity_assessed_unverified_is_determined_then_short_and_cured_late():
    cycle = make_cycle(2023)  # deadline 2024-12-31, emissions due by 2024-09-30
    silent = cycle.entity("Silent Co.")
    official_price_set(
        actor=cycle.registry, market="CN-ETS", month=date(2024, 12, 1), price_fen=9_000, source="MEE notice"
    )
    compliance_deadlines_run(today=date(2025, 1, 1))
    silent.obligation.refresh_from_db()
    assert silent.obligation.status == "unverified"

    emissions_determine(
        actor=cycle.registry, obligation=silent.obligation, quantity=300, basis="capacity x hours, highest intensity"
    )

    silent.obligation.refresh_from_db()
    assert (
        silent.obligation.status,
        silent.obligation.assessed_emissions,
        silent.obligation.shortfall,
        silent.obligation.price_fen,
        silent.obligation.penalty_min_fen,
    ) == ("short", 300, 300, 9_000, 300 * 9_000 * 5)
    cycle.market.give(silent.account, 300)
    cycle.surrender(silent, (cycle.market.cea, 300))
    silent.obligation.refresh_from_db()
    assert silent.obligation.status == "late_complete"
    assert_reconciled()
