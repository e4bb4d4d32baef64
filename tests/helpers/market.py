"""An exchange for tests: a listed CEA vintage, traders with units and cash, the clock pinned in a session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import ParticipantKind
from core import clock
from exchange.models import Account, Asset, MarketRules
from exchange.services.trading import asset_list, cash_asset, cash_deposit, order_place
from tests.helpers.ledger import Market, actor_for, make_market

# A Wednesday, 10:00 China time: the morning session is open.
IN_SESSION = datetime(2026, 11, 25, 10, 0, tzinfo=clock.MARKET_TZ)
REFERENCE_FEN = 8000  # 80.00 yuan a tonne


@dataclass
class Exchange:
    market: Market
    rules: MarketRules
    operator: object

    @property
    def cea(self) -> Asset:
        return self.market.cea

    @property
    def cny(self) -> Asset:
        return cash_asset()

    def trader(self, name: str, *, units: int = 0, cash_fen: int = 0, kind: str = ParticipantKind.COMPLIANCE_ENTITY):
        participant, account, actor = self.market.holder(name, kind=kind)
        if units:
            self.market.give(account, units)
        if cash_fen:
            self.deposit(account, cash_fen)
        return participant, account, actor

    def deposit(self, account: Account, amount_fen: int) -> None:
        cash_deposit(
            actor=self.operator,
            account=account,
            amount_fen=amount_fen,
            reference=f"dep-{account.pk}-{amount_fen}-{id(object())}",
        )

    def order(self, actor, account, side, price_fen, quantity, *, mode="listing", client_order_id=None, asset=None):
        self._n = getattr(self, "_n", 0) + 1
        return order_place(
            actor=actor,
            account=account,
            asset=asset or self.cea,
            side=side,
            mode=mode,
            price_fen=price_fen,
            quantity=quantity,
            client_order_id=client_order_id or f"c{self._n}",
        )


def make_exchange(**rules) -> Exchange:
    market = make_market()
    operator_participant = market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0]
    operator = actor_for(operator_participant)
    listed = asset_list(actor=operator, asset=market.cea, reference_price_fen=REFERENCE_FEN, **rules)
    return Exchange(market=market, rules=listed, operator=operator)
