"""Soak: gunicorn, a Celery worker and beat on PostgreSQL and Redis under mixed traffic, then the books.

``make soak`` (or ``python -m bench.soak --seconds 120 --clients 50``) builds a fresh database, starts the
web server and the scheduled jobs as in production, and drives mixed traffic from concurrent clients:
transfers, orders, cancels, reads, pledge requests and the bank accepting them, the exchange settling on
demand. Every client keeps a tally of what the server said it did. Afterwards it checks: no 5xx; the
journal holds exactly the transfers, orders and pledges the clients were told about (nothing lost,
nothing twice, retries with the same Idempotency-Key included); ``reconcile`` and ``verify_audit`` clean.
Exit status 0 only if every check passes. Results go to stdout as a table and to --json if given.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENTITIES = 50
UNITS_EACH = 10_000
CASH_EACH_FEN = 200_000_000  # 2,000,000.00 yuan
REFERENCE_FEN = 8000


def log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the database and the market ----------------------------------------------------------------------
def prepare(database_url: str) -> dict[str, Any]:
    """Create the market in a fresh database through the services; return tokens and account numbers."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["TRUST_DELAY_SECONDS"] = "0"  # the soak's trusted neighbours are effective at once
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from accounts.actors import Actor
    from accounts.models import ParticipantKind, Role
    from accounts.services import api_token_create, membership_create, participant_create
    from accounts.validators import make_uscc
    from exchange.services.cash import cash_deposit
    from exchange.services.issuance import AllocationRow, cea_allocate, cea_vintage_create, main_account
    from exchange.services.listings import asset_list

    call_command("migrate", verbosity=0)
    system = Actor.system("soak")
    users = get_user_model()

    def person(key: str, name: str, kind: str, n: int, role: str = Role.ADMIN) -> tuple[Any, Actor, str]:
        participant = participant_create(actor=system, name=name, kind=kind, uscc=make_uscc(f"91110000MK{n:07d}"))
        user = users.objects.create_user(username=key, password=None)  # tokens only: no password to hash
        membership_create(actor=system, user=user, participant=participant, role=role)
        _, token = api_token_create(actor=system, user=user, name="soak")
        return participant, Actor.for_user(user), token

    _, registry, registry_token = person("registry", "Registry", ParticipantKind.REGISTRY, 1)
    _, operator, operator_token = person("exchange", "Exchange", ParticipantKind.EXCHANGE, 2)
    bank, _, bank_token = person("bank", "Bank", ParticipantKind.FINANCIAL_INSTITUTION, 3)
    cea = cea_vintage_create(actor=registry, vintage=2024)
    from bench.market import all_day_market
    from exchange.models import Asset

    Asset.objects.filter(pk=cea.pk).update(market=all_day_market("XS-CDA"))
    cea.refresh_from_db()
    asset_list(actor=operator, asset=cea, reference_price_fen=REFERENCE_FEN)
    from exchange.services.trust import trusted_account_approve, trusted_account_propose

    clients = []
    entities = []
    for i in range(ENTITIES):
        participant, _, token = person(
            f"entity{i}", f"Entity {i}", ParticipantKind.COMPLIANCE_ENTITY, 100 + i, Role.TRADER
        )
        account = main_account(participant)
        clients.append({"token": token, "account": account.number})
        entities.append(participant)
    # Each entity trusts the next one's account (two admins, effective at once in the soak): transfers to it
    # are immediate, to anyone else they wait as pending transfers.
    for i, participant in enumerate(entities):
        admins = []
        for n in range(2):
            user = users.objects.create_user(username=f"entity{i}-admin{n}", password=None)
            membership_create(actor=system, user=user, participant=participant, role=Role.ADMIN)
            admins.append(Actor.for_user(user))
        neighbour = main_account(entities[(i + 1) % len(entities)])
        entry = trusted_account_propose(actor=admins[0], account=neighbour)
        trusted_account_approve(actor=admins[1], entry=entry)
        clients[i]["trusted"] = neighbour.number
    cea_allocate(
        actor=registry,
        asset=cea,
        rows=[AllocationRow(account=main_account_by_number(c["account"]), quantity=UNITS_EACH) for c in clients],
    )
    for c in clients:
        cash_deposit(
            actor=operator,
            account=main_account_by_number(c["account"]),
            amount_fen=CASH_EACH_FEN,
            reference=f"soak-{c['account']}",
        )
    # The registry settles (Decree 775 art. 5): its token runs the on-demand settlements.
    return {
        "clients": clients,
        "operator": operator_token,
        "registry": registry_token,
        "bank": bank_token,
        "bank_id": bank.pk,
    }


