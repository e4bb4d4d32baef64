"""Factories for tests. Ledger state is made through the services (see ``tests.helpers.ledger``), never by
writing balances or blocks directly."""

from __future__ import annotations

from datetime import date
from typing import Any

import factory
from django.contrib.auth import get_user_model

from accounts.models import Membership, Participant, ParticipantKind, Role
from accounts.validators import make_uscc
from exchange.models import Account, AccountKind


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
    from django.utils import timezone

    from accounts.actors import Actor
    from exchange.models import Asset, AssetKind, HoldKind, Order, Side, Trade, TransactionKind
    from exchange.services.accounts import system_account
    from exchange.services.ledger import Leg, hold_place, journal_open, ledger_post

    now = timezone.now()
    turnover = price_fen * quantity
    with transaction.atomic():
        cny, _ = Asset.objects.get_or_create(
            code="CNY", defaults={"kind": AssetKind.CASH, "name": "Renminbi", "serialised": False}
        )
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
            orders[side] = Order.objects.create(
                participant=account.participant,
                account=account,
                asset=asset,
                side=side,
                mode=mode,
                price_fen=price_fen,
                quantity=quantity,
                client_order_id=f"test-{side}-{hold.pk}",
                hold=hold,
                trading_day=day,
                created_at=now,
            )
        return Trade.objects.create(
            asset=asset,
            mode=mode,
            buy_order=orders[Side.BUY],
            sell_order=orders[Side.SELL],
            aggressor=Side.BUY,
            price_fen=price_fen,
            quantity=quantity,
            turnover_fen=turnover,
            buyer_fee_fen=0,
            seller_fee_fen=0,
            trading_day=day,
            created_at=now,
        )
