"""Pledge loans for tests: an exchange with CEA-2024 listed at 80.00, a borrower with units, a bank.

The default loan: 500 t pledged for a principal of 24,000.00 yuan (LTV 60% at 80.00; other quantities
in proportion), 3.85% a year,
LTV limit 70%, margin call 80%, liquidation 90%, starting on the IN_SESSION day (Wed 2026-11-25).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from accounts.models import ParticipantKind
from core import clock
from exchange.models import Account, PledgeAmendment, PledgeLoan
from exchange.services.day_close import day_close
from exchange.services.listings import asset_list
from exchange.services.pledges import pledge_confirm, pledge_default, pledge_register, pledge_request
from tests.helpers.ledger import actor_for, make_market
from tests.helpers.market import IN_SESSION, REFERENCE_FEN, Exchange, make_exchange

DAY = IN_SESSION.date()  # Wednesday 2026-11-25, China time
PRINCIPAL_FEN = 2_400_000


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """A moment on ``day`` in China time (10:00 is in the morning session)."""
    return datetime.combine(day, time(hour, minute), tzinfo=clock.MARKET_TZ)


@dataclass
class Pledges:
    ex: Exchange
    borrower: Any  # (participant, account, actor)
    bank: Any

    @property
    def cea(self):
        return self.ex.cea

    @property
    def account(self) -> Account:
        return self.borrower[1]

    @property
    def bank_account(self) -> Account:
        return self.bank[1]

    def request(self, quantity: int = 500, *, borrower: Any = None, **terms: Any) -> PledgeLoan:
        _, account, actor = borrower or self.borrower
        values = {
            "principal_fen": quantity * PRINCIPAL_FEN // 500,  # 48.00 yuan a tonne: LTV 60% at 80.00
            "annual_rate_bp": 385,
            "start_date": DAY,
            "maturity_date": DAY.replace(year=DAY.year + 1),
            "ltv_limit_bp": 7000,
            "margin_call_bp": 8000,
            "liquidation_bp": 9000,
            **terms,
        }
        return pledge_request(
            actor=actor,
            account=account,
            lender=self.bank[0],
            asset=self.cea,
            quantity=quantity,
            **values,
        )

    def applied(self, quantity: int = 500, **terms: Any) -> PledgeLoan:
        """Applied for jointly: the borrower's request, confirmed by the lender with the same terms."""
        loan = self.request(quantity, **terms)
        return pledge_confirm(actor=self.bank[2], loan=loan, terms_digest=loan.terms_digest)

    def register(self, loan: PledgeLoan) -> PledgeLoan:
        """The registry registers a joint application."""
        return pledge_register(actor=self.ex.market.registry_actor, loan=loan)

    def registered(self, quantity: int = 500, **terms: Any) -> PledgeLoan:
        return self.register(self.applied(quantity, **terms))

    def top_up(self, loan: PledgeLoan, quantity: int, serials: tuple[int, int] | None = None) -> PledgeAmendment:
        """A top-up, the one way: the borrower applies for the amendment, the lender confirms, the registry
        registers it (the units are frozen then)."""
        from exchange.services.pledges.amendments import (
            pledge_amendment_confirm,
            pledge_amendment_register,
            pledge_amendment_request,
        )

        applied = pledge_amendment_request(
            actor=self.borrower[2], loan=loan, kind="top_up", quantity=quantity, serials=serials
        )
        pledge_amendment_confirm(actor=self.bank[2], amendment=applied, terms_digest=applied.terms_digest)
        return pledge_amendment_register(actor=self.ex.market.registry_actor, amendment=applied)

    def defaulted(self, quantity: int = 500, **terms: Any) -> PledgeLoan:
        """Registered on DAY, maturing the next day, declared in default (matured) two days after DAY."""
        with clock.pinned(at(DAY)):
            loan = self.registered(quantity, maturity_date=DAY + timedelta(days=1), **terms)
        with clock.pinned(at(DAY + timedelta(days=2))):
            return pledge_default(actor=self.bank[2], loan=loan)

    def close_at(self, day: date, price_fen: int) -> None:
        """Make ``price_fen`` the close of ``day``: one listing trade of 1 t, then the day's close."""
        seller = self.ex.trader("Market maker S", units=0)
        if not getattr(self, "_maker_funded", False):
            self.ex.market.give(seller[1], 100)
            self.ex.deposit(self.ex.trader("Market maker B")[1], 100_000_000)
            self._maker_funded = True
        buyer = self.ex.trader("Market maker B")
        with clock.pinned(at(day)):
            self.ex.order(seller[2], seller[1], "sell", price_fen, 1)
            self.ex.order(buyer[2], buyer[1], "buy", price_fen, 1)
            day_close(asset=self.cea, day=day)


def make_pledges(units: int = 1000) -> Pledges:
    ex = make_exchange()
    borrower = ex.trader("Jingneng", units=units)
    bank = ex.trader("Bank of Beijing", kind=ParticipantKind.FINANCIAL_INSTITUTION)
    return Pledges(ex=ex, borrower=borrower, bank=bank)


def make_national_pledges(units: int = 1000) -> Pledges:
    """The same parties on the national allowance market (CN-CEA, the shipped rulebook): no continuous
    book, listing agreement 09:30-11:30 and 13:00-15:00, block agreement from 100,000 t."""
    market = make_market()
    operator = actor_for(market.holder("Shanghai exchange", kind=ParticipantKind.EXCHANGE)[0])
    with clock.pinned(at(DAY, 9)):
        listed = asset_list(actor=operator, asset=market.cea, reference_price_fen=REFERENCE_FEN)
    ex = Exchange(market=market, rules=listed, operator=operator)
    borrower = ex.trader("Jingneng", units=units)
    bank = ex.trader("Bank of Beijing", kind=ParticipantKind.FINANCIAL_INSTITUTION)
    return Pledges(ex=ex, borrower=borrower, bank=bank)


def admin_pledge_request_form(ps, account, lender) -> dict[str, object]:
    """The admin's pledge request form as a borrower fills it in: money in yuan, rates in percent."""
    return {
        "account": account.pk,
        "lender": lender.pk,
        "asset": ps.cea.pk,
        "quantity": 100,
        "principal_fen": "4,800.00",  # yuan, as people enter money
        "annual_rate_bp": "3.85",  # percent
        "day_count": "act/360",
        "start_date": "2026-11-25",
        "maturity_date": "2027-11-25",
        "ltv_limit_bp": "70",
        "margin_call_bp": "80",
        "liquidation_bp": "90",
        "cure_period_days": 3,
    }
