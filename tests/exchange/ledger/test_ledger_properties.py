"""Properties of the ledger under random sequences of operations (Hypothesis).

Each example builds a small market (a registry, three compliance entities, a forestry project owner),
then applies a random list of operations: allocate CEA, issue CCER, transfer (lowest serials first or
a named range, often more than the source has), retire, cancel, place holds, release them (partly)
and post from them. A plain model keeps, for every serial number, who holds it and which hold
reserves it. Every operation does what the model predicts or is refused with the code it predicts;
a refusal changes nothing; afterwards every serial is where the model says, the balances match, and
invariants 1-4 (docs/architecture.md, The ledger and its invariants) hold (``manage.py reconcile``'s
checks). Each example runs in a savepoint that is rolled back, so examples don't see each other.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import count
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core.errors import DomainError
from exchange.models import Account, AccountKind, Asset, Hold, HoldKind, HoldStatus, Project, SerialBlock
from exchange.services.accounts import clear_caches
from exchange.services.audit import audit_record
from exchange.services.issuance import ccer_issue, project_register
from exchange.services.ledger import Leg, hold_place, hold_release, journal_open, ledger_post
from exchange.services.retirement import retirement_create, units_cancel
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import Market, assert_reconciled, balance, make_market, snapshot

pytestmark = pytest.mark.django_db

ENTITIES = 3
OWNER = 3  # the project owner is holder 3
holder = st.integers(0, OWNER)
asset_name = st.sampled_from(["cea", "ccer"])
hold_index = st.integers(0, 4)
operation = st.one_of(
    st.tuples(st.just("allocate"), st.integers(0, ENTITIES - 1), st.integers(1, 60)),
    st.tuples(st.just("issue"), st.integers(1, 60)),
    st.tuples(st.just("transfer"), holder, holder, asset_name, st.integers(1, 90)),
    st.tuples(st.just("transfer_range"), holder, holder, asset_name, st.integers(1, 150), st.integers(1, 30)),
    st.tuples(st.just("retire"), holder, asset_name, st.integers(1, 60)),
    st.tuples(st.just("cancel"), holder, asset_name, st.integers(1, 40)),
    st.tuples(st.just("hold"), holder, asset_name, st.integers(1, 40)),
    st.tuples(st.just("release"), hold_index, st.integers(0, 25)),  # 0: all that remains
    st.tuples(st.just("consume"), hold_index, holder, st.integers(1, 25)),
)

Owner = int | str  # a holder's index, or the sink "retired" / "cancelled"


@dataclass
class World:
    market: Market
    accounts: list[Account]
    actors: list[Actor]
    project: Project
    assets: dict[str, Asset | None]
    references: count = field(default_factory=lambda: count(1))
    holds: list[Hold] = field(default_factory=list)
    # The model: per asset, per serial (index = serial - 1), its owner and the hold reserving it.
    serials: dict[str, list[tuple[Owner, int | None]]] = field(default_factory=lambda: {"cea": [], "ccer": []})

    def lowest(self, name: str, owner: Owner, hold: int | None, quantity: int) -> list[int]:
        found = [i for i, s in enumerate(self.serials[name]) if s == (owner, hold)]
        return found[:quantity]

    def available(self, who: int, name: str) -> int:
        return self.serials[name].count((who, None))

    def reserved(self, hold: int) -> int:
        name = self.hold_asset(hold)
        return sum(1 for _, h in self.serials[name] if h == hold)

    def hold_asset(self, hold: int) -> str:
        return "cea" if self.holds[hold].asset_id == self.market.cea.pk else "ccer"

    def move(self, name: str, indexes: list[int], owner: Owner, hold: int | None = None) -> None:
        for i in indexes:
            self.serials[name][i] = (owner, hold)


def build_world() -> World:
    clear_caches()  # nothing cached may outlive the example's rolled-back savepoint
    market = make_market()
    people = [market.holder(f"Entity {n}") for n in range(ENTITIES)]
    people.append(market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER))
    project = project_register(
        actor=market.registry_actor,
        code="BJ-TZ-FOREST-001",
        name="Tongzhou afforestation",
        project_type="forestry",
        methodology="CCER-14-001-V01",
        location="Tongzhou",
        owner=people[OWNER][0],
        crediting_start=date(2021, 1, 1),
        crediting_end=date(2040, 12, 31),
    )
    return World(
        market=market,
        accounts=[p[1] for p in people],
        actors=[p[2] for p in people],
        project=project,
        assets={"cea": market.cea, "ccer": None},
    )


@contextmanager
def rolled_back():
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)


def refusal(call: Callable[[], Any]) -> str | None:
    """Run one operation in its own savepoint; the refusal's code, or None when it went through."""
    try:
        with transaction.atomic():
            call()
    except DomainError as exc:
        return exc.code
    return None


