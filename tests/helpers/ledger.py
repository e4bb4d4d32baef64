"""Building ledger state for tests through the real services, and reading it back compactly."""

from __future__ import annotations

from dataclasses import dataclass, field

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


def make_market(vintage: int = 2024) -> Market:
    from exchange.services.markets import markets_install

    markets_install()  # the shipped markets and rulebooks (migration 0120's), gone after a flush
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
