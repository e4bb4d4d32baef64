"""A trade's settlement is one row of the link table (trade -> batch): settle-once and immutability in the
database, and the trade's settlement still readable as it was (``settlement_batch``)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from exchange.models import AccountKind, Balance, Posting, SettlementBatch, Trade, TradeSettlement
from exchange.services.settlement import settlement_run
from tests.helpers.ledger import assert_reconciled, balance, system
from tests.helpers.market import make_exchange

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]


@pytest.fixture
def settled():
    ex = make_exchange()
    _, seller_acc, seller = ex.trader("Seller", units=1000)
    _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 60)
    ex.order(buyer, buyer_acc, "buy", 8000, 100)  # fills 60 of 100, stays open
    ex.order(seller, seller_acc, "sell", 8000, 40)  # fills the rest
    batch = settlement_run()
    return ex, batch, seller_acc, buyer_acc


def _execute(sql: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_each_settled_trade_has_one_link_row_and_reads_as_settled(settled):
    _, batch, _, _ = settled
    trades = list(Trade.objects.order_by("id"))
    assert len(trades) == 2
    assert sorted(TradeSettlement.objects.values_list("trade_id", "batch_id")) == [(t.pk, batch.pk) for t in trades]
    assert {t.settlement_batch_id for t in trades} == {batch.pk}
    assert trades[0].settlement_batch == batch
    assert Trade.objects.filter(settlement_batch__isnull=True).count() == 0
    assert Trade.objects.filter(settlement_batch=batch.pk).count() == 2
    # A trade read without the manager's annotation reads its link row.
    fresh = Trade._base_manager.get(pk=trades[0].pk)
    assert fresh.settlement_batch_id == batch.pk
    assert_reconciled()


def test_cash_settles_through_the_clearing_account_which_nets_to_zero(settled):
    ex, batch, seller_acc, buyer_acc = settled
    # 100 t x 80.00 = 8,000.00 yuan; 0.6 % fee from each side.
    assert balance(seller_acc, ex.cny) == (800_000 - 4_800, 0)
    assert balance(buyer_acc, ex.cny) == (10_000_000 - 804_800, 0)
    assert balance(system(AccountKind.FEE), ex.cny) == (9_600, 0)
    clearing = system(AccountKind.CLEARING)
    assert balance(clearing, ex.cny) == (0, 0)
    assert not Posting.objects.filter(transaction=batch.transaction, account=clearing).exists()
    assert Balance.objects.get(account=clearing, asset=ex.cny).total == 0


def test_a_trade_settles_once_in_the_database(settled):
    _, batch, _, _ = settled
    trade = Trade.objects.order_by("id").first()
    other = SettlementBatch.objects.create(
        status="empty", initiated_by="test", started_at=batch.started_at, completed_at=batch.completed_at
    )

    with pytest.raises(IntegrityError):
        _execute("INSERT INTO exchange_tradesettlement (trade_id, batch_id) VALUES (%s, %s)", [trade.pk, other.pk])

    assert TradeSettlement.objects.get(trade_id=trade.pk).batch_id == batch.pk


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE exchange_tradesettlement SET batch_id = batch_id WHERE trade_id = %s",
        "DELETE FROM exchange_tradesettlement WHERE trade_id = %s",
        "UPDATE exchange_trade SET quantity = quantity WHERE id = %s",
        "DELETE FROM exchange_trade WHERE id = %s",
    ],
)
def test_settlements_and_trades_are_never_changed_or_deleted(settled, sql):
    trade = Trade.objects.order_by("id").first()

    with pytest.raises(DatabaseError, match="never changed or deleted"):
        _execute(sql, [trade.pk])

    assert TradeSettlement.objects.filter(trade_id=trade.pk).exists()


@pytest.mark.parametrize("missing", ["trade", "batch"])
def test_a_settlement_row_must_name_an_existing_trade_and_batch(settled, missing):
    ex, batch, _, _ = settled
    _, seller_acc, seller = ex.trader("Seller 2", units=10)
    _, buyer_acc, buyer = ex.trader("Buyer 2", cash_fen=1_000_000)
    ex.order(seller, seller_acc, "sell", 8000, 10)
    ex.order(buyer, buyer_acc, "buy", 8000, 10)
    unsettled = Trade.objects.get(settlement_batch__isnull=True)
    trade_id, batch_id = (10**12, batch.pk) if missing == "trade" else (unsettled.pk, 10**12)

    with pytest.raises(IntegrityError, match="does not exist"):
        _execute("INSERT INTO exchange_tradesettlement (trade_id, batch_id) VALUES (%s, %s)", [trade_id, batch_id])

    assert TradeSettlement.objects.count() == 2
    assert Trade.objects.filter(settlement_batch__isnull=True).get() == unsettled
