"""Populating the bench database quickly: participants, users, accounts, units and cash.

People and accounts are created in bulk with the ORM; units and cash always arrive through the ledger
(``cea_allocate`` and one deposit entry), so balances, serial blocks and the journal agree.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.actors import Actor
from accounts.models import Membership, Participant, ParticipantKind, ParticipantStatus, Role
from accounts.validators import make_uscc
from exchange.models import Account, AccountKind, Asset, TransactionKind
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record
from exchange.services.cash import cash_asset
from exchange.services.issuance import AllocationRow, cea_allocate, cea_vintage_create
from exchange.services.ledger import Leg, journal_open, ledger_post

_serial = itertools.count(1)


@dataclass(frozen=True)
class Holder:
    participant: Participant
    account: Account
    actor: Actor


@dataclass
class World:
    registry: Actor
    cea: Asset

    @property
    def cny(self) -> Asset:
        return cash_asset()


def _participant(name: str, kind: str) -> tuple[Participant, Actor]:
    n = next(_serial)
    participant = Participant.objects.create(name=name, kind=kind, uscc=make_uscc(f"9111{n:013d}"))
    user = get_user_model().objects.create(username=f"bench-{n}")
    Membership.objects.create(user=user, participant=participant, role=Role.ADMIN)
    actor = Actor(user.pk, participant.pk, kind, Role.ADMIN, ParticipantStatus.ACTIVE)
    return participant, actor


def _free_transfers() -> None:
    """Give each shipped market a rulebook version, from the day after its first, in which any holder transfers
    to any holder (``participant_transfers = free``, no trusted-list delay): the bench measures the transfer
    path itself, which China's markets reach only through a reviewed non-trade transfer."""
    from datetime import timedelta

    from django.forms.models import model_to_dict

    from exchange.models import Market, Rulebook, RulebookMode
    from exchange.services.markets import MODE_FIELDS, RULE_FIELDS

    for market in Market.objects.all():
        books = list(Rulebook.objects.filter(market=market).order_by("version"))
        if not books or books[-1].participant_transfers == "free":
            continue
        latest = books[-1]
        fields = model_to_dict(latest, fields=RULE_FIELDS) | {
            "participant_transfers": "free",
            "trusted_accounts": False,
            "transfer_delay_hours": 0,
        }
        book = Rulebook.objects.create(
            market=market,
            version=latest.version + 1,
            effective_from=max(b.effective_from for b in books) + timedelta(days=1)
            if len(books) > 1
            else books[0].effective_from + timedelta(days=1),
            created_by="bench",
            **fields,
        )
        RulebookMode.objects.bulk_create(
            [RulebookMode(rulebook=book, **{f: getattr(m, f) for f in MODE_FIELDS}) for m in latest.modes.all()]
        )


def world() -> World:
    _free_transfers()
    _, registry = _participant("National carbon registry", ParticipantKind.REGISTRY)
    cea = cea_vintage_create(actor=registry, vintage=2024)
    return World(registry=registry, cea=cea)


def holders(count: int, kind: str = ParticipantKind.COMPLIANCE_ENTITY, label: str = "holder") -> list[Holder]:
    """``count`` participants, each with an admin user and one holding account (in bulk)."""
    User = get_user_model()
    start = next(_serial)
    for _ in range(count):
        next(_serial)
    with transaction.atomic():
        participants = Participant.objects.bulk_create(
            Participant(name=f"{label} {i}", kind=kind, uscc=make_uscc(f"9111{start + i:013d}")) for i in range(count)
        )
        users = User.objects.bulk_create(User(username=f"bench-{label}-{start + i}") for i in range(count))
        Membership.objects.bulk_create(
            Membership(user=u, participant=p, role=Role.ADMIN) for u, p in zip(users, participants, strict=True)
        )
        accounts = Account.objects.bulk_create(
            Account(number=f"CN-9{start + i:08d}", kind=AccountKind.HOLDING, participant=p, name=p.name)
            for i, p in enumerate(participants)
        )
    return [
        Holder(p, a, Actor(u.pk, p.pk, kind, Role.ADMIN, ParticipantStatus.ACTIVE))
        for p, a, u in zip(participants, accounts, users, strict=True)
    ]


def give_units(w: World, accounts: list[Account], each: int) -> None:
    """Allocate ``each`` allowances to every account, in one allocation (one journal entry)."""
    for start in range(0, len(accounts), 5000):
        chunk = accounts[start : start + 5000]
        cea_allocate(actor=w.registry, asset=w.cea, rows=[AllocationRow(account=a, quantity=each) for a in chunk])


def give_cash(w: World, accounts: list[Account], each_fen: int) -> None:
    """Deposit ``each_fen`` into every account as one journal entry (as the exchange books deposits)."""
    cash = cash_asset()
    issuance = system_account(AccountKind.ISSUANCE)
    actor = Actor.system("bench")
    with transaction.atomic():
        txn, _ = journal_open(
            kind=TransactionKind.DEPOSIT, actor=actor, idempotency_key=None, request={"n": len(accounts)}
        )
        posted = ledger_post(txn, [Leg(cash, issuance, a, each_fen) for a in accounts])
        # The event states its entry, as every posting service's does (reconcile's invariant 5 asks it).
        payload = {"accounts": len(accounts), "entry_digest": posted.digest}
        audit_record(actor=actor, action="cash.deposit", obj=txn, payload=payload)
