import pytest
from accounts.actors import Actor
from exchange.services.ledger import Leg, journal_open, ledger_post
from tests.ledger import make_market, blocks, assert_reconciled, balance
pytestmark = pytest.mark.django_db

def test_chain():
    m = make_market()
    _, a, _ = m.holder("A"); _, b, _ = m.holder("B"); _, c, _ = m.holder("C")
    m.give(a, 100)
    txn, _ = journal_open(kind="transfer", actor=Actor.system("t"), idempotency_key=None, request={})
    ledger_post(txn, [Leg(m.cea, a, b, 10), Leg(m.cea, b, c, 10)])
    print(blocks(m.cea))
    assert_reconciled()
