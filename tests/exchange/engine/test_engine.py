"""The matching engine: the same rules as the service, arrival order, one outcome per race, ownership,
rebuilds, and the acknowledgement only after the commit (a lost one replayed, never applied twice)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from core.errors import DomainError
from exchange.engine import client as engine_client
from exchange.engine import engine as engine_module
from exchange.engine.book import Book
from exchange.engine.engine import Engine
from exchange.engine.transport import LocalTransport, use_transport
from exchange.errors import EngineUnavailable, InsufficientAvailable
from exchange.models import BookWriter, Hold, Order, OrderStatus, Trade
from exchange.services import order_batch
from exchange.services.fills import ORDER_FILL_COLUMNS
from exchange.services.listings import market_rules_update
from exchange.services.orders import order_cancel
from tests.helpers.concurrency import run_workers
from tests.helpers.ledger import assert_reconciled, balance, snapshot
from tests.helpers.market import make_exchange


@pytest.fixture
def ex():
    return make_exchange()


@pytest.fixture
def local():
    """A private in-process intake, so no test sees another's requests or engines."""
    via = LocalTransport()
    use_transport(via)
    yield via
    use_transport(None)


def request(op, actor, asset, **args):
    return {
        "id": uuid.uuid4().hex,
        "op": op,
        "asset": asset.pk,
        "actor": dataclasses.asdict(actor),
        "args": args,
        "replay": args.pop("replay", False),
        "deadline": time.time() + 60,
    }


def place(actor, account, asset, side, price_fen, quantity, cid, mode="listing", **extra):
    return request(
        "place",
        actor,
        asset,
        account=account.pk,
        side=side,
        mode=mode,
        price_fen=price_fen,
        quantity=quantity,
        client_order_id=cid,
        **extra,
    )


def verify_audit_clean() -> None:
    out = StringIO()
    call_command("verify_audit", "--no-progress", stdout=out)
    assert "the trail is intact" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.usefixtures("in_session")
