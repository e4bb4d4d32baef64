"""The events and webhooks admin: staff see events, endpoints (never their secret), deliveries and answers."""

from __future__ import annotations

import pytest

from core import clock
from exchange.models import DeliveryStatus, ParticipantEvent, WebhookAttempt, WebhookDelivery
from exchange.services.transfers import transfer_create
from exchange.services.webhooks import webhook_endpoint_create
from tests.factories import AccountFactory
from tests.helpers.api import admin_client_for
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db


def test_staff_see_events_endpoints_deliveries_and_each_answer_but_no_secret():
    market = make_market()
    participant, account, actor = market.holder("Hooked")
    market.give(account, 10)
    endpoint = webhook_endpoint_create(actor=actor, url="https://hooks.example.com/in", types=[])
    transfer_create(
        actor=actor, source=account, destination=AccountFactory(participant=participant), asset=market.cea, quantity=1
    )
    event = ParticipantEvent.objects.filter(participant=participant).last()
    now = clock.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        number=event.number,
        status=DeliveryStatus.PENDING,
        attempts=1,
        next_attempt_at=now,
        last_status_code=503,
        last_response="busy",
        created_at=now,
    )
    WebhookAttempt.objects.create(delivery=delivery, at=now, status_code=503, response="busy, try later")
    staff = admin_client_for(market.registry_actor)
    pages = [
        "/admin/exchange/participantevent/",
        f"/admin/exchange/participantevent/{event.pk}/change/",
        "/admin/exchange/webhookendpoint/?status=active",
        f"/admin/exchange/webhookendpoint/{endpoint.pk}/change/",
        "/admin/exchange/webhookdelivery/",
        f"/admin/exchange/webhookdelivery/{delivery.pk}/change/",
    ]
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, page
        assert endpoint.secret not in response.content.decode()
    assert "busy, try later" in staff.get(f"/admin/exchange/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert staff.post(f"/admin/exchange/webhookendpoint/{endpoint.pk}/change/", {}).status_code == 403
