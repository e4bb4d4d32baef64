"""``manage.py settle``: settlement on demand, with progress on stderr and a one-line summary."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from exchange.models import SettlementBatch
from tests.helpers.ledger import balance
from tests.helpers.market import make_exchange

pytestmark = pytest.mark.django_db


def _settle(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("settle", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def traded():
    exchange = make_exchange()
    _, seller, seller_actor = exchange.trader("Seller", units=1_000)
    _, buyer, buyer_actor = exchange.trader("Buyer", cash_fen=10_000_000)
    from core import clock
    from tests.helpers.market import IN_SESSION

    with clock.pinned(IN_SESSION):
        exchange.order(seller_actor, seller, "sell", 8000, 400)
        exchange.order(buyer_actor, buyer, "buy", 8000, 400)
    return exchange, seller, buyer, buyer_actor


def test_settle_settles_every_trade_and_says_so(traded):
    exchange, seller, buyer, _ = traded

    out, err = _settle("--key", "eod-1")
    again, _ = _settle("--key", "eod-1")

    assert err.splitlines() == ["[1/2] 1 unsettled trade, 400 t in 1 asset", "[2/2] settling in one batch ..."]
    batch = SettlementBatch.objects.get()
    assert out.startswith(f"settle: batch {batch.pk} (Completed): 1 trade, 400 t, 32,000.00 yuan, fees 384.00 yuan, ")
    assert again.startswith(f"settle: batch {batch.pk} (Completed): ")
    assert balance(buyer, exchange.cea) == (400, 0)
    assert balance(seller, exchange.cea) == (600, 0)


def test_settle_with_nothing_to_settle_is_an_empty_batch():
    out, _ = _settle()

    assert out.startswith("settle: batch ")
    assert " (Nothing to settle): 0 trades" in out


def test_settle_as_a_non_exchange_user_is_refused(traded):
    *_, buyer_actor = traded
    username = get_user_model().objects.get(pk=buyer_actor.user_id).username

    with pytest.raises(CommandError) as refused:
        _settle("--as", username)

    assert str(refused.value).endswith("(wrong_participant_kind)")
    assert not SettlementBatch.objects.exists()
