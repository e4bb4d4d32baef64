"""Smoke: the server started the way ``make run`` starts it answers the demo token and serves the docs,
and its demo trading bots trade on their own until ``manage.py settle`` settles what they traded.

``make run`` migrates, loads the demo market and runs ``manage.py serve`` with nothing configured: the
embedded PostgreSQL (data in ``var/pgdata``) and the in-process broker. This does the same with a fresh
``var/`` of its own, on a free port (with the bots moving every half second instead of every twenty), so
every command below starts the embedded server or joins the one running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_TOKEN = "gl_demo_jingneng-trader-demo-token"
BOT_ASSETS = ("CEA-2024", "CEA-2025")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    assert url.startswith("http://127.0.0.1:")
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - the local server, checked above
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _environment(tmp_path: Path) -> dict[str, str]:
    unset = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "REQUIRE_SERVICES"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        GREENLEDGER_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_server_answers_the_demo_token_and_serves_the_docs(tmp_path):
    env = _environment(tmp_path)
    for args in (("migrate", "--noinput"), ("seed_demo",)):
        done = _manage(env, *args)
        assert done.returncode == 0, done.stderr
    assert DEMO_TOKEN in done.stdout

    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--bot-interval", "0.5"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                status, body = _get(f"{base}/api/v1/", DEMO_TOKEN)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer within 30 s"
                time.sleep(0.2)

        assert status == 200, body
        me = json.loads(body)
        assert me["user"] == "jingneng_trader"
        assert me["participant"]["name"] == "Jingneng Thermal Power Co."
        assert me["participant"]["kind"] == "compliance_entity"
        assert len(me["accounts"]) == 1
        holdings_status, holdings = _get(f"{base}/api/v1/accounts/{me['accounts'][0]}/holdings", DEMO_TOKEN)
        assert holdings_status == 200
        # Its 2024 allocation and the 100,000 t block it bought from Shougang on the last past day.
        assert {h["asset"]: h["total"] for h in json.loads(holdings)}["CEA-2024"] == 1_200_000 + 100_000
        docs_status, docs = _get(f"{base}/api/docs/")
        assert docs_status == 200
        assert b"/api/schema/" in docs
        assert _get(f"{base}/api/v1/")[0] == 401

        # The bots trade on their own: unsettled trades appear on the tape (the history is all settled).
        deadline = time.monotonic() + 60
        while True:
            tapes = [json.loads(_get(f"{base}/api/v1/market/{a}/trades", DEMO_TOKEN)[1]) for a in BOT_ASSETS]
            fresh = [t for tape in tapes for t in tape["results"] if not t["settled"]]
            if fresh:
                break
            assert time.monotonic() < deadline, "the demo bots made no trade within 60 s"
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()

    # seed_demo is idempotent: a second run changes nothing and still prints the token.
    again = _manage(env, "seed_demo")
    assert again.returncode == 0, again.stderr
    assert DEMO_TOKEN in again.stdout
    settled = _manage(env, "settle")
    assert settled.returncode == 0, settled.stderr
    assert settled.stdout.startswith("settle：批次 ")  # manage.py speaks the registry's language, Chinese
    # Settlement delivers closed trading days' trades (units bought on T are sellable from T+1). The demo's past
    # days are settled by seed_demo, and its rehearsal sessions run all day, so today's bot trades wait for a
    # close that has not come: the run finds nothing to settle.
    assert "（无需结算）：0 笔成交" in settled.stdout, settled.stdout
    assert "笔未结算成交" in settled.stderr
    reconciled = _manage(env, "reconcile", "--quiet")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert reconciled.stdout.startswith("reconcile：全部通过")
