"""The compliance cycle: emissions, surrender rules at their boundaries, allocation and true-up."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import ParticipantKind
from core.errors import DomainError
from exchange.models import (
    AccountKind,
    AllocationEntry,
    AuditEvent,
    ComplianceYear,
    HoldKind,
    Surrender,
    SurrenderItem,
    VerifiedEmission,
)
from exchange.selectors.compliance import figures_of
from exchange.services.compliance import (
    allocation_true_up,
    compliance_year_create,
    compliance_year_update,
    emissions_record,
    entities_cover,
    preallocation_quantity,
    preallocation_run,
)
from exchange.services.issuance import cea_vintage_create
from exchange.services.ledger import hold_place
from exchange.services.transfers import transfer_create
from tests.factories import CashAssetFactory, ParticipantFactory
from tests.helpers.compliance import Cycle, make_cycle
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, snapshot, system

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle() -> Cycle:
    return make_cycle(2024)


def _state() -> dict[str, object]:
    return snapshot() | {
        "surrenders": Surrender.objects.count(),
        "items": SurrenderItem.objects.count(),
        "entries": AllocationEntry.objects.count(),
        "emissions": VerifiedEmission.objects.count(),
    }


def _refused(call) -> str:
    with pytest.raises(DomainError) as refused:
        call()
    return refused.value.code


def _pledge(account, asset, quantity):
    from django.db import transaction

    with transaction.atomic():
        return hold_place(
            account=account, asset=asset, quantity=quantity, kind=HoldKind.PLEDGE, reference="pledge:1"
        )


# --- years and covered entities --------------------------------------------------------------------------
def test_a_year_has_default_deadline_and_shares_and_its_allowance_vintage(cycle):
    assert (cycle.year.deadline, cycle.year.preallocation_bp, cycle.year.ccer_limit_bp) == (
        date(2025, 12, 31),
        7000,
        500,
    )

    later = compliance_year_create(
        actor=cycle.registry, year=2026, deadline=date(2027, 6, 30), ccer_limit_bp=300
    )

    assert (later.deadline, later.ccer_limit_bp) == (date(2027, 6, 30), 300)
    assert later.pk == 2026
    from exchange.models import Asset

    assert Asset.objects.filter(code="CEA-2026", vintage=2026).exists()
    assert _refused(lambda: compliance_year_create(actor=cycle.registry, year=2026)) == "duplicate"
    assert _refused(
        lambda: compliance_year_create(actor=cycle.registry, year=2027, deadline=date(2027, 12, 31))
    ) == "invalid_deadline"
    entity = cycle.entity("Jingneng")
    assert _refused(lambda: compliance_year_create(actor=entity.actor, year=2028)) == "wrong_participant_kind"


def test_the_deadline_is_configurable_while_the_year_is_open(cycle):
    updated = compliance_year_update(actor=cycle.registry, year=cycle.year, deadline=date(2025, 9, 30))

    assert ComplianceYear.objects.get(pk=2024).deadline == date(2025, 9, 30) == updated.deadline
    assert AuditEvent.objects.filter(action="compliance.year_update").count() == 1
    before = _state()
    compliance_year_update(actor=cycle.registry, year=cycle.year, deadline=date(2025, 9, 30))
    assert _state() == before


def test_covering_an_entity_twice_makes_one_obligation_and_only_entities_are_covered(cycle):
    entity = cycle.entity("Jingneng")
    before = _state()

    again = entities_cover(actor=cycle.registry, year=cycle.year, entities=[entity.participant])

    assert [o.pk for o in again] == [entity.obligation.pk]
    assert again[0].account == entity.account
    assert _state() == before
    bank = ParticipantFactory(kind=ParticipantKind.FINANCIAL_INSTITUTION)
    assert _refused(lambda: entities_cover(actor=cycle.registry, year=cycle.year, entities=[bank])) == (
        "not_a_compliance_entity"
    )
    assert _state() == before


# --- verified emissions ----------------------------------------------------------------------------------
def test_a_correction_is_a_new_version_and_the_old_is_kept(cycle):
    entity = cycle.entity("Jingneng")

    first = emissions_record(
        actor=cycle.verifier, obligation=entity.obligation, quantity=1000, report_reference="VR-7"
    )
    same = emissions_record(
        actor=cycle.verifier, obligation=entity.obligation, quantity=1000, report_reference="VR-7"
    )
    emissions_record(
        actor=cycle.registry,
        obligation=entity.obligation,
        quantity=980,
        report_reference="VR-7a",
        note="meter fixed",
    )

    assert same.pk == first.pk
    assert list(
        entity.obligation.emissions.order_by("version").values_list("version", "quantity", "note")
    ) == [
        (1, 1000, ""),
        (2, 980, "meter fixed"),
    ]
    assert figures_of([entity.obligation.pk])[entity.obligation.pk].verified == 980
    assert AuditEvent.objects.filter(action="compliance.emissions_record").count() == 2


def test_an_entity_can_not_record_its_own_emissions(cycle):
    entity = cycle.entity("Jingneng")
    before = _state()

    code = _refused(lambda: emissions_record(actor=entity.actor, obligation=entity.obligation, quantity=1))

    assert code == "wrong_participant_kind"
    assert _state() == before


# --- surrender -------------------------------------------------------------------------------------------
def test_a_surrender_moves_every_item_to_the_surrender_sink_in_one_transaction(cycle):
    entity = cycle.entity("Jingneng", emissions=1000)
    ccer = cycle.ccer(entity, 80)
    cycle.market.give(entity.account, 1000)

    surrender = cycle.surrender(entity, (cycle.market.cea, 900), (ccer, 50))

    sink = system(AccountKind.SURRENDER)
    assert (surrender.quantity, surrender.ccer_quantity) == (950, 50)
    assert balance(entity.account, cycle.market.cea) == (100, 0)
    assert balance(entity.account, ccer) == (30, 0)
    assert balance(sink, cycle.market.cea) == (900, 0)
    assert balance(sink, ccer) == (50, 0)
    assert blocks(cycle.market.cea) == [
        (1, 900, sink.number, "surrendered"),
        (901, 1000, entity.account.number, "available"),
    ]
    assert blocks(ccer) == [(1, 50, sink.number, "surrendered"), (51, 80, entity.account.number, "available")]
    txn = surrender.transaction
    assert (txn.kind, txn.postings.count()) == ("surrender", 4)
    assert sorted(surrender.items.values_list("asset__code", "quantity")) == [
        ("CCER-FOREST-1-2023", 50),
        ("CEA-2024", 900),
    ]
    figures = figures_of([entity.obligation.pk])[entity.obligation.pk]
    assert (figures.surrendered, figures.ccer_surrendered) == (950, 50)
    assert AuditEvent.objects.filter(action="compliance.surrender", object_id=str(surrender.pk)).count() == 1
    assert_reconciled()


@pytest.mark.parametrize(
    ("emissions", "limit"),
    [
        (1000, 50),  # exactly 5%
        (1019, 50),  # 50.95 rounds down
        (1020, 51),
    ],
)
def test_ccer_up_to_floor_of_five_percent_is_accepted_and_one_tonne_more_refused(cycle, emissions, limit):
    entity = cycle.entity("Jingneng", emissions=emissions)
    ccer = cycle.ccer(entity, 100)
    before = _state()

    code = _refused(lambda: cycle.surrender(entity, (ccer, limit + 1)))

    assert code == "ccer_limit_exceeded"
    assert _state() == before
    cycle.surrender(entity, (ccer, limit))
    assert balance(entity.account, ccer) == (100 - limit, 0)


def test_the_ccer_limit_counts_the_years_earlier_surrenders(cycle):
    entity = cycle.entity("Jingneng", emissions=1000)
    ccer = cycle.ccer(entity, 100)
    cycle.market.give(entity.account, 100)
    cycle.surrender(entity, (ccer, 30), (cycle.market.cea, 10))
    before = _state()

    code = _refused(lambda: cycle.surrender(entity, (ccer, 21)))

    assert code == "ccer_limit_exceeded"
    assert _state() == before
    cycle.surrender(entity, (ccer, 20))
    assert balance(entity.account, ccer) == (50, 0)
    assert _refused(lambda: cycle.surrender(entity, (ccer, 1))) == "ccer_limit_exceeded"


def test_allowances_of_the_year_or_earlier_are_accepted_and_a_later_vintage_refused(cycle):
    entity = cycle.entity("Jingneng", emissions=1000)
    cea_2023 = cea_vintage_create(actor=cycle.registry, vintage=2023)
    cea_2025 = cea_vintage_create(actor=cycle.registry, vintage=2025)
    for asset in (cea_2023, cycle.market.cea, cea_2025):
        cycle.market.give(entity.account, 100, asset=asset)
    before = _state()

    code = _refused(lambda: cycle.surrender(entity, (cycle.market.cea, 10), (cea_2025, 1)))

    assert code == "vintage_after_compliance_year"
    assert _state() == before
    cycle.surrender(entity, (cycle.market.cea, 100), (cea_2023, 100))
    assert balance(entity.account, cycle.market.cea) == (0, 0)
    assert balance(entity.account, cea_2023) == (0, 0)
    assert balance(entity.account, cea_2025) == (100, 0)


def test_ccer_from_a_project_covered_by_the_ets_is_refused(cycle):
    entity = cycle.entity("Jingneng", emissions=1000)
    covered = cycle.ccer(entity, 100, ets_covered=True, code="PLANT-CCS")
    before = _state()

    code = _refused(lambda: cycle.surrender(entity, (covered, 10)))

    assert code == "ccer_ets_covered"
    assert _state() == before


def test_pledged_units_are_refused_with_their_own_code(cycle):
    entity = cycle.entity("Jingneng", emissions=1000)
    cycle.market.give(entity.account, 100)
    _pledge(entity.account, cycle.market.cea, 30)
    before = _state()

    held = _refused(lambda: cycle.surrender(entity, (cycle.market.cea, 71)))
    short = _refused(lambda: cycle.surrender(entity, (cycle.market.cea, 101)))

    assert (held, short) == ("units_held", "insufficient_available")
    assert _state() == before
    cycle.surrender(entity, (cycle.market.cea, 70))
    sink = system(AccountKind.SURRENDER)
    assert balance(entity.account, cycle.market.cea) == (30, 30)
    assert blocks(cycle.market.cea) == [
        (1, 30, entity.account.number, "held"),
        (31, 100, sink.number, "surrendered"),
    ]


def test_more_than_the_remaining_obligation_is_refused(cycle):
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.market.give(entity.account, 200)
    cycle.surrender(entity, (cycle.market.cea, 60))
    before = _state()

    code = _refused(lambda: cycle.surrender(entity, (cycle.market.cea, 41)))

    assert code == "exceeds_remaining_obligation"
    assert _state() == before
    cycle.surrender(entity, (cycle.market.cea, 40))
    assert _refused(lambda: cycle.surrender(entity, (cycle.market.cea, 1))) == "exceeds_remaining_obligation"
    assert balance(entity.account, cycle.market.cea) == (100, 0)


def test_the_obligation_is_the_latest_verified_version(cycle):
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.market.give(entity.account, 200)
    emissions_record(actor=cycle.verifier, obligation=entity.obligation, quantity=120, note="correction")

    cycle.surrender(entity, (cycle.market.cea, 120))

    assert figures_of([entity.obligation.pk])[entity.obligation.pk].surrendered == 120


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("not_verified", "emissions_not_verified"),
        ("not_covered", "obligation_not_found"),
        ("not_yours", "account_not_found"),
        ("cash", "asset_not_surrenderable"),
        ("twice_one_asset", "invalid"),
        ("viewer", "role_forbidden"),
    ],
)
def test_other_surrender_refusals_change_nothing(cycle, case, code):
    entity = cycle.entity("Jingneng", emissions=None if case == "not_verified" else 100)
    other = cycle.entity("Shougang", emissions=100)
    cycle.market.give(entity.account, 100)
    cea = cycle.market.cea

    cash = CashAssetFactory()
    calls = {
        "not_verified": lambda: cycle.surrender(entity, (cea, 10)),
        "not_covered": lambda: cycle.surrender(entity, (cea, 10), year=2023),
        "not_yours": lambda: _surrender_from(cycle, other, entity),
        "cash": lambda: cycle.surrender(entity, (cash, 10)),
        "twice_one_asset": lambda: cycle.surrender(entity, (cea, 10), (cea, 5)),
        "viewer": lambda: _surrender_as_viewer(cycle, entity),
    }
    before = _state()

    assert _refused(calls[case]) == code
    assert _state() == before


def _surrender_from(cycle, thief, victim):
    from exchange.services.compliance import SurrenderLine, surrender_create

    return surrender_create(
        actor=thief.actor, account=victim.account, year=2024, items=[SurrenderLine(cycle.market.cea, 10)]
    )


def _surrender_as_viewer(cycle, entity):
    from exchange.services.compliance import SurrenderLine, surrender_create

    viewer = actor_for(entity.participant, role="viewer")
    return surrender_create(
        actor=viewer, account=entity.account, year=2024, items=[SurrenderLine(cycle.market.cea, 10)]
    )


def test_a_surrender_idempotency_key_replays_even_after_the_obligation_is_met(cycle):
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.market.give(entity.account, 200)
    first = cycle.surrender(entity, (cycle.market.cea, 100), key="s-1")
    before = _state()

    again = cycle.surrender(entity, (cycle.market.cea, 100), key="s-1")

    assert again.pk == first.pk
    assert _state() == before
    assert (
        _refused(lambda: cycle.surrender(entity, (cycle.market.cea, 99), key="s-1")) == "idempotency_conflict"
    )
    assert _state() == before


# --- allocation: pre-allocation and true-up --------------------------------------------------------------
@pytest.fixture
def allocated(cycle):
    """2023 and 2024 years; Jingneng verified 1001 t for 2023 and pre-allocated for 2024."""
    previous = compliance_year_create(actor=cycle.registry, year=2023)
    entity = cycle.entity("Jingneng")
    entities_cover(actor=cycle.registry, year=previous, entities=[entity.participant])
    [earlier] = entity.participant.obligations.filter(year_id=2023)
    emissions_record(actor=cycle.verifier, obligation=earlier, quantity=999, report_reference="VR-2023")
    emissions_record(actor=cycle.verifier, obligation=earlier, quantity=1001, report_reference="VR-2023b")
    newcomer = cycle.entity("Newcomer")
    result = preallocation_run(actor=cycle.registry, year=cycle.year)
    return entity, newcomer, result


def test_preallocation_rounds_down():
    assert [preallocation_quantity(e, 7000) for e in (1000, 1001, 1002, 1003, 0)] == [700, 700, 701, 702, 0]
    assert preallocation_quantity(10**12, 7000) == 7 * 10**11


def test_preallocation_is_seventy_percent_of_last_years_latest_verified_emissions(cycle, allocated):
    entity, newcomer, result = allocated

    assert [(e.obligation_id, e.kind, e.basis, e.quantity) for e in result.entries] == [
        (entity.obligation.pk, "pre_allocation", 1001, 700)
    ]
    assert result.skipped == [{"entity": newcomer.participant.pk, "reason": "no_prior_emissions"}]
    assert result.transaction.kind == "allocation"
    assert balance(entity.account, cycle.market.cea) == (700, 0)
    assert blocks(cycle.market.cea) == [(1, 700, entity.account.number, "available")]
    before = _state()

    again = preallocation_run(actor=cycle.registry, year=cycle.year)

    assert again.entries == []
    assert again.transaction is None
    assert _state() == before


def test_true_up_issues_the_difference(cycle, allocated):
    entity, _, _ = allocated

    entry = allocation_true_up(actor=cycle.registry, obligation=entity.obligation, approved=950)

    assert (entry.kind, entry.outcome, entry.allocated_before, entry.quantity) == (
        "true_up",
        "applied",
        700,
        250,
    )
    assert balance(entity.account, cycle.market.cea) == (950, 0)
    assert blocks(cycle.market.cea) == [(1, 950, entity.account.number, "available")]
    assert figures_of([entity.obligation.pk])[entity.obligation.pk].allocated == 950
    before = _state()
    assert allocation_true_up(actor=cycle.registry, obligation=entity.obligation, approved=950).pk == entry.pk
    assert _state() == before
    assert_reconciled()


def test_true_up_down_takes_back_to_the_cancellation_sink(cycle, allocated):
    entity, _, _ = allocated

    entry = allocation_true_up(actor=cycle.registry, obligation=entity.obligation, approved=600)

    sink = system(AccountKind.CANCELLATION)
    assert (entry.outcome, entry.quantity, entry.transaction.kind) == ("applied", -100, "takeback")
    assert balance(entity.account, cycle.market.cea) == (600, 0)
    assert balance(sink, cycle.market.cea) == (100, 0)
    assert balance(system(AccountKind.ISSUANCE), cycle.market.cea) == (-700, 0)
    assert blocks(cycle.market.cea) == [
        (1, 100, sink.number, "cancelled"),
        (101, 700, entity.account.number, "available"),
    ]
    assert figures_of([entity.obligation.pk])[entity.obligation.pk].allocated == 600
    assert_reconciled()


def test_take_back_of_units_no_longer_held_is_refused_and_the_shortfall_recorded(cycle, allocated):
    entity, newcomer, _ = allocated
    transfer_create(
        actor=entity.actor,
        source=entity.account,
        destination=newcomer.account,
        asset=cycle.market.cea,
        quantity=600,
    )
    _pledge(entity.account, cycle.market.cea, 50)
    ledger_before = {k: v for k, v in snapshot().items() if k != "events"}

    with pytest.raises(DomainError) as refused:
        allocation_true_up(actor=cycle.registry, obligation=entity.obligation, approved=500)

    assert refused.value.code == "takeback_units_unavailable"
    assert refused.value.details | {"entry": None} == {
        "entry": None,
        "requested": 200,
        "available": 50,
        "shortfall": 150,
    }
    assert {k: v for k, v in snapshot().items() if k != "events"} == ledger_before
    entry = AllocationEntry.objects.get(pk=refused.value.details["entry"])
    assert (entry.outcome, entry.quantity, entry.available, entry.shortfall, entry.transaction) == (
        "refused",
        0,
        50,
        150,
        None,
    )
    assert figures_of([entity.obligation.pk])[entity.obligation.pk].allocated == 700
    assert AuditEvent.objects.filter(action="compliance.true_up", object_id=str(entry.pk)).count() == 1
    recorded = _state()
    with pytest.raises(DomainError) as again:
        allocation_true_up(actor=cycle.registry, obligation=entity.obligation, approved=500)
    assert (again.value.code, again.value.details["entry"]) == ("takeback_units_unavailable", entry.pk)
    assert _state() == recorded
    assert balance(entity.account, cycle.market.cea) == (100, 50)


def test_true_up_idempotency_key_replays_its_entry(cycle, allocated):
    entity, _, _ = allocated
    first = allocation_true_up(
        actor=cycle.registry, obligation=entity.obligation, approved=800, idempotency_key="t-1"
    )
    allocation_true_up(actor=cycle.registry, obligation=entity.obligation, approved=750)
    before = _state()

    again = allocation_true_up(
        actor=cycle.registry, obligation=entity.obligation, approved=800, idempotency_key="t-1"
    )

    assert again.pk == first.pk
    assert _state() == before
    code = _refused(
        lambda: allocation_true_up(
            actor=cycle.registry, obligation=entity.obligation, approved=900, idempotency_key="t-1"
        )
    )
    assert code == "idempotency_conflict"
    assert balance(entity.account, cycle.market.cea) == (750, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_surrenders_never_exceed_the_obligation():
    import threading

    from django.db import connection

    cycle = make_cycle(2024)
    entity = cycle.entity("Jingneng", emissions=100)
    cycle.market.give(entity.account, 300)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def surrender(index: int) -> None:
        try:
            start.wait(timeout=10)
            cycle.surrender(entity, (cycle.market.cea, 20), key=f"burst-{index}")
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

    assert sorted(outcomes) == ["exceeds_remaining_obligation"] * 3 + ["ok"] * 5
    assert figures_of([entity.obligation.pk])[entity.obligation.pk].surrendered == 100
    assert balance(entity.account, cycle.market.cea) == (200, 0)
    assert_reconciled()