class TestApply:
    def test_a_batch_matches_in_arrival_order_and_holds_stay_exact(self, ex, local):
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        _, b1_acc, b1 = ex.trader("Buyer1", cash_fen=10_000_000)
        _, b2_acc, b2 = ex.trader("Buyer2", cash_fen=10_000_000)
        engine = Engine(via=local)
        assert engine.claim() == [ex.cea.pk]

        replies = dict(
            engine.process(
                [
                    sell := place(seller, seller_acc, ex.cea, "sell", 8000, 100, "s1"),
                    first := place(b1, b1_acc, ex.cea, "buy", 8000, 60, "b1"),
                    second := place(b2, b2_acc, ex.cea, "buy", 8100, 60, "b2"),
                ]
            )
        )

        assert all(replies[r["id"]]["ok"] for r in (sell, first, second))
        sold = Order.objects.get(pk=replies[sell["id"]]["order"])
        assert (sold.status, sold.filled) == (OrderStatus.FILLED, 100)
        fills = list(Trade.objects.order_by("id").values_list("buy_order_id", "price_fen", "quantity"))
        assert fills == [(replies[first["id"]]["order"], 8000, 60), (replies[second["id"]]["order"], 8000, 40)]
        rest = Order.objects.get(pk=replies[second["id"]]["order"])
        assert (rest.status, rest.remaining) == (OrderStatus.OPEN, 20)
        # The seller's hold is exactly what was sold; a fill never exceeds it.
        assert Hold.objects.get(pk=sold.hold_id).quantity == 100
        assert balance(seller_acc, ex.cea) == (1000, 100)
        assert engine.books[ex.cea.pk].snapshot() == Book.load(ex.cea.pk).snapshot()
        assert_reconciled()
        verify_audit_clean()

    def test_a_refused_order_changes_nothing_and_the_rest_of_the_batch_applies(self, ex, local):
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
        engine = Engine(via=local)
        engine.claim()
        before = snapshot()

        bad, good = (
            place(seller, seller_acc, ex.cea, "sell", 8000, 2000, "s1"),
            place(buyer, buyer_acc, ex.cea, "buy", 8000, 10, "b1"),
        )
        replies = dict(engine.process([bad, good]))

        assert replies[bad["id"]]["ok"] is False
        with pytest.raises(InsufficientAvailable):
            raise engine_client._error(replies[bad["id"]]["error"])
        assert replies[good["id"]]["ok"] is True
        assert Order.objects.filter(client_order_id="s1").count() == 0
        assert balance(seller_acc, ex.cea) == (1000, 0)
        assert snapshot()["events"] == before["events"] + 1  # the good order's event only
        assert [r[3] for r in engine.books[ex.cea.pk].snapshot()] == [replies[good["id"]]["order"]]

    def test_a_batch_never_reserves_more_than_is_available_and_no_fill_exceeds_its_hold(self, ex, local):
        """Two buys of one buyer in one batch: the second would need more cash than the first left available, and
        is refused as order_place refuses it; the first fills from two sells of the same batch within its hold."""
        _, s1_acc, s1 = ex.trader("Seller1", units=100)
        _, s2_acc, s2 = ex.trader("Seller2", units=100)
        _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=900_000)  # one buy of 100 t at 80 yuan and its fee
        engine = Engine(via=local)
        engine.claim()

        replies = dict(
            engine.process(
                [
                    a := place(s1, s1_acc, ex.cea, "sell", 7900, 60, "s1"),
                    b := place(s2, s2_acc, ex.cea, "sell", 8000, 60, "s2"),
                    first := place(buyer, buyer_acc, ex.cea, "buy", 8000, 100, "b1"),
                    second := place(buyer, buyer_acc, ex.cea, "buy", 8000, 100, "b2"),
                ]
            )
        )

        assert [replies[r["id"]]["ok"] for r in (a, b, first)] == [True, True, True]
        assert replies[second["id"]]["error"]["code"] == "insufficient_available"
        bought = Order.objects.get(pk=replies[first["id"]]["order"])
        hold = Hold.objects.get(pk=bought.hold_id)
        fills = list(Trade.objects.filter(buy_order=bought).order_by("id").values_list("price_fen", "quantity"))
        assert fills == [(7900, 60), (8000, 40)]
        assert bought.filled_turnover_fen + bought.fee_fen <= hold.quantity
        for trade in Trade.objects.all():
            assert trade.quantity <= Hold.objects.get(pk=trade.sell_order.hold_id).quantity
        assert balance(buyer_acc, ex.cny) == (900_000, hold.quantity)
        assert Order.objects.filter(client_order_id="b2").count() == 0
        assert engine.books[ex.cea.pk].snapshot() == Book.load(ex.cea.pk).snapshot()
        assert_reconciled()
        verify_audit_clean()

    @pytest.mark.parametrize("cancel_first", [True, False])
    def test_a_cancel_racing_a_fill_has_one_outcome(self, ex, local, cancel_first):
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
        engine = Engine(via=local)
        engine.claim()
        ((_, ack),) = engine.process([place(seller, seller_acc, ex.cea, "sell", 8000, 100, "s1")])
        resting = ack["order"]

        cancel = request("cancel", seller, ex.cea, order=resting)
        buy = place(buyer, buyer_acc, ex.cea, "buy", 8000, 100, "b1")
        replies = dict(engine.process([cancel, buy] if cancel_first else [buy, cancel]))

        order = Order.objects.get(pk=resting)
        if cancel_first:
            assert replies[cancel["id"]]["ok"]
            assert order.status == OrderStatus.CANCELLED
            assert Trade.objects.count() == 0
            assert balance(seller_acc, ex.cea) == (1000, 0)  # the hold released
            assert [r[3] for r in engine.books[ex.cea.pk].snapshot()] == [replies[buy["id"]]["order"]]
        else:
            assert order.status == OrderStatus.FILLED
            assert Trade.objects.count() == 1
            assert replies[cancel["id"]]["error"]["code"] == "order_not_open"
            assert balance(seller_acc, ex.cea) == (1000, 100)  # held for settlement
            assert engine.books[ex.cea.pk].snapshot() == []
        assert engine.books[ex.cea.pk].snapshot() == Book.load(ex.cea.pk).snapshot()
        assert_reconciled()

    def test_a_write_outside_the_engine_makes_it_rebuild_its_book(self, ex, local):
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        _, buyer_acc, buyer = ex.trader("Buyer", cash_fen=10_000_000)
        engine = Engine(via=local)
        engine.claim()
        ((_, ack),) = engine.process([place(seller, seller_acc, ex.cea, "sell", 8000, 100, "s1")])

        order_cancel(actor=seller, order=Order.objects.get(pk=ack["order"]))  # not through the engine
        assert BookWriter.objects.get(asset=ex.cea).foreign_writes == 1
        ((_, bought),) = engine.process([place(buyer, buyer_acc, ex.cea, "buy", 8000, 100, "b1")])

        assert bought["trades"] == []
        assert Trade.objects.count() == 0
        assert engine.books[ex.cea.pk].snapshot() == Book.load(ex.cea.pk).snapshot()
        assert_reconciled()

    def test_a_rulebook_published_is_in_force_for_the_next_batch(self, ex, local, monkeypatch):
        """The engine keeps an instrument's rules between batches, but a version published (or the listing
        changed) reaches the next batch at once, however long the rules would otherwise be kept."""
        from exchange.services import order_batch

        monkeypatch.setattr(order_batch, "RULES_SECONDS", 3600.0)
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        engine = Engine(via=local)
        engine.claim()
        ((_, first),) = engine.process([place(seller, seller_acc, ex.cea, "sell", 8000, 10, "s1")])
        assert first["ok"] is True
        assert engine.rules[ex.cea.pk].rules.rulebook.lot != 100

        ex.rules_change(lot=100)
        before = snapshot()
        ((_, second),) = engine.process([place(seller, seller_acc, ex.cea, "sell", 8000, 10, "s2")])

        assert second["ok"] is False
        assert second["error"]["code"] == "invalid_lot"
        assert snapshot() == before
        assert balance(seller_acc, ex.cea) == (1000, 10)
        ((_, third),) = engine.process([place(seller, seller_acc, ex.cea, "sell", 8000, 100, "s3")])
        assert third["ok"] is True

        market_rules_update(actor=ex.operator, rules=ex.rules, tradable=False)
        ((_, delisted),) = engine.process([place(seller, seller_acc, ex.cea, "sell", 8000, 100, "s4")])
        assert delisted["ok"] is False
        assert delisted["error"]["code"] == "asset_not_tradable"
        assert balance(seller_acc, ex.cea) == (1000, 110)

    def test_a_restarted_engine_rebuilds_the_same_book(self, ex, local):
        traders = [ex.trader(f"T{i}", units=1000, cash_fen=50_000_000) for i in range(4)]
        engine = Engine(via=local)
        engine.claim()
        batch = []
        for i in range(40):
            _, account, actor = traders[i % 4]
            side = "buy" if i % 3 else "sell"
            price = 7900 + (i * 37) % 200
            batch.append(place(actor, account, ex.cea, side, price, 10 + i % 7, f"o{i}"))
        engine.process(batch[:25])
        engine.process(batch[25:])
        kept = engine.books[ex.cea.pk].snapshot()
        assert kept
        assert Trade.objects.exists()
        engine.release()

        again = Engine(via=local)
        assert again.claim() == [ex.cea.pk]
        assert again.books[ex.cea.pk].snapshot() == kept
        assert BookWriter.objects.get(asset=ex.cea).epoch == 2
        assert_reconciled()

    def test_an_expired_request_is_not_applied(self, ex, local):
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        engine = Engine(via=local)
        engine.claim()
        late = place(seller, seller_acc, ex.cea, "sell", 8000, 100, "s1")
        late["deadline"] = time.time() - 1
        assert dict(engine.process([late]))[late["id"]] == {"ok": False, "expired": True}
        assert not Order.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("in_session")
