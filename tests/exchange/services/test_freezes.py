"""Judicial freezes and seizures: frozen units refuse every way out; release and seizure end the freeze once."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from accounts.models import ParticipantKind
from core import clock
from exchange.errors import InsufficientAvailable
from exchange.models import BlockState, FreezeStatus, Hold, HoldKind, JudicialFreeze, SerialBlock
from exchange.selectors.registry import public_serial
from exchange.services.compliance import (
    SurrenderLine,
    compliance_year_create,
    emissions_record,
    entities_cover,
    surrender_create,
)
from exchange.services.freezes import (
    FreezeEnded,
    InvalidDocumentHash,
    judicial_freeze_create,
    judicial_freeze_release,
    judicial_freeze_seize,
)
from exchange.services.pledges import pledge_request
from exchange.services.retirement import retirement_create
from exchange.services.transfers import transfer_create
from tests.helpers.ledger import assert_reconciled, balance, blocks, snapshot
from tests.helpers.market import IN_SESSION, make_exchange

pytestmark = pytest.mark.django_db

DOC = "a" * 64


@pytest.fixture
def world():
    with clock.pinned(IN_SESSION):
        ex = make_exchange()
        holder, account, actor = ex.trader("Holder", units=100, cash_fen=1_000_000)
        _other, other_account, _ = ex.trader("Creditor")
        bank, _, _ = ex.trader("Bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)
        yield ex, holder, account, actor, other_account, bank


def freeze(ex, account, **kw):
    kw.setdefault("court", "Beijing No. 4 Intermediate People's Court")
    kw.setdefault("document_number", "(2026) Jing 04 Zhi 123")
    kw.setdefault("document_sha256", DOC)
    return judicial_freeze_create(actor=ex.market.registry_actor, account=account, asset=ex.cea, **kw)


def test_a_freeze_of_exact_serials_puts_them_in_state_frozen(world):
    ex, _, account, _, _, _ = world
    f = freeze(ex, account, serials=(11, 30))
    assert f.quantity == 20
    assert f.status == FreezeStatus.ACTIVE
    assert blocks(ex.cea, account) == [
        (1, 10, account.number, "available"),
        (11, 30, account.number, "frozen"),
        (31, 100, account.number, "available"),
    ]
    assert balance(account, ex.cea) == (100, 20)
    assert f.hold.kind == HoldKind.JUDICIAL_FREEZE
    assert_reconciled()


def test_frozen_units_refuse_trade_transfer_pledge_surrender_and_retirement(world):
    ex, _holder, account, actor, other_account, bank = world
    freeze(ex, account, quantity=100)
    before = snapshot()
    refusals = {}
    attempts = {
        "transfer": lambda: transfer_create(
            actor=actor, source=account, destination=other_account, asset=ex.cea, quantity=1
        ),
        "named_serials": lambda: transfer_create(
            actor=actor, source=account, destination=other_account, asset=ex.cea, quantity=1, serials=(5, 5)
        ),
        "trade": lambda: ex.order(actor, account, "sell", 8000, 1),
        "retirement": lambda: retirement_create(
            actor=actor, account=account, asset=ex.cea, quantity=1, beneficiary="b", reason="r"
        ),
        "pledge": lambda: pledge_request(
            actor=actor,
            account=account,
            lender=bank,
            asset=ex.cea,
            quantity=1,
            principal_fen=4_000,
            annual_rate_bp=385,
            start_date=IN_SESSION.date(),
            maturity_date=date(2027, 11, 25),
            ltv_limit_bp=7000,
            margin_call_bp=8000,
            liquidation_bp=9000,
        ),
    }
    for name, attempt in attempts.items():
        with clock.pinned(IN_SESSION), pytest.raises(InsufficientAvailable) as refused:
            attempt()
        refusals[name] = refused.value.code
    assert refusals == {
        "transfer": "insufficient_available",
        "named_serials": "insufficient_available",
        "trade": "insufficient_available",
        "retirement": "insufficient_available",
        "pledge": "insufficient_available",
    }
    assert snapshot() == before


def test_frozen_serials_are_refused_by_name_while_others_move(world):
    ex, _, account, actor, other_account, _ = world
    freeze(ex, account, serials=(1, 10))
    before = snapshot()
    with pytest.raises(InsufficientAvailable) as refused:
        transfer_create(
            actor=actor, source=account, destination=other_account, asset=ex.cea, quantity=1, serials=(5, 5)
        )
    assert refused.value.code == "serials_not_available"
    assert snapshot() == before
    transfer_create(actor=actor, source=account, destination=other_account, asset=ex.cea, quantity=90)
    assert blocks(ex.cea, account) == [(1, 10, account.number, "frozen")]
    with pytest.raises(InsufficientAvailable):
        transfer_create(actor=actor, source=account, destination=other_account, asset=ex.cea, quantity=1)
    assert_reconciled()


def test_frozen_units_refuse_surrender(world):
    ex, holder, account, actor, _, _ = world
    registry = ex.market.registry_actor
    year = compliance_year_create(actor=registry, year=2024)
    [obligation] = entities_cover(actor=registry, year=year, entities=[holder])
    verifier = ex.trader("Verifier", kind=ParticipantKind.VERIFIER)[2]
    emissions_record(actor=verifier, obligation=obligation, quantity=100, report_reference="VR")
    freeze(ex, account, quantity=100)
    before = snapshot()
    with pytest.raises(InsufficientAvailable) as refused:
        surrender_create(actor=actor, account=account, year=2024, items=[SurrenderLine(ex.cea, 10)])
    assert refused.value.code == "units_held"
    assert refused.value.details["held"] == 100
    assert snapshot() == before


def test_release_makes_the_units_available_again(world):
    ex, _, account, actor, other_account, _ = world
    f = freeze(ex, account, serials=(1, 50))
    released = judicial_freeze_release(
        actor=ex.market.registry_actor, freeze=f, document_number="(2026) Jing 04 Zhi 124", document_sha256="b" * 64
    )
    assert released.status == FreezeStatus.RELEASED
    assert blocks(ex.cea, account) == [(1, 100, account.number, "available")]
    assert balance(account, ex.cea) == (100, 0)
    # The same release again changes nothing; a seizure after it is refused.
    events = snapshot()["events"]
    judicial_freeze_release(
        actor=ex.market.registry_actor, freeze=f, document_number="(2026) Jing 04 Zhi 124", document_sha256="b" * 64
    )
    assert snapshot()["events"] == events
    with pytest.raises(FreezeEnded):
        judicial_freeze_seize(
            actor=ex.market.registry_actor,
            freeze=f,
            destination=other_account,
            document_number="x",
            document_sha256="c" * 64,
        )
    transfer_create(actor=actor, source=account, destination=other_account, asset=ex.cea, quantity=100)
    assert_reconciled()


def test_seizure_moves_the_frozen_serials_to_the_named_account(world):
    ex, _, account, _, other_account, _ = world
    f = freeze(ex, account, serials=(21, 40))
    seized = judicial_freeze_seize(
        actor=ex.market.registry_actor,
        freeze=f,
        destination=other_account,
        document_number="(2026) Jing 04 Zhi 125",
        document_sha256="c" * 64,
    )
    assert seized.status == FreezeStatus.SEIZED
    assert seized.transaction is not None
    assert balance(account, ex.cea) == (80, 0)
    assert balance(other_account, ex.cea) == (20, 0)
    assert blocks(ex.cea, other_account) == [(21, 40, other_account.number, "available")]
    assert seized.transaction.postings.count() == 2
    assert_reconciled()


def test_public_lookup_shows_frozen_without_the_holder(world):
    ex, _, account, _, _, _ = world
    freeze(ex, account, serials=(1, 10))
    frozen = public_serial(ex.cea, 5)
    assert (frozen.state, frozen.account, frozen.holder) == ("frozen", None, None)
    free = public_serial(ex.cea, 50)
    assert (free.state, free.account, free.holder) == ("available", account.number, "Holder")


def test_bad_orders_are_refused_and_change_nothing(world):
    ex, _, account, _, _, _ = world
    before = snapshot()
    with pytest.raises(InvalidDocumentHash):
        freeze(ex, account, quantity=5, document_sha256="not-a-hash")
    with pytest.raises(InsufficientAvailable):
        freeze(ex, account, quantity=101)
    assert snapshot() == before


def test_the_database_ties_frozen_blocks_to_a_freeze(world):
    ex, _, account, _, _, _ = world
    f = freeze(ex, account, serials=(1, 10))
    block = SerialBlock.objects.get(hold=f.hold)
    assert block.state == BlockState.FROZEN
    # A frozen block can't be marked merely held, nor a held block's hold turned into a freeze.
    with pytest.raises(IntegrityError), transaction.atomic():
        SerialBlock.objects.filter(pk=block.pk).update(state=BlockState.HELD)
    ex.order(world[3], account, "sell", 8000, 5)
    held = SerialBlock.objects.get(account=account, state=BlockState.HELD)
    with pytest.raises(IntegrityError), transaction.atomic():
        SerialBlock.objects.filter(pk=held.pk).update(state=BlockState.FROZEN)
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.filter(pk=f.hold_id).update(kind=HoldKind.ORDER)
    assert JudicialFreeze.objects.count() == 1


def test_a_freeze_of_held_units_is_refused_as_encumbered_and_changes_nothing(world):
    # A court may freeze pledged or held units in waiting (轮候冻结); the registry records no waiting freeze,
    # so it refuses the order with its own code while the units are held, and freezes available units.
    ex, _, account, actor, _, _ = world
    ex.order(actor, account, "sell", 8000, 30)  # serials 1-30 held for the sell order
    before = snapshot()
    with pytest.raises(InsufficientAvailable) as by_serials:
        freeze(ex, account, serials=(25, 40))
    assert by_serials.value.code == "freeze_units_encumbered"
    assert by_serials.value.details["holds"] == ["order"]
    with pytest.raises(InsufficientAvailable) as by_quantity:
        freeze(ex, account, quantity=71)
    assert by_quantity.value.code == "freeze_units_encumbered"
    with pytest.raises(InsufficientAvailable) as beyond:
        freeze(ex, account, quantity=101)
    assert beyond.value.code == "insufficient_available"
    assert snapshot() == before
    f = freeze(ex, account, quantity=70)
    assert blocks(ex.cea, account)[-1] == (31, 100, account.number, "frozen")
    assert f.quantity == 70
    assert_reconciled()
