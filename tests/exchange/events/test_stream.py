"""The event stream served by the ASGI app under uvicorn, as ``make run`` serves it: resume, wake-up, auth."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from django.core.asgi import get_asgi_application

from exchange.client import ApiError, Client
from exchange.models import ParticipantEvent
from exchange.services.transfers import transfer_create
from exchange.stream import hub, with_stream
from tests.factories import AccountFactory
from tests.helpers.api import token_for
from tests.helpers.ledger import make_market

pytestmark = pytest.mark.django_db(transaction=True)

PORT = 17610


class Server:
    """uvicorn serving the ASGI application in a thread, stoppable and startable again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        app = with_stream(get_asgi_application())
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on", log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        assert self.server is not None
        assert self.thread is not None
        self.server.should_exit = True
        self.server.force_exit = True  # open streams are cut, as a crash or a deploy cuts them
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()
        hub._abandon()  # the stopped loop's connections (a forced exit skips the lifespan's shutdown)


@pytest.fixture
def server(settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "EVENTS_HEARTBEAT_SECONDS": 1}
    running = Server(PORT)
    running.start()
    yield running
    if running.thread is not None and running.thread.is_alive():
        running.stop()


@pytest.fixture
def holder():
    market = make_market()
    participant, account, actor = market.holder("Stream holder")
    market.give(account, 1000)
    own = AccountFactory(participant=participant)
    return participant, account, own, actor, market


def _move(holder, count: int) -> None:
    _, account, own, actor, market = holder
    for _ in range(count):
        transfer_create(actor=actor, source=account, destination=own, asset=market.cea, quantity=1)


def _consume(client: Client, got: list[dict], until: int, *, after: int = 0) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + 90
        for event in client.events(after=after, stop=lambda: len(got) >= until or time.monotonic() > deadline):
            got.append(event)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_client_cut_off_while_100_events_happen_gets_all_100_once_on_reconnect(server, holder):
    participant = holder[0]
    token = token_for(holder[3])
    start = ParticipantEvent.objects.filter(participant=participant).count()  # the allocation's event
    got: list[dict] = []
    with Client(server.url, token=token, backoff=0.05) as client:
        consumer = _consume(client, got, start + 100)
        _move(holder, 30)
        deadline = time.monotonic() + 30
        while len(got) < start + 30:
            assert time.monotonic() < deadline, f"only {len(got)} events arrived"
            time.sleep(0.05)
        server.stop()  # the connection drops; 70 more events happen meanwhile
        _move(holder, 70)
        server.start()
        consumer.join(timeout=60)
    ids = [e["id"] for e in got]
    assert ids == list(range(1, start + 101)), "every event once, in order"
    assert [e["type"] for e in got[start:]] == ["transfer.executed"] * 100
    assert [e["data"]["quantity"] for e in got[start:]] == [1] * 100


def test_resuming_with_last_event_id_sends_only_what_came_after(server, holder):
    token = token_for(holder[3])
    _move(holder, 100)
    latest = ParticipantEvent.objects.filter(participant=holder[0]).count()
    headers = {"Authorization": f"Token {token}", "Last-Event-ID": str(latest - 100)}
    with httpx.stream("GET", f"{server.url}/api/v1/events/stream", headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        ids, heartbeats = [], 0
        for line in response.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith(":"):
                heartbeats += 1
                break  # a heartbeat after the backlog: nothing more is due
    assert ids == list(range(latest - 99, latest + 1))
    assert heartbeats == 1


def test_an_event_committed_while_connected_arrives_at_once(server, holder, settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "EVENTS_HEARTBEAT_SECONDS": 30}  # only NOTIFY can wake it
    token = token_for(holder[3])
    latest = ParticipantEvent.objects.filter(participant=holder[0]).count()
    got: list[dict] = []
    with Client(server.url, token=token) as client:
        consumer = _consume(client, got, 1, after=latest)
        time.sleep(0.5)  # connected and waiting
        began = time.monotonic()
        _move(holder, 1)
        consumer.join(timeout=10)
        waited = time.monotonic() - began
    assert [e["id"] for e in got] == [latest + 1]
    assert waited < 5


def test_the_stream_filters_by_type_and_shows_each_participant_only_its_own(server, holder):
    _move(holder, 3)
    other = holder[4].holder("Someone else")
    holder[4].give(other[1], 10)
    mine = Client(server.url, token=token_for(holder[3]))
    theirs = Client(server.url, token=token_for(other[2]))
    got_mine = list(_take(mine, types=["transfer.executed"], count=3))
    got_theirs = list(_take(theirs, count=1))
    assert [e["type"] for e in got_mine] == ["transfer.executed"] * 3
    assert [e["type"] for e in got_theirs] == ["units.allocated"]
    assert {e["data"]["account"] for e in got_theirs} == {other[1].number}


def _take(client: Client, *, count: int, types: list[str] | None = None):
    got: list[dict] = []
    for event in client.events(types=types, stop=lambda: len(got) >= count):
        got.append(event)
    return got


def test_the_stream_refuses_without_a_valid_token_or_with_a_bad_type_or_id(server, holder):
    url = f"{server.url}/api/v1/events/stream"
    assert httpx.get(url).json()["error"]["code"] == "not_authenticated"
    bad = httpx.get(url, headers={"Authorization": "Token gl_nope_nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "authentication_failed")
    token = token_for(holder[3])
    unknown = httpx.get(url, params={"types": "order.filled,no.such"}, headers={"Authorization": f"Token {token}"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "unknown_event_type")
    bad_id = httpx.get(url, headers={"Authorization": f"Token {token}", "Last-Event-ID": "x1"})
    assert (bad_id.status_code, bad_id.json()["error"]["code"]) == (400, "invalid")
    with pytest.raises(ApiError) as refused:
        next(Client(server.url, token="gl_nope_nope").events())
    assert refused.value.code == "authentication_failed"


def test_greenledger_watch_prints_events_as_they_arrive(server, holder):
    import io

    from exchange.cli import main

    _move(holder, 2)
    out, err = io.StringIO(), io.StringIO()
    args = ["--url", server.url, "--token", token_for(holder[3]), "watch", "--from-start", "--count", "3"]
    assert main(args, out=out, err=err) == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2", "3"]
    assert [line.split()[2] for line in lines] == ["units.allocated", "transfer.executed", "transfer.executed"]
    assert "quantity=1" in lines[1]