def test_the_api_refuses_with_503_when_no_engine_owns_the_book(ex, local, settings):
    from tests.helpers.api import client_for, error_of

    settings.GREENLEDGER = {**settings.GREENLEDGER, "ORDER_ENGINE": True}
    _, seller_acc, seller = ex.trader("Seller", units=500)
    client = client_for(seller)
    before = snapshot()
    answer = client.post(
        "/api/v1/orders",
        {"account": seller_acc.number, "asset": ex.cea.code, "side": "sell", "price": "80.00", "quantity": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="s-1",
    )
    assert error_of(answer) == (503, "engine_unavailable")
    assert answer["Retry-After"] == "1"
    assert snapshot() == before


# --- with the engine running in a thread, clients in others --------------------------------------------------
@pytest.fixture
def running(local):
    engines: list[tuple[Engine, threading.Thread]] = []

    def start(*, owns: bool = True) -> Engine:
        engine = Engine(via=local)

        def run() -> None:
            try:
                engine.run()
            except BaseException as exc:  # the engine "killed": its thread ends, as a process would
                engine.died = exc  # type: ignore[attr-defined]
            finally:
                connection.close()

        thread = threading.Thread(target=run, name="engine", daemon=True)
        thread.start()
        engines.append((engine, thread))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            (engine.owned and all(local.is_alive(a) for a in engine.owned)) if owns else engine._refreshed
        ):
            time.sleep(0.01)
        return engine

    yield start
    for engine, thread in engines:
        engine.stop()
        thread.join(10)


