"""Factories for tests. Ledger state is made through the services (see ``tests.helpers.ledger``), never by
writing balances or blocks directly."""

from __future__ import annotations

from datetime import date
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Membership, Participant, ParticipantKind, Role
from accounts.validators import make_uscc
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    AssetKind,
    DailyPrice,
    IdempotentRequest,
    Order,
    Side,
    Trade,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.cn")
    password = factory.django.Password("correct horse battery staple")


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    name = factory.Sequence(lambda n: f"Participant {n}")
    kind = ParticipantKind.COMPLIANCE_ENTITY
    uscc = factory.Sequence(lambda n: make_uscc(f"91110000{n:09d}"))
    email = factory.Sequence(lambda n: f"desk{n}@example.cn")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    participant = factory.SubFactory(ParticipantFactory)
    role = Role.ADMIN


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    number = factory.Sequence(lambda n: f"CN-900-{n:06d}")
    kind = AccountKind.HOLDING
    participant = factory.SubFactory(ParticipantFactory)
    name = factory.LazyAttribute(lambda a: f"{a.participant.name} account")


class CashAssetFactory(factory.django.DjangoModelFactory):
    """The renminbi, the one cash asset: every call gives the same row."""

    class Meta:
        model = Asset
        django_get_or_create = ("code",)

    code = "CNY"
    kind = AssetKind.CASH
    name = "Renminbi"
    serialised = False


class DailyPriceFactory(factory.django.DjangoModelFactory):
    """A day's close as the daily close job writes it; ``close_from_trades`` False means a carried close."""

    class Meta:
        model = DailyPrice

    day = date(2024, 11, 29)
    close_fen = 6000
    close_from_trades = False
    computed_at = factory.LazyFunction(timezone.now)


class IdempotentRequestFactory(factory.django.DjangoModelFactory):
    """A stored answer to a keyed request, as the idempotency claim leaves it after a success."""

    class Meta:
        model = IdempotentRequest

    scope = "participant:1"
    key = factory.Sequence(lambda n: f"key-{n}")
    method = "POST"
    path = "/api/v1/transfers"
    request_hash = "0" * 64
    status = 201
    body = "{}"
    created_at = factory.LazyFunction(timezone.now)


class OrderFactory(factory.django.DjangoModelFactory):
    """An order row over a hold the caller placed (``hold``); matching never sees it unless it is open."""

    class Meta:
        model = Order

    participant = factory.LazyAttribute(lambda o: o.account.participant)
    side = Side.BUY
    mode = "listing"
    client_order_id = factory.Sequence(lambda n: f"order-{n}")
    created_at = factory.LazyFunction(timezone.now)


class TradeFactory(factory.django.DjangoModelFactory):
    """A matched, unsettled trade between two orders; fees zero unless given."""

    class Meta:
        model = Trade

    asset = factory.LazyAttribute(lambda t: t.sell_order.asset)
    mode = factory.LazyAttribute(lambda t: t.sell_order.mode)
    aggressor = Side.BUY
    price_fen = factory.LazyAttribute(lambda t: t.sell_order.price_fen)
    quantity = factory.LazyAttribute(lambda t: t.sell_order.quantity)
    turnover_fen = factory.LazyAttribute(lambda t: t.price_fen * t.quantity)
    buyer_fee_fen = 0
    seller_fee_fen = 0
    trading_day = factory.LazyAttribute(lambda t: t.sell_order.trading_day)
    created_at = factory.LazyFunction(timezone.now)


def make_trade(
    *,
    asset: Any,
    seller: Account,
    buyer: Account,
    quantity: int,
    price_fen: int,
    day: date,
    mode: str = "listing",
) -> Any:
    """A matched trade (not settled) between two accounts, with the orders and holds a real one has.

    The seller must hold ``quantity`` available units; the buyer is given the cash it needs.
    """
    from django.db import transaction

    from accounts.actors import Actor
    from exchange.models import HoldKind, TransactionKind
    from exchange.services.accounts import system_account
    from exchange.services.ledger import Leg, hold_place, journal_open, ledger_post

    turnover = price_fen * quantity
    with transaction.atomic():
        cny = CashAssetFactory()
        deposit, _ = journal_open(
            kind=TransactionKind.DEPOSIT, actor=Actor.system("tests"), idempotency_key=None, request={}
        )
        ledger_post(deposit, [Leg(cny, system_account(AccountKind.ISSUANCE), buyer, turnover)])
        orders = {}
        sides = ((Side.SELL, seller, asset, quantity), (Side.BUY, buyer, cny, turnover))
        for side, account, held, amount in sides:
            hold = hold_place(
                account=account, asset=held, quantity=amount, kind=HoldKind.ORDER, reference=f"test:{side}"
            )
            orders[side] = OrderFactory(
                account=account,
                asset=asset,
                side=side,
                mode=mode,
                price_fen=price_fen,
                quantity=quantity,
                client_order_id=f"test-{side}-{hold.pk}",
                hold=hold,
                trading_day=day,
            )
        return TradeFactory(buy_order=orders[Side.BUY], sell_order=orders[Side.SELL])
