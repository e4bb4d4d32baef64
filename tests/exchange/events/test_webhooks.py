"""Webhooks: signed, in order, retried with backoff for a day, at least once; a failing endpoint is reported."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import clock
from exchange.models import (
    DeliveryStatus,
    Notice,
    NoticeKind,
    ParticipantEvent,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)
from exchange.services.transfers import transfer_create
from exchange.services.webhooks import (
    SIGNATURE_HEADER,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhooks_deliver,
)
from tests.factories import AccountFactory
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db

T0 = clock.now().replace(microsecond=0)


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 500 to its first ``failures`` requests, then 200."""

    def __init__(self, port: int, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.received) < receiver.failures else 200
                receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"try later")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(failures: int = 0) -> Receiver:
        made.append(Receiver(17620 + len(made), failures))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def holder():
    market = make_market()
    participant, account, actor = market.holder("Hooked")
    market.give(account, 100)
    return participant, account, AccountFactory(participant=participant), actor, market


def _move(holder, count: int = 1) -> None:
    _, account, own, actor, market = holder
    for _ in range(count):
        transfer_create(actor=actor, source=account, destination=own, asset=market.cea, quantity=1)


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What docs/events.md tells a receiver to do."""
    fields = dict(part.split("=", 1) for part in headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_a_receiver_failing_three_times_then_succeeding_gets_the_event_once_acknowledged_and_signed(receiver, holder):
    hook = receiver(failures=3)
    with clock.pinned(T0):
        endpoint = webhook_endpoint_create(actor=holder[3], url=hook.url, types=["transfer.executed"])
        _move(holder)
    waits = [0, 10, 30, 70]  # backoff 10 s, 20 s, 40 s after the first, second and third failure
    delivered = []
    for offset in range(0, 80):
        with clock.pinned(T0 + timedelta(seconds=offset)):
            delivered.append(webhooks_deliver())
    assert [len(hook.received)] == [4]
    assert [status for _, _, status in hook.received] == [500, 500, 500, 200]
    assert [i for i, n in enumerate(delivered) for _ in range(n)] == [waits[-1]]  # acknowledged once, at 70 s
    bodies = {body for _, body, _ in hook.received}
    assert len(bodies) == 1, "every attempt sends the same event"
    for headers, body, _ in hook.received:
        assert _verify(endpoint.secret, headers, body)
        assert not _verify("whsec_wrong", headers, body)
    event = json.loads(hook.received[-1][1])
    stored = ParticipantEvent.objects.get(participant=holder[0], type="transfer.executed")
    assert (event["id"], event["type"], event["data"]["quantity"]) == (stored.number, "transfer.executed", 1)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 4, 200)
    assert [a.status_code for a in delivery.attempt_rows.all()] == [500, 500, 500, 200]
    endpoint.refresh_from_db()
    assert endpoint.cursor == stored.number
    with clock.pinned(T0 + timedelta(hours=2)):
        assert webhooks_deliver() == 0  # nothing sent twice
    assert len(hook.received) == 4


def test_events_go_in_order_and_nothing_later_passes_one_being_retried(receiver, holder):
    hook = receiver(failures=1)
    with clock.pinned(T0):
        webhook_endpoint_create(actor=holder[3], url=hook.url, types=[])
        _move(holder, 3)
        assert webhooks_deliver() == 0  # the first fails; the other two wait behind it
    assert len(hook.received) == 1
    with clock.pinned(T0 + timedelta(seconds=10)):
        assert webhooks_deliver() == 3
    ids = [json.loads(body)["id"] for _, body, _ in hook.received]
    assert ids[0] == ids[1]
    assert ids[1:] == sorted(ids[1:])
    assert len(set(ids)) == 3


def test_after_a_day_of_failures_the_endpoint_is_reported_and_enabling_it_resumes_in_order(receiver, holder):
    hook = receiver(failures=10_000)
    participant = holder[0]
    participant.email = "ops@hooked.example"
    participant.save()
    with clock.pinned(T0):
        endpoint = webhook_endpoint_create(actor=holder[3], url=hook.url, types=[])
        _move(holder, 2)
    moment = T0
    while moment < T0 + timedelta(days=1, hours=2):
        with clock.pinned(moment):
            webhooks_deliver()
        moment += timedelta(minutes=30)
    endpoint.refresh_from_db()
    assert endpoint.status == WebhookStatus.FAILING
    [failed] = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert failed.status == DeliveryStatus.FAILED
    assert failed.attempts > 10
    [notice] = Notice.objects.filter(participant=participant, kind=NoticeKind.WEBHOOK_FAILING)
    assert hook.url in notice.subject
    # The ledger never waited: a transfer goes through while the endpoint fails.
    with clock.pinned(moment):
        _move(holder)
        sent_before = len(hook.received)
        assert webhooks_deliver() == 0
        assert len(hook.received) == sent_before  # a failing endpoint is sent nothing
    hook.failures = 0
    with clock.pinned(moment + timedelta(minutes=1)):
        webhook_endpoint_enable(actor=holder[3], endpoint_id=endpoint.pk)
        assert webhooks_deliver() == 3
    delivered = [json.loads(body)["id"] for _, body, status in hook.received if status == 200]
    assert delivered == sorted(delivered)
    assert delivered[0] == failed.number


def test_the_api_registers_an_endpoint_shows_its_secret_once_and_lists_deliveries(receiver, holder):
    hook = receiver()
    client = client_for(holder[3])
    created = client.post(
        "/api/v1/webhooks", {"url": hook.url, "types": ["transfer.executed"]}, format="json", HTTP_IDEMPOTENCY_KEY="w1"
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["types"] == ["transfer.executed"]
    assert "secret" not in client.get(f"/api/v1/webhooks/{body['id']}").json()
    _move(holder)
    assert webhooks_deliver() == 1
    [delivery] = client.get(f"/api/v1/webhooks/{body['id']}/deliveries").json()["results"]
    assert (delivery["status"], delivery["type"], delivery["last_status_code"]) == (
        "delivered",
        "transfer.executed",
        200,
    )
    assert delivery["attempt_log"][0]["response"] == "ok"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"url": "http://hooks.example.com/x"}, 400, "webhook_url_refused"),
        ({"url": "ftp://127.0.0.1/x"}, 400, "webhook_url_refused"),
        ({"url": "not a url"}, 400, "invalid"),
        ({"url": "https://hooks.example.com/x", "types": ["order.filled", "no.such"]}, 400, "unknown_event_type"),
    ],
)
def test_a_refused_registration_changes_nothing(holder, payload, status, code):
    response = client_for(holder[3]).post("/api/v1/webhooks", payload, format="json")
    assert error_of(response) == (status, code)
    assert not WebhookEndpoint.objects.exists()


def test_the_events_page_pages_by_id_and_refuses_bad_parameters(holder):
    _move(holder, 5)
    client = client_for(holder[3])
    first = client.get("/api/v1/events", {"limit": 2}).json()
    assert [e["id"] for e in first["results"]] == [1, 2]
    assert first["has_more"]
    assert first["latest"] == 6
    rest = client.get("/api/v1/events", {"after": first["next_after"], "types": "transfer.executed"}).json()
    assert [e["id"] for e in rest["results"]] == [3, 4, 5, 6]
    assert not rest["has_more"]
    assert error_of(client.get("/api/v1/events", {"after": "x"})) == (400, "invalid")
    assert error_of(client.get("/api/v1/events", {"limit": "0"})) == (400, "invalid")
    assert error_of(client.get("/api/v1/events", {"types": "nope"})) == (400, "unknown_event_type")
    other = holder[4].holder("Other")[2]
    assert client_for(other).get("/api/v1/events").json()["results"] == []