# --- applying operations: each returns (the refusal the model expects, the refusal that happened) -----
def apply(world: World, op: tuple) -> tuple[str | None, str | None]:
    kind = op[0]
    if kind == "allocate":
        return _allocate(world, *op[1:])
    if kind == "issue":
        return _issue(world, *op[1:])
    if kind in {"release", "consume"}:
        if op[1] >= len(world.holds):
            return None, None
        return (_release if kind == "release" else _consume)(world, *op[1:])
    name = op[3] if kind.startswith("transfer") else op[2]
    if world.assets[name] is None:
        return None, None  # no CCER issued yet: nothing to move
    return {"transfer": _transfer, "transfer_range": _transfer_range, "hold": _hold}.get(kind, _sink)(world, *op)


def _allocate(world: World, who: int, quantity: int) -> tuple[str | None, str | None]:
    got = refusal(lambda: world.market.give(world.accounts[who], quantity))
    world.serials["cea"] += [(who, None)] * quantity
    return None, got


def _issue(world: World, quantity: int) -> tuple[str | None, str | None]:
    reference = f"ISS-{next(world.references)}"

    def issue() -> None:
        issuance = ccer_issue(
            actor=world.market.registry_actor,
            project=world.project,
            vintage=2023,
            monitoring_start=date(2021, 1, 1),
            monitoring_end=date(2023, 12, 31),
            quantity=quantity,
            external_reference=reference,
        )
        world.assets["ccer"] = issuance.asset

    got = refusal(issue)
    world.serials["ccer"] += [(OWNER, None)] * quantity
    return None, got


def _transfer(world: World, _: str, who: int, to: int, name: str, quantity: int) -> tuple[str | None, str | None]:
    expected = (
        "same_account" if to == who else "insufficient_available" if quantity > world.available(who, name) else None
    )
    got = refusal(
        lambda: transfer_create(
            actor=world.actors[who],
            source=world.accounts[who],
            destination=world.accounts[to],
            asset=world.assets[name],
            quantity=quantity,
        )
    )
    if expected is None:
        world.move(name, world.lowest(name, who, None, quantity), to)
    return expected, got


def _transfer_range(
    world: World, _: str, who: int, to: int, name: str, first: int, quantity: int
) -> tuple[str | None, str | None]:
    indexes = list(range(first - 1, first - 1 + quantity))
    owned = all(i < len(world.serials[name]) and world.serials[name][i] == (who, None) for i in indexes)
    if to == who:
        expected = "same_account"
    elif quantity > world.available(who, name):
        expected = "insufficient_available"
    else:
        expected = None if owned else "serials_not_available"
    got = refusal(
        lambda: transfer_create(
            actor=world.actors[who],
            source=world.accounts[who],
            destination=world.accounts[to],
            asset=world.assets[name],
            quantity=quantity,
            serials=(first, first + quantity - 1),
        )
    )
    if expected is None:
        world.move(name, indexes, to)
    return expected, got


def _sink(world: World, kind: str, who: int, name: str, quantity: int) -> tuple[str | None, str | None]:
    expected = "insufficient_available" if quantity > world.available(who, name) else None
    account, asset = world.accounts[who], world.assets[name]
    if kind == "retire":
        got = refusal(
            lambda: retirement_create(
                actor=world.actors[who], account=account, asset=asset, quantity=quantity, beneficiary="B", reason="R"
            )
        )
    else:
        got = refusal(
            lambda: units_cancel(
                actor=world.market.registry_actor, account=account, asset=asset, quantity=quantity, reason="R"
            )
        )
    if expected is None:
        world.move(name, world.lowest(name, who, None, quantity), "retired" if kind == "retire" else "cancelled")
    return expected, got