def main_account_by_number(number: str) -> Any:
    from exchange.models import Account

    return Account.objects.get(number=number)


# --- the services, as in production ---------------------------------------------------------------------
class Services:
    def __init__(self, env: dict[str, str], port: int, workdir: Path, web_workers: int) -> None:
        self.logs = workdir
        self.procs: list[subprocess.Popen] = []
        self.named: dict[str, tuple[subprocess.Popen, list[str], dict[str, str]]] = {}
        py = sys.executable
        self.start(
            "web",
            [
                py,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(web_workers),
                # Sync workers, as docs recommend for production: each takes one request at a time, so the
                # load spreads over all of them. (Threaded workers with keep-alive let one worker take most
                # of the clients' connections and serve them on one core.)
                "--worker-class",
                "sync",
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
            env,
        )
        self.start(
            "worker",
            [
                py,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
                "--hostname",
                f"soak-{uuid.uuid4().hex[:6]}@%h",
            ],
            env,
        )
        self.start(
            "beat",
            [
                py,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "WARNING",
                "--scheduler",
                "exchange.beat:Scheduler",
                "--schedule",
                str(workdir / "beat-schedule"),
            ],
            env,
        )

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.named[name] = (proc, cmd, env)

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL a service (no warm shutdown: what it was doing is lost with it) and start it again."""
        proc, cmd, env = self.named[name]
        proc.kill()
        proc.wait(30)
        self.procs.remove(proc)
        self.start(name, cmd, env)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


class PrivateRedis:
    """A redis-server of the soak's own on a free port, with an append-only file in the soak's folder."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.dir),
            ],
            stdout=(self.dir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return proc
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def restart(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        time.sleep(3)
        self.proc = self._start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --- clients ---------------------------------------------------------------------------------------------
@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    ops: Counter = field(default_factory=Counter)
    transfers: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)
    pending_cancelled: set[int] = field(default_factory=set)
    orders: set[int] = field(default_factory=set)
    cancels: set[int] = field(default_factory=set)
    pledges: set[int] = field(default_factory=set)
    accepted: set[int] = field(default_factory=set)
    settlements: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    by_op: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors_5xx: list[str] = field(default_factory=list)
    throttled: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    def __init__(self, port: int, token: str, tally: Tally) -> None:
        self.port, self.token, self.tally = port, token, tally
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if key:
            headers["Idempotency-Key"] = key
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                started = time.perf_counter()
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                elapsed = time.perf_counter() - started
                break
            except (OSError, http.client.HTTPException):
                # A dropped connection: retry with the same Idempotency-Key; the server answers once.
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)
        status = response.status
        with self.tally.lock:
            self.tally.statuses[status] += 1
            self.tally.latencies.append(elapsed)
            self.tally.by_op[f"{method} {_shape(path)}"].append(elapsed)
            if status >= 500:
                self.tally.errors_5xx.append(f"{method} {path} -> {status}: {raw[:300]!r}")
            if status == 429 and len(self.tally.throttled) < 5:
                self.tally.throttled.append(f"{method} {path}: {raw[:200]!r}")
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None


def _shape(path: str) -> str:
    """/api/v1/orders/12/cancel -> /api/v1/orders/{id}/cancel, for per-endpoint latency."""
    parts = [
        ("{id}" if p.isdigit() else "{account}" if p.startswith("CN-") else p) for p in path.split("?")[0].split("/")
    ]
    return "/".join(parts)


