"""An exchange for tests: a listed CEA vintage, traders with units and cash, the clock pinned in a session.

The vintage trades on a test market (``XT-CDA``) whose rulebook runs the continuous double auction with the
engine's long-standing defaults (sessions 09:30-11:30 and 13:00-15:00 on weekdays, tick 0.01, lot 1, block
orders from 100,000 t in the book, bands 10 % and 30 %, fee 0.6 % a side) and delivers on the day
(``units_sellable_after_days`` 0), so a test can trade and settle in one session. Tests of the national
markets' rules use the shipped rulebooks (CN-CEA, CN-CCER, BJ-BEA) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from accounts.models import ParticipantKind
from core import clock
from exchange.models import Account, Asset, MarketRules, Rulebook, RulebookMode
from exchange.models import Market as MarketRow
from exchange.services.cash import cash_asset, cash_deposit
from exchange.services.listings import asset_list
from exchange.services.orders import order_place
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

    def rules_change(self, modes: list[dict[str, Any]] | None = None, **changes: Any) -> Rulebook:
        """Publish a new version of the test market's rulebook, in effect from today (the pinned clock)."""
        from exchange.services.markets import rulebook_publish

        self.cea.refresh_from_db()
        return rulebook_publish(
            actor=self.operator,
            market=self.cea.market,
            effective_from=clock.trading_day(),
            changes=changes,
            modes=modes,
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


RULEBOOK_KEYS = {
    "tick_fen",
    "lot",
    "trading_days",
    "units_sellable_after_days",
    "allowed_kinds",
    "barred_kinds",
    "participant_transfers",
    "trusted_accounts",
    "transfer_delay_hours",
}


def cda_market(code: str = "XT-CDA", *, sessions: str = "09:30-11:30,13:00-15:00", **rules: Any) -> MarketRow:
    """A market for tests whose rulebook (effective since 2000) runs the continuous double auction and, like
    ``free_transfers``'s test rulebooks, lets any holder transfer to any holder (``participant_transfers =
    free``) with the trusted list as the deployment's ``TRUSTED_ACCOUNTS`` says; tests of China's transfer
    rules build their market with ``make_market(china_transfer_rules=True)``."""
    market, created = MarketRow.objects.get_or_create(
        code=code, defaults={"name": f"Test market {code}", "operator_name": "Test exchange"}
    )
    if created:
        book = Rulebook.objects.create(
            market=market,
            version=1,
            effective_from=date(2000, 1, 1),
            title="Test continuous market",
            sources="tests/helpers/market.py",
            trading_days=rules.pop("trading_days", "weekdays"),
            units_sellable_after_days=rules.pop("units_sellable_after_days", 0),
            cash_withdrawable_after_days=0,
            # The rules the ledger tests were written for, as ``free_transfers`` gives the shipped markets: any
            # holder transfers to any holder, the trusted list as the deployment's TRUSTED_ACCOUNTS says (the
            # model's defaults are now China's: non-trade transfers only, no trusted list).
            participant_transfers=rules.pop("participant_transfers", "free"),
            trusted_accounts=rules.pop("trusted_accounts", True),
            **{k: v for k, v in rules.items() if k in RULEBOOK_KEYS},
        )
        block_sessions = rules.get("block_sessions", sessions)
        RulebookMode.objects.bulk_create(
            [
                RulebookMode(
                    rulebook=book,
                    mode="continuous",
                    sessions=sessions,
                    band_bp=1000,
                    min_quantity=1,
                    buyer_fee_bp=rules.get("fee_bp", 60),
                    seller_fee_bp=rules.get("fee_bp", 60),
                ),
                RulebookMode(
                    rulebook=book,
                    mode="block",
                    sessions=block_sessions,
                    band_bp=3000,
                    min_quantity=100_000,
                    buyer_fee_bp=rules.get("fee_bp", 60),
                    seller_fee_bp=rules.get("fee_bp", 60),
                ),
            ]
        )
    return market


def on_market(asset: Asset, market: MarketRow) -> Asset:
    Asset.objects.filter(pk=asset.pk).update(market=market)
    asset.market = market
    return asset


def make_exchange(**rules: Any) -> Exchange:
    """A listed CEA vintage on a continuous test market; ``rules`` are that market's rulebook values
    (``sessions``, ``trading_days``, ``tick_fen``, ``lot``, ``fee_bp``, ...)."""
    market = make_market()
    code = "XT-CDA" if not rules else "XT-" + format(abs(hash(tuple(sorted(rules.items())))) % 10**8, "d")
    on_market(market.cea, cda_market(code, **rules))
    operator_participant = market.holder("Beijing Green Exchange", kind=ParticipantKind.EXCHANGE)[0]
    operator = actor_for(operator_participant)
    listed = asset_list(actor=operator, asset=market.cea, reference_price_fen=REFERENCE_FEN)
    return Exchange(market=market, rules=listed, operator=operator)
