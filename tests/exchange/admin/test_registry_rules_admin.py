"""Registry staff in the admin: a court's freeze entered through its form, a non-trade transfer reviewed,
a CCER application published and registered, each through its service (a refusal is a message)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core import clock
from exchange.models import (
    ApprovalRequest,
    CycleStatus,
    FreezeStatus,
    JudicialFreeze,
    NonTradeStatus,
)
from exchange.services.calendar import calendar_year_load
from exchange.services.ccer import ccer_application_submit, ccer_reference_seed
from exchange.services.nontrade import non_trade_transfer_apply
from tests.helpers.api import admin_client_for
from tests.helpers.ledger import balance, make_market

pytestmark = pytest.mark.django_db


def test_a_freeze_is_entered_through_the_admin_form():
    market = make_market()
    _, account, _ = market.holder("Holder")
    market.give(account, 100)
    client = admin_client_for(market.registry_actor)
    assert client.get("/admin/exchange/judicialfreeze/add/").status_code == 200
    response = client.post(
        "/admin/exchange/judicialfreeze/add/",
        {
            "account": account.pk,
            "asset": market.cea.pk,
            "court": "Beijing Internet Court",
            "document_number": "(2026) Jing 0491 Zhi 7",
            "document_sha256": "a" * 64,
            "quantity": 40,
            "first_serial": "",
            "last_serial": "",
        },
    )
    assert response.status_code == 302
    freeze = JudicialFreeze.objects.get()
    assert (freeze.quantity, freeze.status) == (40, FreezeStatus.ACTIVE)
    assert balance(account, market.cea) == (100, 40)
    assert client.get("/admin/exchange/judicialfreeze/").status_code == 200


def test_a_non_trade_transfer_is_reviewed_in_the_admin():
    market = make_market(china_transfer_rules=True)
    _, source, actor = market.holder("Holder")
    _, destination, _ = market.holder("Heir")
    market.give(source, 10)
    transfer = non_trade_transfer_apply(
        actor=actor,
        source=source,
        destination=destination,
        asset=market.cea,
        quantity=10,
        legal_basis="inheritance",
        document_sha256="b" * 64,
    )
    client = admin_client_for(market.registry_actor)
    client.post(
        "/admin/exchange/nontradetransfer/", {"action": "review", "_selected_action": [transfer.pk]}, follow=True
    )
    transfer.refresh_from_db()
    assert transfer.status == NonTradeStatus.REVIEWED
    assert ApprovalRequest.objects.get(pk=transfer.approval_id).operation == "transfer.non_trade"


def test_an_application_is_published_and_registered_in_the_admin():
    with clock.pinned(datetime(2026, 9, 24, 10, tzinfo=clock.MARKET_TZ)):
        market = make_market()
        ccer_reference_seed(actor=market.registry_actor)
        calendar_year_load(actor=market.registry_actor, code="CN", year=2026)
        owner, _, owner_actor = market.holder("Owner", kind="project_owner")
        application = ccer_application_submit(
            actor=owner_actor,
            owner=owner,
            code="SOLAR-T-1",
            name="Solar thermal",
            project_type="renewable",
            methodology="CCER-01-001-V01",
            location="Qinghai",
            start_date=date(2022, 1, 1),
            crediting_start=date(2022, 1, 1),
            crediting_end=date(2031, 12, 31),
            validation_body="CEC",
            validation_report_sha256="c" * 64,
        )
        client = admin_client_for(market.registry_actor)
        changelist = "/admin/exchange/projectapplication/"
        client.post(changelist, {"action": "open_publicity", "_selected_action": [application.pk]})
        application.refresh_from_db()
        assert (application.status, application.publicity_end) == (CycleStatus.PUBLICITY, date(2026, 10, 29))
        # Too early: the refusal is a message and nothing changes.
        client.post(changelist, {"action": "register", "_selected_action": [application.pk]})
        application.refresh_from_db()
        assert application.status == CycleStatus.PUBLICITY
    with clock.pinned(datetime(2026, 10, 30, 10, tzinfo=clock.MARKET_TZ)):
        client.post(changelist, {"action": "register", "_selected_action": [application.pk]})
    application.refresh_from_db()
    assert application.status == CycleStatus.REGISTERED
    assert application.project.code == "SOLAR-T-1"
