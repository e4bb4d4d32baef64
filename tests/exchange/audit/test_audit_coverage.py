"""No business change without its audit event: every service is walked and must write one.

A service added without a scenario here fails ``test_every_service_has_a_scenario``; a scenario whose
service writes no event fails ``test_each_service_writes_an_event`` (and the ``@service`` decorator
itself refuses such a call at run time, shown by ``test_unaudited_change_is_refused``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from datetime import date

import pytest
from django.contrib.auth import get_user_model

import accounts.services
import exchange.services
from accounts.actors import Actor
from accounts.models import Membership, ParticipantKind, Role
from core.errors import MissingAuditEvent
from exchange.models import Account, Project
from exchange.services.audit import SERVICES, recording_service_calls, service
from tests.factories import AccountFactory, ParticipantFactory, UserFactory
from tests.helpers.ledger import Market, actor_for, make_market

pytestmark = pytest.mark.django_db


def _import_all_services() -> None:
    for module in pkgutil.walk_packages(exchange.services.__path__, prefix="exchange.services."):
        importlib.import_module(module.name)
    importlib.import_module(accounts.services.__name__)


def _forest_project(m: Market) -> Project:
    from exchange.services.issuance import project_register

    owner = ParticipantFactory(kind=ParticipantKind.PROJECT_OWNER)
    AccountFactory(number=f"CN-T-{owner.pk}", participant=owner)
    return project_register(
        actor=m.registry_actor,
        code=f"P-{owner.pk}",
        name="Forest",
        project_type="forestry",
        methodology="M",
        location="Tongzhou",
        owner=owner,
        crediting_start=date(2020, 1, 1),
        crediting_end=date(2040, 1, 1),
    )


def _covered(m: Market, year: int = 2024):
    from exchange.services import compliance as comp

    compliance_year = comp.compliance_year_create(actor=m.registry_actor, year=year)
    participant, account, actor = m.holder("Holder")
    [obligation] = comp.entities_cover(actor=m.registry_actor, year=compliance_year, entities=[participant])
    return compliance_year, obligation, account, actor


def _surrender(m: Market):
    from exchange.services import compliance as comp

    _, obligation, account, actor = _covered(m)
    comp.emissions_record(actor=m.registry_actor, obligation=obligation, quantity=100)
    m.give(account, 100)
    return comp.surrender_create(
        actor=actor, account=account, year=2024, items=[comp.SurrenderLine(asset=m.cea, quantity=10)]
    )


def _rules():
    from exchange.services import compliance_rules

    return compliance_rules


def _allocation_rule(m: Market):
    from exchange.services import compliance as comp

    return comp.allocation_rule_set(
        actor=m.registry_actor,
        year=2024,
        sector="",
        stage="final",
        method="verified_emissions",
        effective_from=date(2025, 1, 1),
        source="plan",
    )


def _verified(m: Market):
    from exchange.services import compliance as comp

    compliance_year, obligation, account, actor = _covered(m)
    comp.emissions_record(actor=m.registry_actor, obligation=obligation, quantity=100)
    return compliance_year, obligation, account, actor


def _short(m: Market):
    from exchange.services import compliance as comp

    _, obligation, _, _ = _covered(m, 2023)
    comp.emissions_record(actor=m.registry_actor, obligation=obligation, quantity=100)
    comp.compliance_deadlines_run(today=date(2025, 1, 1))
    obligation.refresh_from_db()
    return obligation


def _preallocate(m: Market):
    from exchange.services import compliance as comp

    _, earlier, _, _ = _covered(m, 2023)
    comp.emissions_record(actor=m.registry_actor, obligation=earlier, quantity=100)
    compliance_year = comp.compliance_year_create(actor=m.registry_actor, year=2024)
    comp.entities_cover(actor=m.registry_actor, year=compliance_year, entities=[earlier.entity])
    return comp.preallocation_run(actor=m.registry_actor, year=compliance_year)


def _scenarios() -> dict[str, Callable[[Market], object]]:
    from accounts import services as a
    from exchange.services import accounts as acc
    from exchange.services import issuance as iss
    from exchange.services import retirement as ret
    from exchange.services import transfers as tr

    def holder(m: Market):
        return m.holder("Holder")

    def with_units(m: Market):
        participant, account, actor = holder(m)
        m.give(account, 100)
        return participant, account, actor

    return {
        "accounts.services.participant_create": lambda m: a.participant_create(
            actor=m.registry_actor, name="New entity", kind="compliance_entity", uscc="91110000MA00000051"
        ),
        "accounts.services.participant_suspend": lambda m: a.participant_suspend(
            actor=m.registry_actor, participant=holder(m)[0], reason="r"
        ),
        "accounts.services.participant_reactivate": lambda m: a.participant_reactivate(
            actor=m.registry_actor, participant=holder(m)[0], reason="r"
        ),
        "accounts.services.participant_update": lambda m: a.participant_update(
            actor=m.registry_actor, participant=holder(m)[0], name="Renamed", email="x@example.cn"
        ),
        "accounts.services.membership_create": lambda m: a.membership_create(
            actor=m.registry_actor, user=UserFactory(), participant=holder(m)[0], role=Role.VIEWER
        ),
        "accounts.services.membership_set_role": lambda m: a.membership_set_role(
            actor=m.registry_actor, membership=Membership.objects.get(participant=holder(m)[0]), role=Role.VIEWER
        ),
        "accounts.services.api_token_create": lambda m: a.api_token_create(
            actor=Actor.system("test"),
            user=get_user_model().objects.get(membership__participant=holder(m)[0]),
            name="t",
        ),
        "accounts.services.api_token_revoke": lambda m: a.api_token_revoke(
            actor=Actor.system("test"),
            token=a.api_token_create(
                actor=Actor.system("test"),
                user=get_user_model().objects.get(membership__participant=holder(m)[0]),
                name="t",
            )[0],
        ),
        "exchange.services.accounts.account_open": lambda m: acc.account_open(
            actor=m.registry_actor, participant=holder(m)[0], name="second"
        ),
        "exchange.services.issuance.project_register": _forest_project,
        "exchange.services.issuance.ccer_issue": lambda m: iss.ccer_issue(
            actor=m.registry_actor,
            project=_forest_project(m),
            vintage=2023,
            monitoring_start=date(2021, 1, 1),
            monitoring_end=date(2021, 12, 31),
            quantity=10,
            external_reference="REF-1",
        ),
        "exchange.services.issuance.cea_vintage_create": lambda m: iss.cea_vintage_create(
            actor=m.registry_actor, vintage=2031
        ),
        "exchange.services.issuance.cea_allocate": lambda m: m.give(holder(m)[1], 10),
        "exchange.services.transfers.transfer_create": lambda m: tr.transfer_create(
            actor=with_units(m)[2], source=holder(m)[1], destination=m.holder("Other")[1], asset=m.cea, quantity=5
        ),
        "exchange.services.transfers.transfers_batch_create": lambda m: tr.transfers_batch_create(
            actor=with_units(m)[2],
            transfers=[tr.TransferOrder(holder(m)[1], m.holder("Other")[1], m.cea, 5)] * 2,
        ),
        "exchange.services.retirement.retirement_create": lambda m: ret.retirement_create(
            actor=with_units(m)[2], account=holder(m)[1], asset=m.cea, quantity=5, beneficiary="b", reason="r"
        ),
        "exchange.services.retirement.units_cancel": lambda m: ret.units_cancel(
            actor=m.registry_actor, account=with_units(m)[1], asset=m.cea, quantity=5, reason="correction"
        ),
        **_market_scenarios(),
        **_approval_scenarios(),
        **_trust_scenarios(),
        **_calendar_scenarios(),
        **_registry_rule_scenarios(),
        **_webhook_scenarios(),
    }


def _calendar_scenarios() -> dict[str, Callable[[Market], object]]:
    from exchange.services import calendar as cal

    def loaded(m: Market):
        return cal.calendar_year_load(actor=m.registry_actor, code="CN", year=2026)

    def holiday(m: Market):
        loaded(m)
        return cal.calendar_day_set(
            actor=m.registry_actor, code="CN", day=date(2026, 11, 24), kind="holiday", name_en="Extra day off"
        )

    return {
        "exchange.services.calendar.calendar_year_load": loaded,
        "exchange.services.calendar.calendar_day_set": holiday,
        "exchange.services.calendar.calendar_day_remove": lambda m: (
            holiday(m),
            cal.calendar_day_remove(actor=m.registry_actor, code="CN", day=date(2026, 11, 24)),
        ),
    }


def _trust_scenarios() -> dict[str, Callable[[Market], object]]:
    from django.conf import settings
    from django.test import override_settings

    from accounts.models import Role
    from exchange.services import transfers as tr
    from exchange.services import trust as tu
    from tests.helpers.ledger import actor_for

    def proposed(m: Market):
        sender, _, admin = m.holder("Truster")
        return tu.trusted_account_propose(actor=admin, account=m.holder("Trusted")[1]), sender

    def pending(m: Market, delay: int = 3600):
        _, account, actor = m.holder("Sender")
        m.give(account, 10)
        config = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True, "PENDING_TRANSFER_DELAY_SECONDS": delay}
        with override_settings(GREENLEDGER=config):
            return tr.transfer_create(
                actor=actor, source=account, destination=m.holder("Receiver")[1], asset=m.cea, quantity=5
            ), actor

    def approved(m: Market):
        entry, truster = proposed(m)
        return tu.trusted_account_approve(actor=actor_for(truster, Role.ADMIN), entry=entry)

    return {
        "exchange.services.trust.trusted_account_propose": proposed,
        "exchange.services.trust.trusted_account_approve": approved,
        "exchange.services.trust.trusted_account_remove": lambda m: tu.trusted_account_remove(
            actor=m.holder("Truster")[2], entry=proposed(m)[0]
        ),
        "exchange.services.trust.pending_transfer_cancel": lambda m: tu.pending_transfer_cancel(
            actor=(p := pending(m))[1], pending=p[0]
        ),
        "exchange.services.trust.pending_transfers_execute": lambda m: (pending(m, 0), tu.pending_transfers_execute()),
    }


def _approval_scenarios() -> dict[str, Callable[[Market], object]]:
    from exchange.models import ApprovalOperation
    from exchange.services import approvals as ap
    from tests.helpers.ledger import actor_for

    def requested(m: Market):
        _, account, _ = m.holder("Holder")
        return ap.approval_request(
            actor=m.registry_actor,
            operation=ApprovalOperation.CEA_ALLOCATE,
            params={"asset": m.cea.code, "rows": [[account.number, 5]], "idempotency_key": None, "memo": ""},
            quantity=5,
            summary="Allocate 5 t",
        )

    return {
        "exchange.services.approvals.approval_request": requested,
        "exchange.services.approvals.approval_approve": lambda m: ap.approval_approve(
            actor=actor_for(m.registry), approval=requested(m)
        ),
        "exchange.services.approvals.approval_reject": lambda m: ap.approval_reject(
            actor=actor_for(m.registry), approval=requested(m), reason="no"
        ),
        **_pledge_scenarios(),
    }


def _market_scenarios() -> dict[str, Callable[[Market], object]]:
    from core import clock
    from exchange.services import compliance as comp
    from exchange.services import settlement as st
    from exchange.services.cash import cash_deposit, cash_withdraw
    from exchange.services.day_close import day_close
    from exchange.services.listings import asset_list, market_rules_update
    from exchange.services.orders import order_cancel, order_place
    from exchange.services.session_close import orders_cancel_at_close
    from tests.helpers.market import REFERENCE_FEN

    def listed(m: Market, *, continuous: bool = True):
        """CEA-2024 listed; on a test market running the continuous book unless it stays on CN-CEA."""
        from tests.helpers.market import cda_market, on_market

        operator = m.holder("Exchange", kind=ParticipantKind.EXCHANGE)[2]
        if not hasattr(m.cea, "rules"):
            if continuous:
                on_market(m.cea, cda_market())
            asset_list(actor=operator, asset=m.cea, reference_price_fen=REFERENCE_FEN)
        return operator

    def cash(m: Market, name: str = "Buyer"):
        operator = listed(m)
        _, account, actor = m.holder(name)
        cash_deposit(actor=operator, account=account, amount_fen=10_000_000, reference=f"dep-{name}")
        return operator, account, actor

    def after_the_close():
        from core import clock
        from tests.helpers.market import IN_SESSION

        with clock.pinned(IN_SESSION.replace(hour=15)):  # the resting order's session has ended
            return orders_cancel_at_close()

    def resting_sell(m: Market):
        listed(m)
        _, account, actor = m.holder("Seller")
        m.give(account, 100)
        return order_place(
            actor=actor,
            account=account,
            asset=m.cea,
            side="sell",
            mode="listing",
            price_fen=REFERENCE_FEN,
            quantity=10,
            client_order_id="s1",
        )

    def traded(m: Market):
        resting_sell(m)
        _, account, actor = cash(m)
        return order_place(
            actor=actor,
            account=account,
            asset=m.cea,
            side="buy",
            mode="listing",
            price_fen=REFERENCE_FEN,
            quantity=10,
            client_order_id="b1",
        )

    def rulebooks_reinstalled(m: Market):
        from django.db import connection

        from exchange.services.markets import markets_install

        with connection.cursor() as cursor:  # as after a flush: the markets stay, their rulebooks are gone
            cursor.execute("TRUNCATE exchange_rulebookmode, exchange_rulebook")
        return markets_install()

    def rulebook_published(m: Market):
        from datetime import date

        from exchange.models import Market as MarketRow
        from exchange.services.markets import rulebook_publish

        market = MarketRow.objects.get(code="BJ-BEA")
        return rulebook_publish(
            actor=listed(m), market=market, effective_from=date(2099, 1, 1), changes={"alert_cancel_count": 5}
        )

    def national_pair(m: Market):
        """A seller with units and a buyer with cash on CN-CEA (make_market's CEA-2024)."""
        operator = listed(m, continuous=False)
        seller = m.holder("Seller")
        m.give(seller[1], 200_000)
        buyer = m.holder("Buyer")
        cash_deposit(actor=operator, account=buyer[1], amount_fen=10**10, reference="dep-buyer")
        return seller, buyer

    def a_listing(m: Market):
        from exchange.services.agreements import listing_post

        seller, buyer = national_pair(m)
        listing = listing_post(
            actor=seller[2],
            account=seller[1],
            asset=m.cea,
            side="sell",
            price_fen=REFERENCE_FEN,
            quantity=100,
            client_order_id="L1",
        )
        return listing, buyer

    def a_pick(m: Market):
        from exchange.services.agreements import listing_pick

        listing, buyer = a_listing(m)
        return listing_pick(actor=buyer[2], account=buyer[1], listing=listing, client_order_id="P1")

    block_time = clock.market_now().replace(year=2026, month=11, day=25, hour=13, minute=30)

    def an_offer(m: Market):
        from exchange.services.agreements import block_offer

        seller, buyer = national_pair(m)
        with clock.pinned(block_time):
            offer = block_offer(
                actor=seller[2],
                account=seller[1],
                asset=m.cea,
                side="sell",
                price_fen=REFERENCE_FEN,
                quantity=100_000,
                counterparty=buyer[0],
                client_order_id="B1",
            )
        return offer, buyer

    def block_step(name: str):
        def run(m: Market):
            from exchange.services import agreements

            offer, buyer = an_offer(m)
            with clock.pinned(block_time):
                if name == "accept":
                    return agreements.block_accept(actor=buyer[2], account=buyer[1], offer=offer, client_order_id="A1")
                if name == "decline":
                    return agreements.block_decline(actor=buyer[2], offer=offer)
                return agreements.block_counter(
                    actor=buyer[2], account=buyer[1], offer=offer, price_fen=REFERENCE_FEN - 100, client_order_id="C1"
                )

        return run

    auction_opens = clock.market_now().replace(year=2026, month=11, day=25, hour=10, minute=0)

    def an_auction(m: Market):
        from datetime import timedelta

        from exchange.services.auctions import auction_announce

        seller, buyer = national_pair(m)
        with clock.pinned(auction_opens - timedelta(minutes=20)):
            auction = auction_announce(
                actor=seller[2],
                account=seller[1],
                asset=m.cea,
                quantity=1000,
                reserve_price_fen=REFERENCE_FEN,
                opens_at=auction_opens,
                closes_at=auction_opens + timedelta(hours=1),
                client_order_id="AU1",
            )
        return auction, seller, buyer

    def a_bid(m: Market):
        from datetime import timedelta

        from exchange.services.auctions import auction_bid

        auction, seller, buyer = an_auction(m)
        with clock.pinned(auction_opens + timedelta(minutes=5)):
            auction_bid(
                actor=buyer[2],
                account=buyer[1],
                auction=auction,
                price_fen=REFERENCE_FEN,
                quantity=10,
                client_order_id="BID1",
            )
        return auction, seller

    def auction_closed(m: Market):
        from datetime import timedelta

        from exchange.services.auctions import auction_close

        auction, seller = a_bid(m)
        with clock.pinned(auction_opens + timedelta(hours=1)):
            return auction_close(actor=seller[2], auction=auction)

    return {
        "exchange.services.agreements.listing_post": a_listing,
        "exchange.services.agreements.listing_pick": a_pick,
        "exchange.services.agreements.block_offer": an_offer,
        "exchange.services.agreements.block_accept": block_step("accept"),
        "exchange.services.agreements.block_decline": block_step("decline"),
        "exchange.services.agreements.block_counter": block_step("counter"),
        "exchange.services.auctions.auction_announce": an_auction,
        "exchange.services.auctions.auction_bid": a_bid,
        "exchange.services.auctions.auction_close": auction_closed,
        "exchange.services.markets.markets_install": rulebooks_reinstalled,
        "exchange.services.markets.rulebook_publish": rulebook_published,
        "exchange.services.listings.asset_list": listed,
        "exchange.services.listings.market_rules_update": lambda m: market_rules_update(
            actor=listed(m), rules=m.cea.rules, reference_price_fen=REFERENCE_FEN + 100
        ),
        "exchange.services.cash.cash_deposit": cash,
        "exchange.services.cash.cash_withdraw": lambda m: cash_withdraw(
            actor=cash(m)[0], account=cash(m, "Other")[1], amount_fen=100, reference="w1"
        ),
        "exchange.services.orders.order_place": resting_sell,
        "exchange.services.orders.order_cancel": lambda m: order_cancel(
            actor=m.holder("Seller")[2], order=resting_sell(m).order
        ),
        "exchange.services.session_close.orders_cancel_at_close": lambda m: (resting_sell(m), after_the_close()),
        "exchange.services.day_close.day_close": lambda m: (traded(m), day_close(asset=m.cea)),
        "exchange.services.settlement.settlement_run": lambda m: (traded(m), st.settlement_run()),
        "exchange.services.obligations.compliance_year_create": lambda m: comp.compliance_year_create(
            actor=m.registry_actor, year=2030
        ),
        "exchange.services.obligations.compliance_year_update": lambda m: comp.compliance_year_update(
            actor=m.registry_actor, year=_covered(m)[0], deadline=date(2025, 6, 30)
        ),
        "exchange.services.obligations.entities_cover": _covered,
        "exchange.services.obligations.emissions_record": lambda m: comp.emissions_record(
            actor=m.registry_actor, obligation=_covered(m)[1], quantity=100
        ),
        "exchange.services.obligations.emissions_determine": lambda m: comp.emissions_determine(
            actor=m.registry_actor, obligation=_covered(m)[1], quantity=100, basis="capacity", today=date(2026, 1, 1)
        ),
        "exchange.services.allocation.preallocation_run": _preallocate,
        "exchange.services.allocation.true_up_apply": lambda m: comp.true_up_apply(
            actor=m.registry_actor, obligation=_covered(m)[1], approved=10
        ),
        "exchange.services.allocation.allocation_rule_set": _allocation_rule,
        "exchange.services.allocation.allocation_input_record": lambda m: comp.allocation_input_record(
            actor=m.registry_actor, obligation=_covered(m)[1], output=100
        ),
        "exchange.services.allocation.allocation_final_run": lambda m: (
            _allocation_rule(m),
            comp.allocation_final_run(actor=m.registry_actor, year=_verified(m)[0], today=date(2026, 1, 1)),
        ),
        "exchange.services.allocation.deduction_decide": lambda m: comp.deduction_decide(
            actor=m.registry_actor, obligation=_short(m)
        ),
        "exchange.services.compliance_rules.carryover_rule_set": lambda m: _rules().carryover_rule_set(
            actor=m.registry_actor,
            year=2024,
            base_tonnes=10_000,
            net_sales_multiple_bp=15_000,
            sales_from=date(2024, 1, 1),
            sales_to=date(2025, 12, 31),
            first_vintage=2019,
            effective_from=date(2024, 10, 1),
            source="plan",
        ),
        "exchange.services.compliance_rules.official_price_set": lambda m: _rules().official_price_set(
            actor=m.registry_actor, market="CN-ETS", month=date(2025, 12, 1), price_fen=9000, source="notice"
        ),
        "exchange.services.compliance.surrender_create": _surrender,
        "exchange.services.compliance.compliance_assess": lambda m: comp.compliance_assess(
            actor=m.registry_actor, year=_covered(m, 2023)[0], today=date(2025, 1, 1)
        ),
    }


def _pledge_scenarios() -> dict[str, Callable[[Market], object]]:
    from datetime import datetime, time, timedelta

    from core import clock
    from exchange.services import pledges as p
    from exchange.services.listings import asset_list
    from exchange.services.session_close import orders_cancel_at_close
    from tests.helpers.market import IN_SESSION, REFERENCE_FEN

    day = IN_SESSION.date()

    def later(days: int, hour: int = 10):
        return clock.pinned(datetime.combine(day + timedelta(days=days), time(hour), tzinfo=clock.MARKET_TZ))

    def requested(m: Market):
        from tests.helpers.market import cda_market, on_market

        operator = m.holder("Exchange", kind=ParticipantKind.EXCHANGE)[2]
        on_market(m.cea, cda_market())  # sales on enforcement go through the continuous book
        asset_list(actor=operator, asset=m.cea, reference_price_fen=REFERENCE_FEN)
        _, account, actor = m.holder("Borrower")
        m.give(account, 100)
        return p.pledge_request(
            actor=actor,
            account=account,
            lender=m.holder("Bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)[0],
            asset=m.cea,
            quantity=100,
            principal_fen=400_000,
            annual_rate_bp=385,
            maturity_date=day + timedelta(days=1),
            ltv_limit_bp=7000,
            margin_call_bp=8000,
            liquidation_bp=9000,
        )

    def bank(m: Market):
        return m.holder("Bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)[2]

    def registered(m: Market):
        return p.pledge_register(actor=m.registry_actor, loan=applied(m))

    def applied(m: Market):
        loan = requested(m)
        return p.pledge_confirm(actor=bank(m), loan=loan, terms_digest=loan.terms_digest)

    def defaulted(m: Market):
        loan = registered(m)
        with later(2):
            return p.pledge_default(actor=bank(m), loan=loan)

    def sale_ended(m: Market):
        loan = defaulted(m)
        with later(2):
            p.pledge_enforce(actor=bank(m), loan=loan, method="sale", price_fen=REFERENCE_FEN)
        with later(2, 15):
            orders_cancel_at_close()
            return p.pledge_sales_complete()

    def enforced(m: Market):
        loan = defaulted(m)
        with later(2):
            p.pledge_enforce(actor=bank(m), loan=loan, method="agreement", price_fen=REFERENCE_FEN)
            return p.pledge_enforcement_agree(actor=m.holder("Borrower")[2], loan=loan)

    def proposed(m: Market):
        loan = defaulted(m)
        with later(2):
            p.pledge_enforce(actor=bank(m), loan=loan, method="agreement", price_fen=REFERENCE_FEN)
            return p.pledge_enforcement_decline(actor=m.holder("Borrower")[2], loan=loan)

    def court(m: Market):
        loan = defaulted(m)
        with later(2):
            return p.pledge_enforce_court_order(
                actor=m.registry_actor,
                loan=loan,
                court_reference="(2026) Jing 0105 Min Chu 1",
                document_sha256="0" * 64,
                units_to_lender=10,
                price_fen=REFERENCE_FEN,
            )

    def compliance_requested(m: Market):
        from exchange.services import compliance as comp
        from exchange.services.pledges import compliance_release as cr

        loan = registered(m)
        year = comp.compliance_year_create(actor=m.registry_actor, year=2024)
        [obligation] = comp.entities_cover(actor=m.registry_actor, year=year, entities=[m.holder("Borrower")[0]])
        comp.emissions_record(actor=m.registry_actor, obligation=obligation, quantity=100)
        cr.pledge_compliance_release_request(actor=m.holder("Borrower")[2], loan=loan, quantity=10, year=2024)
        return loan

    def compliance_released(m: Market):
        from exchange.services.pledges import compliance_release as cr

        loan = compliance_requested(m)
        m.give(m.holder("Borrower")[1], 20)
        return cr.pledge_compliance_release_decide(actor=bank(m), loan=loan, consent=True)

    def future(m: Market):
        from exchange.services.pledges.future import pledge_request_future

        project = _forest_project(m)
        owner_actor = actor_for(project.owner)
        return pledge_request_future(
            actor=owner_actor,
            account=Account.objects.get(participant=project.owner),
            lender=m.holder("Bank", kind=ParticipantKind.FINANCIAL_INSTITUTION)[0],
            project=project,
            vintage=2025,
            quantity=100,
            price_fen=REFERENCE_FEN,
            principal_fen=400_000,
            annual_rate_bp=385,
            maturity_date=day + timedelta(days=1),
            ltv_limit_bp=7000,
            margin_call_bp=8000,
            liquidation_bp=9000,
        )

    def amendment_requested(m: Market):
        from exchange.services.pledges import amendments as am

        loan = registered(m)
        m.give(m.holder("Borrower")[1], 10)
        return am.pledge_amendment_request(actor=m.holder("Borrower")[2], loan=loan, kind="top_up", quantity=10)

    def amendment_applied(m: Market):
        from exchange.services.pledges import amendments as am

        amendment = amendment_requested(m)
        return am.pledge_amendment_confirm(actor=bank(m), amendment=amendment, terms_digest=amendment.terms_digest)

    def amendment_registered(m: Market):
        from exchange.services.pledges import amendments as am

        return am.pledge_amendment_register(actor=m.registry_actor, amendment=amendment_applied(m))

    def amendment_rejected(m: Market):
        from exchange.services.pledges import amendments as am

        return am.pledge_amendment_reject(actor=bank(m), amendment=amendment_requested(m))

    return {
        "exchange.services.pledges.amendments.pledge_amendment_request": amendment_requested,
        "exchange.services.pledges.amendments.pledge_amendment_confirm": amendment_applied,
        "exchange.services.pledges.amendments.pledge_amendment_register": amendment_registered,
        "exchange.services.pledges.amendments.pledge_amendment_reject": amendment_rejected,
        "exchange.services.pledges.future.pledge_request_future": future,
        "exchange.services.pledges.compliance_release.pledge_compliance_release_request": compliance_requested,
        "exchange.services.pledges.compliance_release.pledge_compliance_release_decide": compliance_released,
        "exchange.services.pledges.registration.pledge_request": requested,
        "exchange.services.pledges.registration.pledge_register": registered,
        "exchange.services.pledges.registration.pledge_confirm": applied,
        "exchange.services.pledges.registration.pledge_external_reference_record": lambda m: (
            p.pledge_external_reference_record(actor=bank(m), loan=registered(m), reference="0456789")
        ),
        "exchange.services.pledges.registration.pledge_reject": lambda m: p.pledge_reject(
            actor=bank(m), loan=requested(m)
        ),
        "exchange.services.pledges.registration.pledge_withdraw": lambda m: p.pledge_withdraw(
            actor=m.holder("Borrower")[2], loan=requested(m)
        ),
        "exchange.services.pledges.release.pledge_release": lambda m: p.pledge_release(
            actor=bank(m), loan=registered(m)
        ),
        "exchange.services.pledges.enforcement.pledge_default": defaulted,
        "exchange.services.pledges.enforcement.pledge_enforce": enforced,
        "exchange.services.pledges.enforcement.pledge_enforcement_agree": enforced,
        "exchange.services.pledges.enforcement.pledge_enforcement_decline": proposed,
        "exchange.services.pledges.enforcement.pledge_enforce_court_order": court,
        "exchange.services.pledges.enforcement.pledge_sales_complete": sale_ended,
        "exchange.services.pledges.valuation.pledges_value": lambda m: (registered(m), p.pledges_value()),
    }


def _registry_rule_scenarios() -> dict[str, Callable[[Market], object]]:
    from exchange.services import ccer as cc
    from exchange.services import freezes as fz
    from exchange.services import nontrade as nt
    from exchange.services.calendar import calendar_year_load
    from tests.helpers.ledger import actor_for

    doc = "a" * 64

    def frozen(m: Market):
        _, account, _ = m.holder("Holder")
        m.give(account, 10)
        return fz.judicial_freeze_create(
            actor=m.registry_actor,
            account=account,
            asset=m.cea,
            court="c",
            document_number="d",
            document_sha256=doc,
            quantity=5,
        )

    def applied_transfer(m: Market):
        _, account, actor = m.holder("Holder")
        m.give(account, 10)
        return nt.non_trade_transfer_apply(
            actor=actor,
            source=account,
            destination=m.holder("Heir")[1],
            asset=m.cea,
            quantity=5,
            legal_basis="inheritance",
            document_sha256=doc,
        )

    def seeded(m: Market):
        cc.ccer_reference_seed(actor=m.registry_actor)
        calendar_year_load(actor=m.registry_actor, code="CN", year=2026)

    def application(m: Market):
        seeded(m)
        owner, _, actor = m.holder("Owner", kind=ParticipantKind.PROJECT_OWNER)
        return cc.ccer_application_submit(
            actor=actor,
            owner=owner,
            code="AFF-1",
            name="Forest",
            project_type="forestry",
            methodology="CCER-14-001-V01",
            location="Hebei",
            start_date=date(2021, 3, 1),
            crediting_start=date(2021, 3, 1),
            crediting_end=date(2051, 2, 28),
            validation_body="V",
            validation_report_sha256=doc,
        )

    def published(m: Market):
        return cc.ccer_publicity_open(actor=m.registry_actor, target=application(m))

    def registered(m: Market):
        return cc.ccer_application_decide(
            actor=m.registry_actor, application=published(m), register=True, today=date(2027, 1, 1)
        ).project

    def claimed(m: Market):
        project = registered(m)  # first: it makes the owner a project owner
        return cc.reduction_claim_submit(
            actor=m.holder("Owner")[2],
            project=project,
            vintage=2025,
            monitoring_start=date(2025, 1, 1),
            monitoring_end=date(2025, 12, 31),
            quantity=10,
            verification_body="V",
            verification_report_sha256=doc,
        )

    return {
        "exchange.services.freezes.judicial_freeze_create": frozen,
        "exchange.services.freezes.judicial_freeze_release": lambda m: fz.judicial_freeze_release(
            actor=m.registry_actor, freeze=frozen(m), document_number="r", document_sha256=doc
        ),
        "exchange.services.freezes.judicial_freeze_seize": lambda m: fz.judicial_freeze_seize(
            actor=m.registry_actor,
            freeze=frozen(m),
            destination=m.holder("Creditor")[1],
            document_number="s",
            document_sha256=doc,
        ),
        "exchange.services.nontrade.non_trade_transfer_apply": applied_transfer,
        "exchange.services.nontrade.non_trade_transfer_review": lambda m: nt.non_trade_transfer_review(
            actor=m.registry_actor, transfer=applied_transfer(m)
        ),
        "exchange.services.nontrade.non_trade_transfer_reject": lambda m: nt.non_trade_transfer_reject(
            actor=actor_for(m.registry), transfer=applied_transfer(m), reason="no"
        ),
        "exchange.services.ccer.ccer_reference_seed": seeded,
        "exchange.services.ccer.ccer_rule_add": lambda m: cc.ccer_rule_add(
            actor=m.registry_actor, **{**cc.RULE_2023, "effective_from": date(2030, 1, 1)}
        ),
        "exchange.services.ccer.methodology_add": lambda m: cc.methodology_add(
            actor=m.registry_actor, code="CCER-03-001-V01", name="Mine methane", project_type="methane"
        ),
        "exchange.services.ccer.methodology_set_active": lambda m: (
            seeded(m),
            cc.methodology_set_active(
                actor=m.registry_actor, methodology=cc.Methodology.objects.get(code="CCER-14-001-V01"), active=False
            ),
        ),
        "exchange.services.ccer.ccer_application_submit": application,
        "exchange.services.ccer.ccer_publicity_open": published,
        "exchange.services.ccer.ccer_comment_add": lambda m: cc.ccer_comment_add(
            actor=m.holder("Neighbour")[2], target=published(m), text="comment"
        ),
        "exchange.services.ccer.ccer_application_decide": registered,
        "exchange.services.ccer.reduction_claim_submit": claimed,
        "exchange.services.ccer.reduction_claim_decide": lambda m: cc.reduction_claim_decide(
            actor=m.registry_actor,
            claim=cc.ccer_publicity_open(actor=m.registry_actor, target=claimed(m)),
            issue=True,
            today=date(2027, 6, 1),
        ),
    }


def _webhook_scenarios() -> dict[str, Callable[[Market], object]]:
    from exchange.services import webhooks as wh

    def admin(m: Market):
        return m.holder("Holder")[2]

    def endpoint(m: Market):
        return wh.webhook_endpoint_create(
            actor=admin(m), url="https://hooks.example.com/in", types=["transfer.executed"]
        )

    def disabled(m: Market):
        return wh.webhook_endpoint_disable(actor=admin(m), endpoint_id=endpoint(m).pk)

    return {
        "exchange.services.webhooks.webhook_endpoint_create": endpoint,
        "exchange.services.webhooks.webhook_endpoint_disable": disabled,
        "exchange.services.webhooks.webhook_endpoint_enable": lambda m: wh.webhook_endpoint_enable(
            actor=admin(m), endpoint_id=disabled(m).pk
        ),
    }


def _audited_services() -> set[str]:
    _import_all_services()
    return {name for name, fn in SERVICES.items() if fn.audited and not name.startswith("tests.")}


def test_every_service_has_a_scenario():
    missing = _audited_services() - set(_scenarios())
    assert missing == set(), f"services without an audit scenario here: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(_scenarios()))
def test_each_service_writes_an_event(name):
    from core import clock
    from tests.helpers.market import IN_SESSION

    with clock.pinned(IN_SESSION):
        market = make_market()
        with recording_service_calls() as calls:
            _scenarios()[name](market)

    own = [call for call in calls if call.name == name]
    assert own, f"the scenario did not call {name}"
    assert all(call.events > 0 for call in own), f"{name} completed without writing an audit event"


def test_unaudited_change_is_refused():
    market = make_market()

    @service
    def silent_rename(*, participant_id: int) -> None:
        from accounts.models import Participant

        Participant.objects.filter(pk=participant_id).update(name="changed silently")

    with pytest.raises(MissingAuditEvent):
        silent_rename(participant_id=market.registry.pk)
    market.registry.refresh_from_db()
    assert market.registry.name == "National carbon registry"
