"""Registry staff in the admin: a court's freeze entered through its form, a non-trade transfer reviewed,
a CCER application published and registered, each through its service (a refusal is a message)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core import clock
from exchange.models import (
    Account,
    AccountKind,
    ApprovalRequest,
    AuditEvent,
    CycleStatus,
    FreezeStatus,
    JudicialFreeze,
    NonTradeStatus,
    Project,
)
from exchange.services.calendar import calendar_year_load
from exchange.services.ccer import (
    ccer_application_decide,
    ccer_application_submit,
    ccer_publicity_open,
    ccer_reference_seed,
    reduction_claim_submit,
)
from exchange.services.freezes import judicial_freeze_create
from exchange.services.nontrade import non_trade_transfer_apply
from tests.helpers.api import admin_client_for
from tests.helpers.ledger import actor_for, assert_reconciled, balance, make_market

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


def _frozen(market, quantity=40):
    _, account, _ = market.holder("Holder")
    _, creditor, _ = market.holder("Creditor")
    market.give(account, 100)
    freeze = judicial_freeze_create(
        actor=market.registry_actor,
        account=account,
        asset=market.cea,
        court="Beijing Internet Court",
        document_number="(2026) Jing 0491 Zhi 7",
        document_sha256="a" * 64,
        quantity=quantity,
    )
    return account, creditor, freeze


def test_a_freeze_is_released_on_the_courts_order_in_the_admin():
    market = make_market()
    account, _, freeze = _frozen(market)
    client = admin_client_for(market.registry_actor)
    page = client.get(f"/admin/exchange/judicialfreeze/{freeze.pk}/change/")
    assert f"/admin/exchange/judicialfreeze/{freeze.pk}/release/".encode() in page.content
    url = f"/admin/exchange/judicialfreeze/{freeze.pk}/release/"
    assert client.get(url).status_code == 200
    # A bad hash is shown on the page with its code, and nothing changes.
    refused = client.post(url, {"document_number": "(2026) Jing 0491 Zhi 8", "document_sha256": "z" * 64})
    assert refused.status_code == 200
    assert b"invalid_document_hash" in refused.content
    freeze.refresh_from_db()
    assert freeze.status == FreezeStatus.ACTIVE
    assert balance(account, market.cea) == (100, 40)
    response = client.post(url, {"document_number": "(2026) Jing 0491 Zhi 8", "document_sha256": "b" * 64})
    assert response.status_code == 302
    freeze.refresh_from_db()
    assert (freeze.status, freeze.end_document_number) == (FreezeStatus.RELEASED, "(2026) Jing 0491 Zhi 8")
    assert balance(account, market.cea) == (100, 0)
    assert AuditEvent.objects.filter(action="freeze.release").count() == 1


def test_frozen_units_are_seized_to_the_named_account_in_the_admin():
    market = make_market()
    account, creditor, freeze = _frozen(market)
    client = admin_client_for(market.registry_actor)
    url = f"/admin/exchange/judicialfreeze/{freeze.pk}/seize/"
    order = {"document_number": "(2026) Jing 0491 Zhi 9", "document_sha256": "c" * 64}
    # The holder's own account is no destination: the service's refusal is shown, nothing moves.
    refused = client.post(url, {**order, "destination": account.number})
    assert b"invalid_destination" in refused.content
    # Nor is a system account: the same refusal, by the service's rule.
    system = Account.objects.exclude(kind=AccountKind.HOLDING).first()
    assert b"invalid_destination" in client.post(url, {**order, "destination": system.number}).content
    unknown = client.post(url, {**order, "destination": "CN-999-999999"})
    assert unknown.status_code == 200
    assert unknown.context["form"].errors["destination"]
    freeze.refresh_from_db()
    assert freeze.status == FreezeStatus.ACTIVE
    assert balance(account, market.cea) == (100, 40)
    response = client.post(url, {**order, "destination": creditor.number})
    assert response.status_code == 302
    freeze.refresh_from_db()
    assert (freeze.status, freeze.seized_to_id) == (FreezeStatus.SEIZED, creditor.pk)
    assert balance(account, market.cea) == (60, 0)
    assert balance(creditor, market.cea) == (40, 0)
    # Ended: the page no longer offers release or seizure, and a second seizure is refused.
    page = client.get(f"/admin/exchange/judicialfreeze/{freeze.pk}/change/")
    assert b"/seize/" not in page.content
    again = client.post(url, {**order, "document_number": "other", "destination": creditor.number})
    assert b"freeze_ended" in again.content
    assert_reconciled()


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


def test_a_claim_above_the_threshold_issued_in_the_admin_waits_for_a_second_officer(settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 1_000}
    with clock.pinned(datetime(2026, 9, 24, 10, tzinfo=clock.MARKET_TZ)):
        market = make_market()
        ccer_reference_seed(actor=market.registry_actor)
        calendar_year_load(actor=market.registry_actor, code="CN", year=2026)
        owner, account, owner_actor = market.holder("Owner", kind="project_owner")
        application = ccer_publicity_open(
            actor=market.registry_actor,
            target=ccer_application_submit(
                actor=owner_actor,
                owner=owner,
                code="SOLAR-T-2",
                name="Solar thermal",
                project_type="renewable",
                methodology="CCER-01-001-V01",
                location="Qinghai",
                start_date=date(2022, 1, 1),
                crediting_start=date(2022, 1, 1),
                crediting_end=date(2031, 12, 31),
                validation_body="CEC",
                validation_report_sha256="c" * 64,
            ),
        )
        ccer_application_decide(
            actor=market.registry_actor, application=application, register=True, today=date(2026, 10, 30)
        )
        claim = reduction_claim_submit(
            actor=owner_actor,
            project=Project.objects.get(code="SOLAR-T-2"),
            vintage=2025,
            monitoring_start=date(2025, 1, 1),
            monitoring_end=date(2025, 12, 31),
            quantity=3_000,
            verification_body="CQC",
            verification_report_sha256="e" * 64,
        )
        ccer_publicity_open(actor=market.registry_actor, target=claim)
    with clock.pinned(datetime(2026, 10, 30, 10, tzinfo=clock.MARKET_TZ)):
        first = admin_client_for(market.registry_actor)
        response = first.post(
            "/admin/exchange/reductionclaim/", {"action": "issue", "_selected_action": [claim.pk]}, follow=True
        )
        claim.refresh_from_db()
        assert (claim.status, claim.issuance) == (CycleStatus.PUBLICITY, None)
        assert f"request {claim.approval_id}" in response.content.decode()
        # The first officer's approval is refused (a message); a second officer's issues the claim.
        first.post("/admin/exchange/approvalrequest/", {"action": "approve", "_selected_action": [claim.approval_id]})
        claim.refresh_from_db()
        assert claim.status == CycleStatus.PUBLICITY
        second = admin_client_for(actor_for(market.registry))
        second.post("/admin/exchange/approvalrequest/", {"action": "approve", "_selected_action": [claim.approval_id]})
    claim.refresh_from_db()
    assert claim.status == CycleStatus.ISSUED
    assert balance(account, claim.issuance.asset) == (3_000, 0)