def trader_loop(
    port: int,
    me: dict[str, str],
    others: list[dict[str, str]],
    bank_id: int,
    tally: Tally,
    stop: threading.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    client = Client(port, me["token"], tally)
    open_orders: list[int] = []
    while not stop.is_set():
        roll = rng.random()
        if roll < 0.30:
            other = {"account": me["trusted"]} if rng.random() < 0.5 else rng.choice(others)
            quantity = rng.randint(1, 20)
            key = uuid.uuid4().hex
            body = {"source": me["account"], "destination": other["account"], "asset": "CEA-2024", "quantity": quantity}
            status, reply = client.call("POST", "/api/v1/transfers", body, key)
            if rng.random() < 0.1:  # a client that retries although it got an answer: must not move twice
                client.call("POST", "/api/v1/transfers", body, key)
            op = "transfer"
            if status == 201:
                with tally.lock:
                    tally.transfers[reply["id"]] = (me["account"], other["account"], quantity)
            elif status == 202:
                pending_id = reply["pending_transfer"]["id"]
                with tally.lock:
                    tally.pending.add(pending_id)
                if rng.random() < 0.3:
                    cancel_status, _ = client.call("POST", f"/api/v1/transfers/pending/{pending_id}/cancel")
                    if cancel_status == 200:
                        with tally.lock:
                            tally.pending_cancelled.add(pending_id)
        elif roll < 0.60:
            side = rng.choice(["buy", "sell"])
            price = REFERENCE_FEN + rng.randint(-300, 300)
            body = {
                "account": me["account"],
                "asset": "CEA-2024",
                "side": side,
                "price": f"{price // 100}.{price % 100:02d}",
                "quantity": rng.randint(1, 30),
                "client_order_id": uuid.uuid4().hex,
            }
            status, reply = client.call("POST", "/api/v1/orders", body)
            op = "order"
            if status == 201:
                with tally.lock:
                    tally.orders.add(reply["order"]["id"])
                if reply["order"]["status"] == "open":
                    open_orders.append(reply["order"]["id"])
        elif roll < 0.70 and open_orders:
            order_id = open_orders.pop(rng.randrange(len(open_orders)))
            status, _ = client.call("POST", f"/api/v1/orders/{order_id}/cancel")
            op = "cancel"
            if status == 200:
                with tally.lock:
                    tally.cancels.add(order_id)
        elif roll < 0.75:
            key = uuid.uuid4().hex
            body = {
                "account": me["account"],
                "lender": bank_id,
                "asset": "CEA-2024",
                "quantity": rng.randint(10, 50),
                "principal": "100.00",
                "annual_rate_bp": 385,
                "maturity": "2030-01-01",
                "ltv_limit_bp": 7000,
                "margin_call_bp": 8000,
                "liquidation_bp": 9000,
            }
            status, reply = client.call("POST", "/api/v1/pledges", body, key)
            op = "pledge"
            if status == 201:
                with tally.lock:
                    tally.pledges.add(reply["id"])
        else:
            path = rng.choice(
                [
                    f"/api/v1/accounts/{me['account']}/holdings",
                    "/api/v1/market/CEA-2024/book",
                    f"/api/v1/accounts/{me['account']}/statement",
                    "/api/v1/orders?status=open",
                    "/api/v1/trades",
                ]
            )
            client.call("GET", path)
            op = "read"
        with tally.lock:
            tally.ops[op] += 1


def bank_loop(port: int, token: str, tally: Tally, stop: threading.Event) -> None:
    client = Client(port, token, tally)
    while not stop.wait(1.0):
        status, reply = client.call("GET", "/api/v1/pledges/loan-book?status=requested")
        if status != 200:
            continue
        for loan in reply.get("results", []):
            status, _ = client.call("POST", f"/api/v1/pledges/{loan['id']}/accept", {})
            if status == 429:
                # One token over its per-minute limit (a backlog of requests to accept): back off, as a
                # bank's client would, and take up the rest in a later round.
                stop.wait(5.0)
                break
            if status == 200:
                with tally.lock:
                    tally.accepted.add(loan["id"])
                    tally.ops["accept"] += 1


def operator_loop(port: int, token: str, tally: Tally, stop: threading.Event) -> None:
    client = Client(port, token, tally)
    while not stop.wait(10.0):
        status, reply = client.call("POST", "/api/v1/settlement/batches", key=uuid.uuid4().hex)
        if status == 201:
            with tally.lock:
                tally.settlements.add(reply["id"])
                tally.ops["settle"] += 1


# --- the books ---------------------------------------------------------------------------------------------
def check_books(tally: Tally) -> list[tuple[str, bool, str]]:
    from django.core.management import call_command
    from django.db.models import Sum

    from exchange.models import Order, PledgeLoan, Posting, SettlementBatch, Transaction
    from exchange.selectors.reconcile import check_names, reconcile
    from exchange.services.sealing import audit_seal, audit_verify
    from exchange.services.settlement import settlement_run

    settlement_run()
    for _ in range(20):
        if not audit_seal():
            break
    checks = []
    checks.append(
        (
            "no 5xx",
            not tally.errors_5xx,
            f"{sum(v for k, v in tally.statuses.items() if k >= 500)} of {sum(tally.statuses.values())}",
        )
    )
    journal = set(Transaction.objects.filter(kind="transfer").values_list("id", flat=True))
    told = set(tally.transfers)
    checks.append(("transfers: journal = told", journal == told, f"journal {len(journal)}, told {len(told)}"))
    moved = {
        t: (q,)
        for t, q in Posting.objects.filter(transaction_id__in=told, quantity__gt=0).values_list(
            "transaction_id", "quantity"
        )
    }
    same = all(moved.get(t) == (q,) for t, (_, _, q) in tally.transfers.items())
    checks.append(("transfers: quantities match", same, f"{sum(q for _, _, q in tally.transfers.values())} t moved"))
    from exchange.models import PendingTransfer

    waiting = set(PendingTransfer.objects.values_list("id", flat=True))
    checks.append(
        ("pending transfers = told", waiting == tally.pending, f"journal {len(waiting)}, told {len(tally.pending)}")
    )
    cancelled_pending = set(PendingTransfer.objects.filter(status="cancelled").values_list("id", flat=True))
    checks.append(
        ("pending cancels = told", cancelled_pending == tally.pending_cancelled, f"{len(cancelled_pending)} cancelled")
    )
    orders = set(Order.objects.values_list("id", flat=True))
    checks.append(
        ("orders: journal = told", orders == tally.orders, f"journal {len(orders)}, told {len(tally.orders)}")
    )
    cancelled = set(Order.objects.filter(end_reason="cancelled").values_list("id", flat=True))
    checks.append(("cancels: all recorded", tally.cancels <= cancelled, f"{len(tally.cancels)} cancels"))
    pledges = set(PledgeLoan.objects.values_list("id", flat=True))
    checks.append(
        ("pledges: journal = told", pledges == tally.pledges, f"journal {len(pledges)}, told {len(tally.pledges)}")
    )
    registered = set(PledgeLoan.objects.filter(status="registered").values_list("id", flat=True))
    checks.append(("pledges accepted = registered", tally.accepted == registered, f"{len(registered)} registered"))
    batches = SettlementBatch.objects.filter(status="completed").aggregate(trades=Sum("trades_count"))
    from exchange.models import Trade

    checks.append(
        (
            "every trade settled once",
            not Trade.objects.filter(settlement__isnull=True).exists(),
            f"{Trade.objects.count()} trades in {SettlementBatch.objects.count()} batches ({batches['trades'] or 0})",
        )
    )
    violations = list(reconcile())
    summary = "; ".join(str(v) for v in violations[:3]) or f"{len(check_names())} checks"
    checks.append(("reconcile clean", not violations, summary))
    verified = audit_verify()
    checks.append(("verify_audit clean", verified.ok, f"{verified.events} events, {verified.checkpoints} checkpoints"))
    call_command("check", verbosity=0)
    return checks


def run(seconds: int, clients: int, web_workers: int, keep: bool, json_path: str | None, faults: bool = False) -> int:
    from config.services import DEFAULT_REDIS_URL, reachable

    base = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gl_soak")
    redis_url = os.environ.get("SOAK_REDIS_URL", DEFAULT_REDIS_URL.replace("/0", "/3"))
    if not reachable(base, 5432) or not reachable(redis_url, 6379):
        log("needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (or SOAK_DATABASE_URL / SOAK_REDIS_URL)")
        return 2
    name = base.rsplit("/", 1)[1]
    admin = base.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import redis

    workdir = Path(os.environ.get("SOAK_DIR") or tempfile.gettempdir()) / f"greenledger-soak-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    private_redis: PrivateRedis | None = None
    if faults:
        # A Redis of the soak's own (never the shared one) that the fault schedule can kill and start again;
        # with its append-only file, as docs/operations.md recommends, queued jobs survive the restart.
        private_redis = PrivateRedis(workdir)
        redis_url = private_redis.url
    redis.Redis.from_url(redis_url).flushdb()
    log(f"preparing {name}: {ENTITIES} entities with units and cash")
    world = prepare(base)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": base,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
    services = Services(env, port, workdir, web_workers)
    tally = Tally()
    injected: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        log(f"driving {clients} clients for {seconds}s against gunicorn on :{port} (logs in {workdir})")
        stop = threading.Event()
        people = world["clients"][:clients]
        threads = [
            threading.Thread(
                target=trader_loop,
                args=(port, me, [o for o in people if o is not me], world["bank_id"], tally, stop, i),
                daemon=True,
            )
            for i, me in enumerate(people)
        ]
        threads += [
            threading.Thread(target=bank_loop, args=(port, world["bank"], tally, stop), daemon=True),
            threading.Thread(target=operator_loop, args=(port, world["registry"], tally, stop), daemon=True),
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        schedule = (
            [(seconds / 3, "worker", services.kill_and_restart), (2 * seconds / 3, "redis", None)] if faults else []
        )
        while time.monotonic() - started < seconds:
            time.sleep(min(5, seconds - (time.monotonic() - started)) if seconds > 0 else 0)
            now = time.monotonic() - started
            while schedule and schedule[0][0] <= now:
                _, what, act = schedule.pop(0)
                if what == "worker" and act is not None:
                    act("worker")
                    injected.append(f"{now:.0f}s: the Celery worker SIGKILLed mid-run and started again")
                elif private_redis is not None:
                    private_redis.restart()
                    injected.append(f"{now:.0f}s: Redis killed (SIGKILL) and started again 3 s later")
                log(injected[-1])
            log(f"{int(time.monotonic() - started)}s: {sum(tally.statuses.values())} requests, {dict(tally.ops)}")
            if not services.alive():
                log("a service died; stopping")
                break
        stop.set()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - started
    finally:
        services.stop()
    checks = check_books(tally)
    if private_redis is not None:
        private_redis.stop()
    latencies = sorted(tally.latencies) or [0.0]
    figures = {
        "seconds": round(elapsed, 1),
        "clients": clients,
        "requests": sum(tally.statuses.values()),
        "requests_per_second": round(sum(tally.statuses.values()) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "faults": injected,
        "operations": dict(tally.ops),
        "p50_p99_ms_by_endpoint": {
            k: [
                round(sorted(v)[len(v) // 2] * 1000, 1),
                round(sorted(v)[max(0, int(len(v) * 0.99) - 1)] * 1000, 1),
                len(v),
            ]
            for k, v in sorted(tally.by_op.items())
        },
    }
    print(f"\n{'check':34} {'ok':4} detail")
    for name_, ok, detail in checks:
        print(f"{name_:34} {'yes' if ok else 'NO':4} {detail}")
    print(f"\n{json.dumps(figures, indent=2)}")
    for line in tally.errors_5xx[:10]:
        print("5xx:", line)
    for line in tally.throttled:
        print("429:", line)
    if json_path:
        Path(json_path).write_text(json.dumps({"figures": figures, "checks": checks}, indent=2))
    if not keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(ok for _, ok, _ in checks) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument(
        "--faults",
        action="store_true",
        help="Kill the Celery worker a third of the way in and a private Redis two thirds in, and start them again.",
    )
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", default=None, help="Write the figures and checks to this file.")
    args = parser.parse_args()
    if args.clients > ENTITIES:
        parser.error(f"at most {ENTITIES} clients")
    sys.exit(run(args.seconds, args.clients, args.web_workers, args.keep_logs, args.json, faults=args.faults))


if __name__ == "__main__":
    main()
