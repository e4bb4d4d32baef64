"""The transfer API over HTTP: gunicorn started here on a free port, and a load generator of its own.

The load generator is Python: 4 processes with 8 threads each (32 clients), each client a participant of
its own with its own API token, posting ``POST /api/v1/transfers`` to random destinations as fast as the
server answers, a new connection per request (gunicorn's sync workers close each one). With
``Scale.http_threads`` above 1 the workers run threads, whose concurrent transfers commit together
(``exchange.group_commit``). Latency is
measured per request from connect to the last byte of the response. The floor is the same load on the same
server against a constant answer (``GET /health/``): what the server, the sockets and this load generator
cost with no work behind them.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gunicorn(url: str, workers: int, log: Path, threads: int = 1) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",
        "DB_CONN_MAX_AGE": "600",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "ERROR",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--backlog",
        "256",
        "--timeout",
        "60",
    ]
    out = log.open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            status, _ = request(port, "GET", "/api/v1/accounts", None, None)
            if status == 401:
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within 60 s; see {log}")


def request(port: int, method: str, path: str, token: str | None, body: dict | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass(frozen=True)
class Client:
    token: str
    source: str


CONSTANT_PATH = "/health/"  # answers {"status": "ok"} through the whole middleware stack, touching nothing


def _client_loop(port: int, client: Client, destinations: list[str], count: int, seed: int, out: list) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        if not destinations:  # the constant-answer floor: the same server, clients and connections
            begin = time.perf_counter()
            status, _ = request(port, "GET", CONSTANT_PATH, None, None)
            out.append((time.perf_counter() - begin, status))
            continue
        body = {"source": client.source, "destination": rng.choice(destinations), "asset": "CEA-2024", "quantity": 1}
        begin = time.perf_counter()
        status, _ = request(port, "POST", "/api/v1/transfers", client.token, body)
        out.append((time.perf_counter() - begin, status))


def _load_process(port: int, clients: list[Client], destinations: list[str], count: int, seed: int, start, results):
    samples: list = []
    threads = [
        threading.Thread(target=_client_loop, args=(port, c, destinations, count, seed + i, samples))
        for i, c in enumerate(clients)
    ]
    start.wait()
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((samples, begin, time.monotonic()))


def run_load(port: int, clients: list[Client], destinations: list[str], per_client: int, processes: int = 4):
    """Every client posts ``per_client`` transfers (with no ``destinations``: gets the constant answer
    ``per_client`` times); returns (requests/s, latencies in s, statuses)."""
    ctx = mp.get_context("fork")
    start = ctx.Event()
    results = ctx.Queue()
    groups = [clients[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=_load_process, args=(port, g, destinations, per_client, 1000 * n, start, results))
        for n, g in enumerate(groups)
        if g
    ]
    for p in procs:
        p.start()
    time.sleep(0.3)
    start.set()
    rows = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    samples = [s for r in rows for s in r[0]]
    wall = max(r[2] for r in rows) - min(r[1] for r in rows)
    return len(samples) / wall, sorted(s[0] for s in samples), [s[1] for s in samples]
