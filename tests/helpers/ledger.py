"""Building ledger state for tests through the real services, and reading it back compactly."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind, Role
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    AuditEvent,
    Balance,
    Posting,
    SerialBlock,
    Transaction,
)
from exchange.selectors.reconcile import reconcile
from exchange.services.issuance import AllocationRow, cea_allocate, cea_vintage_create
from tests.factories import AccountFactory, MembershipFactory, ParticipantFactory


def actor_for(participant: Participant, role: str = Role.ADMIN) -> Actor:
    membership = MembershipFactory(participant=participant, role=role)
    return Actor.for_user(membership.user)


@dataclass
class Market:
    """A registry, a CEA vintage and holders with accounts; ``give`` allocates units to an account."""

    registry: Participant
    registry_actor: Actor
    cea: Asset
    holders: dict[str, tuple[Participant, Account, Actor]] = field(default_factory=dict)

    def holder(
        self, name: str, kind: str = ParticipantKind.COMPLIANCE_ENTITY
    ) -> tuple[Participant, Account, Actor]:
        if name not in self.holders:
            participant = ParticipantFactory(name=name, kind=kind)
            account = AccountFactory(participant=participant)
            self.holders[name] = (participant, account, actor_for(participant))
        return self.holders[name]

    def give(self, account: Account, quantity: int, asset: Asset | None = None) -> Transaction:
        return cea_allocate(
            actor=self.registry_actor,
            asset=asset or self.cea,
            rows=[AllocationRow(account=account, quantity=quantity)],
        )


def free_transfers() -> None:
    """Give each shipped market a test rulebook version, from the day after its first, in which any holder
    transfers to any holder (``participant_transfers = free``) and the trusted list applies as the
    deployment's ``TRUSTED_ACCOUNTS`` says: the rules most ledger tests were written for. Tests of China's
    transfer rules build their market with ``make_market(china_transfer_rules=True)``."""
    from datetime import timedelta

    from django.forms.models import model_to_dict

    from exchange.models import Market, Rulebook, RulebookMode
    from exchange.services.markets import MODE_FIELDS, RULE_FIELDS

    for market in Market.objects.all():
        books = list(Rulebook.objects.filter(market=market).order_by("version"))
        if not books or books[-1].participant_transfers == "free":
            continue
        first, latest = books[0], books[-1]
        fields = model_to_dict(latest, fields=RULE_FIELDS) | {
            "participant_transfers": "free",
            "trusted_accounts": True,
            "transfer_delay_hours": 0,
        }
        book = Rulebook.objects.create(
            market=market,
            version=latest.version + 1,
            effective_from=max(b.effective_from for b in books) + timedelta(days=1)
            if len(books) > 1
            else first.effective_from + timedelta(days=1),
            created_by="tests",
            **fields,
        )
        RulebookMode.objects.bulk_create(
            [RulebookMode(rulebook=book, **{f: getattr(m, f) for f in MODE_FIELDS}) for m in latest.modes.all()]
        )
    # Check the new rows' foreign keys now rather than at commit, so that a test may still TRUNCATE the
    # rulebooks (PostgreSQL refuses that with trigger events pending); every deferred constraint is
    # INITIALLY DEFERRED, so ALL DEFERRED restores them as they were.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def make_market(vintage: int = 2024, *, china_transfer_rules: bool = False) -> Market:
    from exchange.services.markets import markets_install

    markets_install()  # the shipped markets and rulebooks (migration 0120's), gone after a flush
    if not china_transfer_rules:
        free_transfers()
    registry = ParticipantFactory(name="National carbon registry", kind=ParticipantKind.REGISTRY)
    registry_actor = actor_for(registry)
    cea = cea_vintage_create(actor=registry_actor, vintage=vintage)
    return Market(registry=registry, registry_actor=registry_actor, cea=cea)


def balance(account: Account, asset: Asset) -> tuple[int, int]:
    """(total, held) of the account in the asset; (0, 0) when it never held any."""
    row = Balance.objects.filter(account=account, asset=asset).values_list("total", "held").first()
    return row or (0, 0)


def blocks(asset: Asset, account: Account | None = None) -> list[tuple[int, int, str, str]]:
    """Serial blocks as (first, last, account number, state), in serial order."""
    queryset = SerialBlock.objects.filter(asset=asset).select_related("account").order_by("first")
    if account is not None:
        queryset = queryset.filter(account=account)
    return [(b.first, b.last, b.account.number, b.state) for b in queryset]


def snapshot() -> dict[str, object]:
    """Everything a refused operation must leave unchanged."""
    return {
        "balances": sorted(Balance.objects.values_list("account_id", "asset_id", "total", "held")),
        "blocks": sorted(
            SerialBlock.objects.values_list("asset_id", "first", "last", "account_id", "state", "hold_id")
        ),
        "transactions": Transaction.objects.count(),
        "postings": Posting.objects.count(),
        "events": AuditEvent.objects.count(),
    }


def assert_reconciled() -> None:
    violations = [str(v) for v in reconcile()]
    assert violations == [], violations


def system(kind: str) -> Account:
    return Account.objects.get(kind=kind)


__all__ = [
    "AccountKind",
    "Market",
    "actor_for",
    "assert_reconciled",
    "balance",
    "blocks",
    "make_market",
    "snapshot",
    "system",
]
