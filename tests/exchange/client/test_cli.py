"""The ``greenledger`` command against a live server: real HTTP, readable tables, exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.cli import main, table
from exchange.services.sealing import audit_seal
from tests.helpers.ledger import balance
from tests.helpers.live import in_session, make_live_market

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def market(live_server):
    with in_session():
        yield make_live_market(live_server.url)


def run(market, token: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", market.url, "--token", token, *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_table_aligns_numbers_right_and_text_left():
    out = io.StringIO()

    table(["asset", "total"], [["CEA-2024", 1_200_000], ["CNY", "2400000.50"]], out)

    assert out.getvalue().splitlines() == [
        "asset            total",
        "--------  ------------",
        "CEA-2024     1,200,000",
        "CNY       2,400,000.50",
    ]


def test_ids_print_as_typed_and_quantities_grouped():
    from exchange.cli import _order_row

    row = _order_row(
        {
            "id": 12345,
            "side": "buy",
            "asset": "CEA-2024",
            "mode": "listing",
            "price": "88.00",
            "quantity": 12345,
            "filled": 0,
            "status": "open",
            "end_reason": "",
            "trading_day": "2026-11-25",
        }
    )
    out = io.StringIO()

    table(["id", "quantity"], [[row[0], row[5]]], out)

    assert out.getvalue().splitlines()[2] == "12345    12,345"


def test_holdings_prints_a_table(market):
    code, out, err = run(market, market.seller_token, "holdings")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"Holdings of {market.seller.number}",
        "asset     kind        total  held  available",
        "--------  ---------  ------  ----  ---------",
        "CEA-2024  allowance  10,000     0     10,000",
    ]


def test_transfer_then_the_refusal_exits_1_with_the_code(market):
    code, out, _ = run(market, market.seller_token, "transfer", market.buyer.number, "CEA-2024", "40", "--key", "t1")
    refused, _, err = run(market, market.seller_token, "transfer", market.buyer.number, "CEA-2024", "99999")

    assert code == 0
    assert "transfer" in out.splitlines()[0]
    assert f"{market.seller.number}  {market.buyer.number}" in out
    assert refused == 1
    assert err.startswith("error: insufficient_available: ")
    assert balance(market.buyer, market.exchange.cea) == (40, 0)


def test_order_place_list_book_trades_cancel(market):
    assert run(market, market.seller_token, "order", "place", "sell", "CEA-2024", "300", "80.50")[0] == 0
    code, placed, _ = run(market, market.buyer_token, "order", "place", "buy", "CEA-2024", "100", "80.50")
    _, book, _ = run(market, market.buyer_token, "book", "CEA-2024")
    _, listed, _ = run(market, market.seller_token, "order", "list", "--status", "open")
    _, trades, _ = run(market, market.buyer_token, "trades")
    order_id = listed.splitlines()[2].split()[0]
    cancelled = run(market, market.seller_token, "order", "cancel", order_id)

    assert code == 0
    assert placed.splitlines()[0].endswith("filled: 100 of 100 t filled")
    assert book.splitlines()[0] == "CEA-2024 listing book, previous close 80.00"
    assert book.splitlines()[3].split() == ["-", "-", "-", "80.50", "200", "1"]
    assert listed.splitlines()[0].split() == [
        "id",
        "side",
        "asset",
        "mode",
        "price",
        "quantity",
        "filled",
        "status",
        "day",
    ]
    assert listed.splitlines()[2].split()[1:8] == ["sell", "CEA-2024", "listing", "80.50", "300", "100", "open"]
    assert trades.splitlines()[2].split()[2:7] == ["buy", "CEA-2024", "80.50", "100", "48.30"]
    assert cancelled[0] == 0
    assert cancelled[1].startswith(f"Order {order_id} cancelled: 100 t filled, 200 t not")


def test_pledge_list_and_json(market):
    code, out, _ = run(market, market.seller_token, "pledge", "list")
    json_code, json_out, _ = run(market, market.seller_token, "--json", "holdings")

    assert code == 0
    assert out.splitlines()[-1] == "(none)"
    assert json_code == 0
    assert json.loads(json_out)[0]["available"] == 10_000


def test_proof_verify_checks_locally(market):
    from exchange.client import Client

    with Client(market.url, market.seller_token) as gl:
        seq = gl.retire(asset="CEA-2024", quantity=3, beneficiary="Tongzhou school", reason="offset")["transaction"][
            "audit"
        ]["event"]
    pending = run(market, market.seller_token, "proof", "verify", str(seq))
    audit_seal()

    code, out, err = run(market, market.seller_token, "proof", "verify", str(seq))
    wrong = run(market, market.seller_token, "proof", "verify", str(seq), "--trusted", "f" * 64)

    assert pending[0] == 1
    assert pending[2].startswith("error: not_sealed: ")
    assert (code, err) == (0, "")
    assert out.startswith(f"OK: event {seq} is in checkpoint ")
    assert wrong[0] == 1
    assert wrong[2].startswith("PROOF DOES NOT HOLD: the chain does not reach the trusted checkpoint")


def test_proof_verify_checks_the_signatures_and_feed_compares_a_kept_copy(market, tmp_path, monkeypatch):
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from exchange.audit_proof import key_id, signed_message
    from exchange.client import Client
    from exchange.services import sealing

    with Client(market.url, market.seller_token) as gl:
        seq = gl.retire(asset="CEA-2024", quantity=3, beneficiary="Tongzhou school", reason="offset")["transaction"][
            "audit"
        ]["event"]
    audit_seal()
    kept = tmp_path / "kept.jsonl"
    saved = run(market, market.seller_token, "proof", "feed", "--save", str(kept))
    signed = run(market, market.seller_token, "proof", "verify", str(seq))
    # A checkpoint sealed with someone else's key (an attacker who can write to the database, not sign).
    with Client(market.url, market.seller_token) as gl:
        later = gl.retire(asset="CEA-2024", quantity=1, beneficiary="Tongzhou school", reason="offset")["transaction"][
            "audit"
        ]["event"]
    stranger = Ed25519PrivateKey.generate()
    raw = stranger.public_key().public_bytes_raw()
    monkeypatch.setattr(
        sealing, "sign", lambda h: (key_id(raw), base64.b64encode(stranger.sign(signed_message(h))).decode())
    )
    audit_seal()

    forged = run(market, market.seller_token, "proof", "verify", str(later))
    compared = run(market, market.seller_token, "proof", "feed", "--against", str(kept))

    assert saved[0] == 0
    assert saved[1].startswith("OK: ")
    assert f"saved to {kept}" in saved[1]
    assert len(kept.read_text().splitlines()) >= 1
    assert signed[0] == 0
    assert signed[1].rstrip().endswith("every checkpoint signed by a trusted key")
    assert forged[0] == 1
    assert forged[2].startswith("PROOF DOES NOT HOLD: checkpoint ")
    assert f"is signed by key {key_id(raw)}, which is not a trusted audit key" in forged[2]
    assert compared[0] == 1
    assert f"is signed by key {key_id(raw)}, which is not a trusted audit key" in compared[2]


def test_the_console_script_reads_token_and_url_from_the_environment(market):
    env = {**os.environ, "GREENLEDGER_URL": market.url, "GREENLEDGER_TOKEN": market.buyer_token}

    done = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "me"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    no_token = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "me"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k != "GREENLEDGER_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("user")
    assert "for Buyer Power [compliance_entity]" in done.stdout
    assert no_token.returncode == 2
    assert "no token" in no_token.stderr


def test_a_transfer_to_an_untrusted_account_waits_and_can_be_cancelled(market, settings):
    from exchange.client import Client

    settings.GREENLEDGER = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True}

    code, out, _ = run(market, market.seller_token, "transfer", market.buyer.number, "CEA-2024", "25")
    with Client(market.url, market.seller_token) as gl:
        (pending,) = gl.pending_transfers()
        held = balance(market.seller, market.exchange.cea)
        cancelled = gl.cancel_pending_transfer(pending["id"])

    assert code == 0
    assert out.startswith(f"Pending transfer {pending['id']}: 25 t of CEA-2024 to {market.buyer.number}, carried out")
    assert held == (10_000, 25)
    assert cancelled["status"] == "cancelled"
    assert balance(market.seller, market.exchange.cea) == (10_000, 0)


def test_a_non_trade_transfer_is_applied_for_and_its_units_held(market):
    code, out, err = run(
        market, market.seller_token, "non-trade", market.buyer.number, "CEA-2024", "25", "inheritance", "a" * 64
    )
    refused, _, refusal = run(
        market, market.seller_token, "non-trade", market.buyer.number, "CEA-2024", "5", "other", "a" * 64
    )

    assert (code, err) == (0, "")
    assert out.startswith("Non-trade transfer ")
    assert "applied: 25 t of CEA-2024 held in" in out
    assert balance(market.seller, market.exchange.cea) == (10_000, 25)
    assert refused == 1
    assert refusal.startswith("error: value_rule_broken: ")


def test_compliance_surrender_status_and_carryover(market):
    from datetime import date

    from exchange.services.compliance import compliance_year_create, emissions_record, entities_cover
    from exchange.services.compliance_rules import carryover_rule_set

    registry = market.exchange.market.registry_actor
    year = compliance_year_create(actor=registry, year=2024)
    [obligation] = entities_cover(actor=registry, year=year, entities=[market.seller.participant])
    emissions_record(actor=registry, obligation=obligation, quantity=100)
    carryover_rule_set(
        actor=registry,
        year=2023,
        base_tonnes=10_000,
        net_sales_multiple_bp=15_000,
        sales_from=date(2023, 1, 1),
        sales_to=date(2024, 12, 31),
        first_vintage=2019,
        effective_from=date(2023, 1, 1),
        source="demo plan",
    )

    code, out, err = run(market, market.seller_token, "compliance", "surrender", "2024", "CEA-2024:60", "--key", "c1")
    assert (code, err) == (0, "")
    assert out.startswith("Surrendered 60 t for 2024")
    refused, _, err = run(market, market.seller_token, "compliance", "surrender", "2024", "CEA-2024:41")
    assert refused == 1
    assert err.startswith("error: exceeds_remaining_obligation: ")
    code, out, _ = run(market, market.seller_token, "compliance", "status")
    assert code == 0
    assert "2024  open" in out
    code, out, _ = run(market, market.seller_token, "compliance", "carryover", "2023")
    assert code == 0
    assert out.startswith("Carryover of 2019-2023 allowances: limit 10,000 t")
    assert balance(market.seller, market.exchange.cea) == (9_940, 0)


def test_pledge_commands_reach_the_api_and_print_refusals(market):
    exposure = run(market, market.seller_token, "pledge", "exposure")
    unknown = run(market, market.seller_token, "pledge", "show", "999999")
    enforce = run(
        market, market.seller_token, "pledge", "enforce", "999999", "--method", "agreement", "--price", "80.00"
    )

    assert exposure[0] == 1
    assert exposure[2].startswith("error: wrong_participant_kind: ")
    assert (unknown[0], unknown[2].splitlines()[0].split(":")[1].strip()) == (1, "pledge_not_found")
    assert (enforce[0], enforce[2].splitlines()[0].split(":")[1].strip()) == (1, "pledge_not_found")


def test_non_trade_transfers_are_listed_and_a_ccer_application_is_commented(market):
    from datetime import date

    from accounts.models import ParticipantKind
    from exchange.services.calendar import calendar_year_load
    from exchange.services.ccer import ccer_application_submit, ccer_publicity_open, ccer_reference_seed

    registry = market.exchange.market.registry_actor
    ccer_reference_seed(actor=registry)
    calendar_year_load(actor=registry, code="CN", year=2026)
    owner, _, owner_actor = market.exchange.trader("Owner", kind=ParticipantKind.PROJECT_OWNER)
    application = ccer_publicity_open(
        actor=registry,
        target=ccer_application_submit(
            actor=owner_actor,
            owner=owner,
            code="WIND-OFF-9",
            name="Offshore wind",
            project_type="renewable",
            methodology="CCER-01-002-V01",
            location="Yancheng, Jiangsu",
            start_date=date(2021, 6, 1),
            crediting_start=date(2021, 6, 1),
            crediting_end=date(2031, 5, 31),
            validation_body="CEC",
            validation_report_sha256="a" * 64,
        ),
    )
    run(market, market.seller_token, "non-trade", market.buyer.number, "CEA-2024", "25", "inheritance", "a" * 64)

    listed, listing, _ = run(market, market.seller_token, "non-trade-list")
    commented, comment, _ = run(
        market, market.seller_token, "ccer", "comment", "--application", str(application.pk), "Bird migration route."
    )
    claims, claim_table, _ = run(market, market.seller_token, "ccer", "claims")

    assert listed == 0
    [row] = listing.splitlines()[2:]
    assert row.split()[1:] == ["applied", market.seller.number, market.buyer.number, "CEA-2024", "25", "inheritance"]
    assert commented == 0
    assert comment.startswith("Comment ")
    assert application.comments.get().author == "Seller Steel"
    assert claims == 0
    assert claim_table.splitlines()[2:] == ["(none)"]  # no claim yet


def test_pledge_amendment_commands_apply_confirm_and_register(market):
    from accounts.models import ParticipantKind
    from tests.helpers.api import token_for
    from tests.helpers.pledges import Pledges

    ex = market.exchange
    ps = Pledges(
        ex=ex,
        borrower=ex.trader("Borrower Co", units=1000),
        bank=ex.trader("Bank of Beijing", kind=ParticipantKind.FINANCIAL_INSTITUTION),
    )
    loan = ps.registered(500)
    borrower, bank = token_for(ps.borrower[2]), token_for(ps.bank[2])

    applied = run(market, borrower, "pledge", "amend", str(loan.pk), "--kind", "top_up", "--quantity", "100")
    assert (applied[0], applied[2]) == (0, "")
    assert applied[1].startswith("Amendment ")
    assert "top_up, requested, 100 t" in applied[1]
    number = applied[1].split()[1]
    refused = run(market, bank, "pledge", "amendment-register", str(loan.pk), number)
    confirmed = run(market, bank, "pledge", "amendment-confirm", str(loan.pk), number)
    registered = run(market, market.registry_token, "pledge", "amendment-register", str(loan.pk), number)
    listed = run(market, borrower, "pledge", "amendments", str(loan.pk))

    assert (refused[0], refused[2].split(":")[1].strip()) == (1, "wrong_participant_kind")
    assert (confirmed[0], "applied" in confirmed[1]) == (0, True)
    assert registered[0] == 0, registered[2]
    assert f"{loan.registration_reference}-A01" in registered[1]
    assert f"{loan.registration_reference}-A01" in listed[1]
    assert balance(ps.account, ps.cea) == (1000, 600)
