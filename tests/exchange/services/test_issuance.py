"""Creating units: CCER projects and issuances, CEA vintages and allocation (single, bulk and CSV)."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import ParticipantKind
from core.errors import DomainError
from exchange.models import AccountKind, Asset, AuditEvent, Issuance, Project, Transaction
from exchange.services.issuance import (
    AllocationRow,
    allocation_rows_from_csv,
    ccer_issue,
    cea_allocate,
    cea_vintage_create,
    project_register,
)
from tests.factories import AccountFactory, ParticipantFactory
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, snapshot, system

pytestmark = pytest.mark.django_db


def _register(market, owner, code="BJ-TZ-FOREST-001", actor=None, **overrides):
    fields = {
        "code": code,
        "name": "Tongzhou afforestation",
        "project_type": "forestry",
        "methodology": "CCER-14-001-V01",
        "location": "Tongzhou, Beijing",
        "owner": owner,
        "crediting_start": date(2021, 1, 1),
        "crediting_end": date(2040, 12, 31),
    }
    return project_register(actor=actor or market.registry_actor, **(fields | overrides))


def _issue(market, project, quantity=5000, reference="ISS-1", actor=None, **overrides):
    fields = {
        "vintage": 2023,
        "monitoring_start": date(2021, 1, 1),
        "monitoring_end": date(2023, 12, 31),
        "quantity": quantity,
        "external_reference": reference,
    }
    return ccer_issue(actor=actor or market.registry_actor, project=project, **(fields | overrides))


def _state() -> dict[str, object]:
    return snapshot() | {
        "projects": Project.objects.count(),
        "issuances": Issuance.objects.count(),
        "assets": Asset.objects.count(),
    }


# --- projects ------------------------------------------------------------------------------------------
def test_register_project(market):
    owner, _, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)

    project = _register(market, owner, code="bj-tz-forest-001")

    project.refresh_from_db()
    assert (project.code, project.owner_id, project.project_type, project.status) == (
        "BJ-TZ-FOREST-001",
        owner.pk,
        "forestry",
        "registered",
    )
    event = AuditEvent.objects.get(action="project.register")
    assert event.object_id == str(project.pk)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("duplicate", "duplicate"),
        ("bank_owner", "invalid"),
        ("not_registry", "wrong_participant_kind"),
        ("period_reversed", "invalid"),
        ("unknown_type", "invalid"),
    ],
)
def test_project_refusals_change_nothing(market, case, code):
    owner, _, owner_actor = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    _register(market, owner)
    kwargs: dict[str, object] = {"code": "BJ-TZ-FOREST-002"}
    if case == "duplicate":
        kwargs["code"] = "BJ-TZ-FOREST-001"
    elif case == "bank_owner":
        owner = ParticipantFactory(kind=ParticipantKind.FINANCIAL_INSTITUTION)
    elif case == "not_registry":
        kwargs["actor"] = owner_actor
    elif case == "period_reversed":
        kwargs["crediting_end"] = date(2020, 1, 1)
    elif case == "unknown_type":
        kwargs["project_type"] = "volcano"
    before = _state()

    with pytest.raises(DomainError) as refused:
        _register(market, owner, **kwargs)

    assert refused.value.code == code
    assert _state() == before


# --- CCER issuance -------------------------------------------------------------------------------------
def test_issue_ccer_batch_into_owners_account(market):
    owner, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    project = _register(market, owner)

    issuance = _issue(market, project, quantity=5000)

    asset = issuance.asset
    assert (asset.code, asset.kind, asset.vintage, asset.project_id, asset.serialised) == (
        "CCER-BJ-TZ-FOREST-001-2023",
        "ccer",
        2023,
        project.pk,
        True,
    )
    assert (issuance.quantity, issuance.first_serial, issuance.last_serial) == (5000, 1, 5000)
    assert balance(owner_acc, asset) == (5000, 0)
    assert balance(system(AccountKind.ISSUANCE), asset) == (-5000, 0)
    assert blocks(asset) == [(1, 5000, owner_acc.number, "available")]
    assert issuance.transaction.kind == "issuance"
    assert AuditEvent.objects.filter(action="ccer.issue").count() == 1
    assert_reconciled()


def test_second_issuance_of_a_vintage_continues_the_serials(market):
    owner, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    project = _register(market, owner)
    first = _issue(market, project, quantity=5000, reference="ISS-1")

    second = _issue(
        market,
        project,
        quantity=700,
        reference="ISS-2",
        monitoring_start=date(2024, 1, 1),
        monitoring_end=date(2024, 12, 31),
    )

    assert second.asset_id == first.asset_id
    assert (second.first_serial, second.last_serial) == (5001, 5700)
    assert blocks(first.asset) == [(1, 5700, owner_acc.number, "available")]
    assert balance(owner_acc, first.asset) == (5700, 0)
    assert_reconciled()


def test_an_external_reference_is_issued_once_whoever_asks(market):
    """Issue 13: the reference is a uniqueness rule registry-wide (409), not a replay."""
    owner, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    project = _register(market, owner)
    first = _issue(market, project)
    before = _state()
    other_registry_clerk = actor_for(market.registry)

    with pytest.raises(DomainError) as refused:
        _issue(market, project, actor=other_registry_clerk)

    assert refused.value.code == "duplicate_external_reference"
    assert _state() == before
    assert balance(owner_acc, first.asset) == (5000, 0)


@pytest.mark.parametrize(
    "change",
    [{"quantity": 5001}, {"vintage": 2024}, {"monitoring_end": date(2023, 6, 30)}],
)
def test_same_external_reference_with_other_figures_is_refused(market, change):
    owner, _, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    project = _register(market, owner)
    _issue(market, project)
    before = _state()

    with pytest.raises(DomainError) as refused:
        _issue(market, project, **change)

    assert refused.value.code == "duplicate_external_reference"
    assert _state() == before


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("not_registry", "wrong_participant_kind"),
        ("outside_crediting", "invalid"),
        ("zero", "invalid_quantity"),
        ("bad_vintage", "invalid"),
    ],
)
def test_issuance_refusals_change_nothing(market, case, code):
    owner, _, owner_actor = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    project = _register(market, owner)
    kwargs: dict[str, object] = {}
    if case == "not_registry":
        kwargs["actor"] = owner_actor
    elif case == "outside_crediting":
        kwargs["monitoring_start"] = date(2020, 1, 1)
    elif case == "zero":
        kwargs["quantity"] = 0
    elif case == "bad_vintage":
        kwargs["vintage"] = 23
    before = _state()

    with pytest.raises(DomainError) as refused:
        _issue(market, project, **kwargs)

    assert refused.value.code == code
    assert _state() == before


# --- CEA vintages and allocation -----------------------------------------------------------------------
def test_create_cea_vintage(market):
    asset = cea_vintage_create(actor=market.registry_actor, vintage=2025)

    assert (
        asset.code,
        asset.kind,
        asset.vintage,
        asset.serialised,
        asset.transferable,
        asset.next_serial,
    ) == (
        "CEA-2025",
        "allowance",
        2025,
        True,
        True,
        1,
    )
    assert AuditEvent.objects.filter(action="cea.vintage_create", object_id=str(asset.pk)).exists()


def test_cea_vintage_refusals(market):
    _, _, holder_actor = market.holder("A")
    before = _state()

    with pytest.raises(DomainError) as duplicate:
        cea_vintage_create(actor=market.registry_actor, vintage=2024)
    with pytest.raises(DomainError) as not_registry:
        cea_vintage_create(actor=holder_actor, vintage=2026)

    assert (duplicate.value.code, not_registry.value.code) == ("duplicate", "wrong_participant_kind")
    assert _state() == before


def test_allocate_single(market):
    _, a_acc, _ = market.holder("A")

    txn = market.give(a_acc, 1000)

    assert txn.kind == "allocation"
    assert balance(a_acc, market.cea) == (1000, 0)
    assert balance(system(AccountKind.ISSUANCE), market.cea) == (-1000, 0)
    assert blocks(market.cea) == [(1, 1000, a_acc.number, "available")]
    market.cea.refresh_from_db()
    assert market.cea.next_serial == 1001
    assert_reconciled()


def test_allocate_in_bulk_hands_out_consecutive_serials_in_row_order(market):
    accounts = [market.holder(name)[1] for name in ("A", "B", "C")]
    market.give(accounts[0], 10)

    txn = cea_allocate(
        actor=market.registry_actor,
        asset=market.cea,
        rows=[
            AllocationRow(account, quantity)
            for account, quantity in zip(accounts, (100, 200, 300), strict=True)
        ],
    )

    assert [balance(account, market.cea) for account in accounts] == [(110, 0), (200, 0), (300, 0)]
    assert blocks(market.cea) == [
        (1, 110, accounts[0].number, "available"),
        (111, 310, accounts[1].number, "available"),
        (311, 610, accounts[2].number, "available"),
    ]
    assert sorted(txn.postings.values_list("quantity", flat=True)) == [-300, -200, -100, 100, 200, 300]
    assert_reconciled()


def test_allocation_idempotency_key_replays(market):
    _, a_acc, _ = market.holder("A")
    rows = [AllocationRow(a_acc, 100)]
    first = cea_allocate(actor=market.registry_actor, asset=market.cea, rows=rows, idempotency_key="alloc-1")
    before = _state()

    again = cea_allocate(actor=market.registry_actor, asset=market.cea, rows=rows, idempotency_key="alloc-1")

    assert again.pk == first.pk
    assert _state() == before
    with pytest.raises(DomainError) as refused:
        cea_allocate(
            actor=market.registry_actor,
            asset=market.cea,
            rows=[AllocationRow(a_acc, 101)],
            idempotency_key="alloc-1",
        )
    assert refused.value.code == "idempotency_conflict"
    assert _state() == before


def test_allocation_with_a_bad_row_allocates_nothing(market):
    _, a_acc, _ = market.holder("A")
    _, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    before = _state()

    with pytest.raises(DomainError) as refused:
        cea_allocate(
            actor=market.registry_actor,
            asset=market.cea,
            rows=[
                AllocationRow(a_acc, 100, line=1),
                AllocationRow(owner_acc, 50, line=2),
                AllocationRow(a_acc, 0, 3),
            ],
        )

    assert refused.value.code == "csv_rejected"
    assert [(e["line"], e["error"]) for e in refused.value.details["errors"]] == [
        (2, "invalid_destination"),
        (3, "invalid_quantity"),
    ]
    assert _state() == before


def test_allocation_refusals(market):
    _, a_acc, a = market.holder("A")
    before = _state()

    with pytest.raises(DomainError) as not_registry:
        cea_allocate(actor=a, asset=market.cea, rows=[AllocationRow(a_acc, 100)])
    with pytest.raises(DomainError) as empty:
        cea_allocate(actor=market.registry_actor, asset=market.cea, rows=[])

    assert (not_registry.value.code, empty.value.code) == ("wrong_participant_kind", "invalid")
    assert _state() == before


# --- allocation from CSV -------------------------------------------------------------------------------
def test_csv_rows_are_parsed_with_header_and_line_numbers(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    text = f"\ufeffaccount,quantity\n{a_acc.number},1200\n\n{b_acc.number}, 300\n"

    rows = allocation_rows_from_csv(text)
    cea_allocate(actor=market.registry_actor, asset=market.cea, rows=rows)

    assert [(r.account.pk, r.quantity, r.line) for r in rows] == [(a_acc.pk, 1200, 2), (b_acc.pk, 300, 4)]
    assert blocks(market.cea) == [
        (1, 1200, a_acc.number, "available"),
        (1201, 1500, b_acc.number, "available"),
    ]
    assert_reconciled()


def test_csv_bad_rows_are_reported_by_line_and_nothing_is_applied(market):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    _, c_acc, _ = market.holder("C")
    _, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    bank_acc = AccountFactory(participant=ParticipantFactory(kind=ParticipantKind.FINANCIAL_INSTITUTION))
    text = "\n".join(
        [
            "account,quantity",
            f"{a_acc.number},1000",
            "CN-404-000000,10",
            f"{b_acc.number},-5",
            f"{a_acc.number},7",
            f"{owner_acc.number},10",
            "just-one-column",
            f"{bank_acc.number},1.5",
            f"{c_acc.number},500",
        ]
    )
    before = _state()

    with pytest.raises(DomainError) as refused:
        allocation_rows_from_csv(text)

    assert refused.value.code == "csv_rejected"
    assert sorted((e["line"], e["error"]) for e in refused.value.details["errors"]) == [
        (3, "account_not_found"),
        (4, "invalid_quantity"),
        (5, "duplicate_account"),
        (6, "invalid_destination"),
        (7, "malformed_row"),
        (8, "invalid_quantity"),
    ]
    assert _state() == before
    assert Transaction.objects.filter(kind="allocation").count() == 0


def test_csv_without_rows_is_refused(market):
    with pytest.raises(DomainError) as refused:
        allocation_rows_from_csv("account,quantity\n\n")

    assert refused.value.code == "csv_rejected"