def _hold(world: World, _: str, who: int, name: str, quantity: int) -> tuple[str | None, str | None]:
    expected = "insufficient_available" if quantity > world.available(who, name) else None
    placed: list[Hold] = []
    got = refusal(
        lambda: placed.append(
            hold_place(
                account=world.accounts[who],
                asset=world.assets[name],
                quantity=quantity,
                kind=HoldKind.ORDER,
                reference="order",
            )
        )
    )
    if expected is None:
        world.move(name, world.lowest(name, who, None, quantity), who, len(world.holds))
        world.holds.append(placed[0])
    return expected, got


def _release(world: World, index: int, quantity: int) -> tuple[str | None, str | None]:
    hold, name, left = world.holds[index], world.hold_asset(index), world.reserved(index)
    who = next(i for i, a in enumerate(world.accounts) if a.pk == hold.account_id)
    amount = quantity or left
    expected = "invalid_state" if left and amount > left else None
    released: list[int] = []
    got = refusal(lambda: released.append(hold_release(hold, quantity or None)))
    if expected is None:
        assert released == [amount if left else 0]  # an ended hold releases nothing
        world.move(name, world.lowest(name, who, index, amount if left else 0), who)
    return expected, got


def _consume(world: World, index: int, to: int, quantity: int) -> tuple[str | None, str | None]:
    hold, name, left = world.holds[index], world.hold_asset(index), world.reserved(index)
    who = next(i for i, a in enumerate(world.accounts) if a.pk == hold.account_id)
    expected = "same_account" if to == who else "invalid_state" if quantity > left else None

    def post() -> None:
        # As a service posts: the entry, its legs and its audit event in one transaction (reconcile's check 5).
        actor = Actor.system("tests")
        txn, _ = journal_open(kind="settlement", actor=actor, idempotency_key=None, request={})
        posted = ledger_post(txn, [Leg(hold.asset, world.accounts[who], world.accounts[to], quantity, hold=hold)])
        audit_record(actor=actor, action="hold.consume", obj=txn, payload={"entry_digest": posted.digest})

    got = refusal(post)
    if expected is None:
        world.move(name, world.lowest(name, who, index, quantity), to)
    return expected, got


# --- reading the ledger back ---------------------------------------------------------------------------
def serials_in_db(asset: Asset) -> list[tuple[int, str, int | None]]:
    found = []
    for block in SerialBlock.objects.filter(asset=asset).order_by("first"):
        assert block.first == len(found) + 1, "blocks leave a gap or overlap"
        found += [(block.account_id, block.state, block.hold_id)] * block.size
    return found


def serials_in_model(world: World, name: str) -> list[tuple[int, str, int | None]]:
    sinks = {
        state: Account.objects.filter(kind=kind).values_list("pk", flat=True).first()
        for state, kind in (("retired", AccountKind.RETIREMENT), ("cancelled", AccountKind.CANCELLATION))
    }
    expected = []
    for owner, hold in world.serials[name]:
        if isinstance(owner, str):
            expected.append((sinks[owner], owner, None))
        elif hold is None:
            expected.append((world.accounts[owner].pk, "available", None))
        else:
            expected.append((world.accounts[owner].pk, "held", world.holds[hold].pk))
    return expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=18))
# A hold taken and partly consumed by a posting: always tried, as random lists reach it only now and then.
@example(ops=[("allocate", 0, 30), ("hold", 0, "cea", 15), ("consume", 0, 1, 1)])
def test_random_operations_keep_the_invariants(ops):
    with rolled_back():
        world = build_world()
        for op in ops:
            before = snapshot()
            expected, got = apply(world, op)
            assert got == expected, op
            if got is not None:
                assert snapshot() == before, op

        for name, asset in world.assets.items():
            if asset is None:
                continue
            assert serials_in_db(asset) == serials_in_model(world, name)
            for who, account in enumerate(world.accounts):
                total = sum(1 for owner, _ in world.serials[name] if owner == who)
                held = sum(1 for owner, h in world.serials[name] if owner == who and h is not None)
                assert balance(account, asset) == (total, held), (name, who)
        for index, hold in enumerate(world.holds):
            hold.refresh_from_db()
            assert hold.remaining == world.reserved(index)
            assert (hold.status == HoldStatus.ACTIVE) == (hold.remaining > 0)
        assert_reconciled()
