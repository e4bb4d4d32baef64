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
from exchange.errors import MissingAuditEvent
from exchange.models import Account, Project
from exchange.services.audit import SERVICES, recording_service_calls, service
from tests.factories import ParticipantFactory, UserFactory
from tests.ledger import Market, make_market

pytestmark = pytest.mark.django_db


def _import_all_services() -> None:
    for module in pkgutil.iter_modules(exchange.services.__path__):
        importlib.import_module(f"exchange.services.{module.name}")
    importlib.import_module(accounts.services.__name__)


def _forest_project(m: Market) -> Project:
    from exchange.services.issuance import project_register

    owner = ParticipantFactory(kind=ParticipantKind.PROJECT_OWNER)
    Account.objects.create(number=f"CN-T-{owner.pk}", participant=owner)
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
    }


def _market_scenarios() -> dict[str, Callable[[Market], object]]:
    from exchange.services import settlement as st
    from exchange.services import trading as t
    from tests.market import REFERENCE_FEN

    def listed(m: Market):
        operator = m.holder("Exchange", kind=ParticipantKind.EXCHANGE)[2]
        if not hasattr(m.cea, "rules"):
            t.asset_list(actor=operator, asset=m.cea, reference_price_fen=REFERENCE_FEN)
        return operator

    def cash(m: Market, name: str = "Buyer"):
        operator = listed(m)
        _, account, actor = m.holder(name)
        t.cash_deposit(actor=operator, account=account, amount_fen=10_000_000, reference=f"dep-{name}")
        return operator, account, actor

    def resting_sell(m: Market):
        listed(m)
        _, account, actor = m.holder("Seller")
        m.give(account, 100)
        return t.order_place(
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
        return t.order_place(
            actor=actor,
            account=account,
            asset=m.cea,
            side="buy",
            mode="listing",
            price_fen=REFERENCE_FEN,
            quantity=10,
            client_order_id="b1",
        )

    return {
        "exchange.services.trading.asset_list": listed,
        "exchange.services.trading.market_rules_update": lambda m: t.market_rules_update(
            actor=listed(m), rules=m.cea.rules, fee_bp=50
        ),
        "exchange.services.trading.cash_deposit": cash,
        "exchange.services.trading.cash_withdraw": lambda m: t.cash_withdraw(
            actor=cash(m)[0], account=cash(m, "Other")[1], amount_fen=100, reference="w1"
        ),
        "exchange.services.trading.order_place": resting_sell,
        "exchange.services.trading.order_cancel": lambda m: t.order_cancel(
            actor=m.holder("Seller")[2], order=resting_sell(m).order
        ),
        "exchange.services.trading.orders_cancel_at_close": lambda m: (resting_sell(m), t.orders_cancel_at_close()),
        "exchange.services.trading.day_close": lambda m: (traded(m), t.day_close(asset=m.cea)),
        "exchange.services.settlement.settlement_run": lambda m: (traded(m), st.settlement_run()),
    }


def _audited_services() -> set[str]:
    _import_all_services()
    return {name for name, fn in SERVICES.items() if fn.audited and not name.startswith("tests.")}


def test_every_service_has_a_scenario():
    missing = _audited_services() - set(_scenarios())
    assert missing == set(), f"services without an audit scenario here: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(_scenarios()))
def test_each_service_writes_an_event(name):
    from exchange import clock
    from tests.market import IN_SESSION

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
