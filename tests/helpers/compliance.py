"""Building compliance state for tests through the real services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from exchange.models import Account, Asset, ComplianceYear, Obligation
from exchange.services.compliance import (
    SurrenderLine,
    compliance_year_create,
    emissions_record,
    entities_cover,
    surrender_create,
)
from exchange.services.issuance import ccer_issue, project_register
from tests.factories import ParticipantFactory
from tests.helpers.ledger import Market, actor_for, make_market


@dataclass
class Entity:
    participant: Participant
    account: Account
    actor: Actor
    obligation: Obligation


@dataclass
class Cycle:
    """A market with a compliance year; ``entity`` covers a holder, ``verify`` records its emissions."""

    market: Market
    year: ComplianceYear
    verifier: Actor

    @property
    def registry(self) -> Actor:
        return self.market.registry_actor

    def entity(
        self, name: str, *, emissions: int | None = None, year: ComplianceYear | None = None, sector: str = ""
    ) -> Entity:
        participant, account, actor = self.market.holder(name)
        [obligation] = entities_cover(
            actor=self.registry, year=year or self.year, entities=[participant], sector=sector
        )
        if emissions is not None:
            emissions_record(actor=self.verifier, obligation=obligation, quantity=emissions, report_reference="VR-1")
        return Entity(participant, account, actor, obligation)

    def surrender(self, entity: Entity, *items: tuple[Asset, int], year: int | None = None, key: str | None = None):
        return surrender_create(
            actor=entity.actor,
            account=entity.account,
            year=year or self.year.year,
            items=[SurrenderLine(asset, quantity) for asset, quantity in items],
            idempotency_key=key,
        )

    def ccer(self, owner: Entity, quantity: int, *, ets_covered: bool = False, code: str = "FOREST-1") -> Asset:
        """A CCER batch (vintage 2023) of a project the entity owns, issued into its account."""
        project = project_register(
            actor=self.registry,
            code=code,
            name=f"Project {code}",
            project_type="forestry",
            methodology="CCER-14-001-V01",
            location="Tongzhou",
            owner=owner.participant,
            crediting_start=date(2020, 1, 1),
            crediting_end=date(2040, 12, 31),
            ets_covered=ets_covered,
        )
        issuance = ccer_issue(
            actor=self.registry,
            project=project,
            vintage=2023,
            monitoring_start=date(2021, 1, 1),
            monitoring_end=date(2023, 12, 31),
            quantity=quantity,
            external_reference=f"ISS-{code}",
        )
        return issuance.asset


def make_cycle(year: int = 2024, **options: object) -> Cycle:
    market = make_market(year)
    compliance_year = compliance_year_create(actor=market.registry_actor, year=year, **options)
    verifier = actor_for(ParticipantFactory(name="China Quality Certification Centre", kind=ParticipantKind.VERIFIER))
    return Cycle(market=market, year=compliance_year, verifier=verifier)
