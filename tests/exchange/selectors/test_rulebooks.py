"""The market rulebooks: the shipped versions, the version in effect on a day, publishing a new one."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.db import DatabaseError, transaction

from accounts.models import ParticipantKind
from core import clock
from core.errors import InvalidInput
from exchange.errors import RulebookNotFound
from exchange.models import Asset, AuditEvent, Market, Rulebook, RulebookMode
from exchange.selectors.rulebooks import block_minimums, rulebook_for, rulebook_latest
from exchange.services.issuance import cea_vintage_create
from exchange.services.markets import markets_install, rulebook_payload, rulebook_publish
from tests.factories import ParticipantFactory
from tests.helpers.ledger import actor_for, make_market

pytestmark = pytest.mark.django_db


def test_the_three_markets_ship_with_their_sourced_rules():
    markets_install()
    cea, ccer, bea = (rulebook_for(code, date(2026, 11, 25)) for code in ("CN-CEA", "CN-CCER", "BJ-BEA"))
    assert sorted(cea.mode_names) == ["auction", "block", "listing"]
    block = cea.mode("block")
    assert (block.sessions, block.min_quantity, block.band_bp) == ("13:00-15:00", 100_000, 3000)
    listing = cea.mode("listing")
    assert (listing.band_bp, listing.max_quantity) == (1000, 99_999)
    assert cea.allowed_kinds == ["compliance_entity"]
    assert cea.legal_persons_only
    assert {"registry", "exchange", "verifier"} <= set(cea.barred_kinds)
    assert (cea.settlement_body, cea.units_sellable_after_days, cea.cash_withdrawable_after_days) == ("registry", 1, 1)
    assert ccer.legal_persons_only
    assert "investor" in ccer.allowed_kinds
    assert ccer.participant_transfers == "non_trade_only"
    assert ccer.pledge_valuation_band_bp == 1000
    assert bea.mode("continuous").band_bp == 2000
    assert bea.mode("listing") is None
    assert (bea.position_limit_rule, bea.position_limit_t) == ("allocation_plus", 1_000_000)
    assert all(book.sources for book in (cea, ccer, bea))
    assert all(book.sale_cash_buys_same_day for book in (cea, ccer, bea))  # cash from sales buys on T


def test_instruments_belong_to_their_market():
    market = make_market()
    assert market.cea.market.code == "CN-CEA"
    bea = cea_vintage_create(actor=market.registry_actor, vintage=2025, market="BJ-BEA")
    assert (bea.code, bea.market.code) == ("BEA-2025", "BJ-BEA")
    assert rulebook_for(bea).market.code == "BJ-BEA"


def test_no_rulebook_before_the_first_version_or_without_a_market():
    markets_install()
    with pytest.raises(RulebookNotFound) as refused:
        rulebook_for("CN-CCER", date(2023, 12, 31))
    assert refused.value.code == "rulebook_not_found"
    cash = Asset.objects.create(code="CNY", kind="cash", name="Renminbi", serialised=False)
    with pytest.raises(RulebookNotFound):
        rulebook_for(cash)


def test_a_new_version_governs_from_its_day_and_is_audited():
    markets_install()
    exchange = actor_for(ParticipantFactory(kind=ParticipantKind.EXCHANGE))
    market = Market.objects.get(code="BJ-BEA")
    with clock.pinned(clock.market_now().replace(year=2026, month=11, day=25)):
        book = rulebook_publish(
            actor=exchange, market=market, effective_from=date(2026, 12, 1), changes={"position_limit_t": 500_000}
        )
    assert book.version == 2
    assert rulebook_for(market, date(2026, 11, 30)).position_limit_t == 1_000_000
    assert rulebook_for(market, date(2026, 12, 1)).position_limit_t == 500_000
    assert sorted(rulebook_for(market, date(2026, 12, 1)).mode_names) == ["auction", "block", "continuous"]
    event = AuditEvent.objects.get(action="market.rulebook_publish")
    assert json.loads(event.payload)["changes"] == {"position_limit_t": ["1000000", "500000"]}


def test_publishing_refuses_a_past_start_and_unknown_rules_and_changes_nothing():
    markets_install()
    exchange = actor_for(ParticipantFactory(kind=ParticipantKind.EXCHANGE))
    market = Market.objects.get(code="CN-CEA")
    before = (Rulebook.objects.count(), RulebookMode.objects.count(), AuditEvent.objects.count())
    with pytest.raises(InvalidInput):
        rulebook_publish(actor=exchange, market=market, effective_from=date(2020, 1, 1))
    with pytest.raises(InvalidInput):
        rulebook_publish(actor=exchange, market=market, effective_from=date(2099, 1, 1), changes={"colour": "red"})
    assert (Rulebook.objects.count(), RulebookMode.objects.count(), AuditEvent.objects.count()) == before


def test_the_database_refuses_editing_a_version_in_effect():
    markets_install()
    book = rulebook_for("CN-CEA")
    with pytest.raises(DatabaseError), transaction.atomic():
        Rulebook.objects.filter(pk=book.pk).update(tick_fen=5)
    with pytest.raises(DatabaseError), transaction.atomic():
        RulebookMode.objects.filter(rulebook=book).update(band_bp=5000)


def test_the_demo_block_size_is_the_block_agreements_minimum_in_the_rulebook_in_effect():
    # Given the Beijing pilot's instrument and a later version with a larger block minimum
    market = make_market()
    cea_vintage_create(actor=market.registry_actor, vintage=2025, market="BJ-BEA")
    exchange = actor_for(ParticipantFactory(kind=ParticipantKind.EXCHANGE))
    bea = Market.objects.get(code="BJ-BEA")
    modes = [
        {**m, "min_quantity": 20_000} if m["mode"] == "block" else m
        for m in rulebook_payload(rulebook_for(bea))["modes"]
    ]
    with clock.pinned(clock.market_now().replace(year=2026, month=11, day=25)):
        book = rulebook_publish(actor=exchange, market=bea, effective_from=date(2026, 12, 1), modes=modes)

    # Then the size the demo offers is the minimum in effect on the day; the national CEA's is 100,000 t
    assert block_minimums(["BEA-2025", "CEA-2024", "NONE-1"], date(2026, 11, 30)) == {
        "BEA-2025": 10_000,
        "CEA-2024": 100_000,
    }
    assert block_minimums(["BEA-2025"], date(2026, 12, 1)) == {"BEA-2025": 20_000}
    # and a new version starts from the latest one, read by the one selector
    assert rulebook_latest(bea) == book