@pytest.mark.django_db(transaction=True)
class TestRunning:
    @pytest.fixture(autouse=True)
    def _session(self, in_session):
        return None

    def test_two_clients_take_one_listing_at_once(self, running):
        ex = make_exchange()
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        buyers = [ex.trader(f"Buyer{i}", cash_fen=10_000_000) for i in range(2)]
        running()
        engine_client.place(
            actor=seller,
            account_id=seller_acc.pk,
            asset_id=ex.cea.pk,
            side="sell",
            mode="listing",
            price_fen=8000,
            quantity=100,
            client_order_id="s1",
        )

        def take(i: int) -> list[str]:
            _, account, actor = buyers[i]
            ack = engine_client.place(
                actor=actor,
                account_id=account.pk,
                asset_id=ex.cea.pk,
                side="buy",
                mode="listing",
                price_fen=8000,
                quantity=100,
                client_order_id=f"b{i}",
            )
            return [f"trades={len(ack['trades'])}"]

        outcomes = run_workers(2, take)

        assert sorted(outcomes) == ["trades=0", "trades=1"]
        assert list(Trade.objects.values_list("quantity", flat=True)) == [100]
        assert Order.objects.filter(side="buy", status=OrderStatus.OPEN).count() == 1
        assert_reconciled()
        verify_audit_clean()

    def test_killed_between_commit_and_acks_then_restarted(self, running, monkeypatch):
        ex = make_exchange()
        _, seller_acc, seller = ex.trader("Seller", units=1000)
        monkeypatch.setattr(engine_client, "ACK_SECONDS", 0.5)

        class Killed(BaseException):
            pass

        def die(point: str) -> None:
            if point == "engine.committed":
                raise Killed(point)

        monkeypatch.setattr(engine_module, "crash_point", die)
        first = running()
        terms = dict(
            actor=seller,
            account_id=seller_acc.pk,
            asset_id=ex.cea.pk,
            side="sell",
            mode="listing",
            price_fen=8000,
            quantity=100,
            client_order_id="s1",
            replay=True,
        )
        with pytest.raises(EngineUnavailable) as unacked:
            engine_client.place(**terms)  # committed, never acknowledged: the engine died
        assert str(unacked.value.message) == str(engine_client.NO_ACK_MESSAGE)  # not "the order was not taken"
        deadline = time.monotonic() + 10
        while first.owned and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Order.objects.filter(client_order_id="s1").count() == 1

        monkeypatch.setattr(engine_module, "crash_point", lambda point: None)
        running()  # restarted: rebuilds the book, the committed order in it
        ack = engine_client.place(**terms)  # the client's retry with its Idempotency-Key
        assert ack["replayed"] is True
        assert Order.objects.filter(client_order_id="s1").count() == 1
        assert balance(seller_acc, ex.cea) == (1000, 100)  # held once
        with pytest.raises(DomainError) as refused:  # the same id for other terms is still refused
            engine_client.place(**{**terms, "quantity": 50})
        assert refused.value.code == "duplicate_client_order_id"
        assert_reconciled()
        verify_audit_clean()

    def test_two_engines_never_own_one_book(self, running):
        make_exchange()
        first = running()
        second = running(owns=False)
        assert first.owned
        assert not second.owned


@pytest.mark.parametrize(
    ("side", "price", "expected"),
    [("buy", 150, [1, 2]), ("buy", 99, []), ("sell", 150, [4, 5]), ("sell", 201, [])],
)
def test_the_book_offers_only_the_crossing_levels_best_price_then_oldest(side, price, expected):
    """Sells rest at 100 (ids 1, 2) and 200 (3); buys at 200 (4) and 150 (5). No database: the book alone."""
    book = Book(asset_id=7)
    for pk, s, p in [(1, "sell", 100), (2, "sell", 100), (3, "sell", 200), (5, "buy", 150), (4, "buy", 200)]:
        book.add(Order(pk=pk, asset_id=7, participant_id=pk, side=s, mode="listing", price_fen=p, quantity=1, filled=0))
    incoming = Order(asset_id=7, participant_id=99, side=side, mode="listing", price_fen=price, quantity=9, filled=0)
    assert [o.pk for o in book.crossing(incoming)] == expected


@pytest.mark.parametrize(
    ("model", "columns"),
    [(Hold, order_batch.HOLD_COLUMNS), (Order, order_batch.ORDER_COLUMNS), (Trade, order_batch.TRADE_COLUMNS)],
)
def test_the_batch_statement_writes_every_column_of_its_tables(model, columns):
    """``greenledger_order_batch`` takes a batch's rows column by column: a column the model gains must be written
    by it too, or the batch's rows would differ from the ones ``order_place`` writes."""
    written = [name for _, names in columns for name in names]
    assert sorted(written) == sorted(f.attname for f in model._meta.concrete_fields if not f.generated)
    assert len(set(written)) == len(written)


def test_the_batch_statement_writes_every_fill_column():
    written = [name for _, names in order_batch.FILL_COLUMNS for name in names]
    assert written == ["id", *(name for name, _ in ORDER_FILL_COLUMNS)]
