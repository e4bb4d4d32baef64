"""The ``greenledger`` command's retire, pending, statement and approvals commands against a live server, and
its language: the locale's (Chinese for zh_CN), with the server's error messages in the same language."""

from __future__ import annotations

import io
from datetime import date

import pytest

from exchange.cli import cli_language, main
from exchange.models import ApprovalRequest, ApprovalStatus, AuditEvent, Retirement, Rulebook
from exchange.selectors.rulebooks import rulebook_for
from tests.helpers.api import token_for
from tests.helpers.ledger import balance
from tests.helpers.live import in_session, make_live_market

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def market(live_server, monkeypatch):
    monkeypatch.setenv("GREENLEDGER_LANGUAGE", "en")
    with in_session():
        yield make_live_market(live_server.url)


def run(market, token: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", market.url, "--token", token, *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_language_follows_the_locale():
    assert cli_language({"LANG": "zh_CN.UTF-8"}) == "zh-hans"
    assert cli_language({"LANG": "en_US.UTF-8"}) == "en"
    assert cli_language({"LANG": "C.UTF-8"}) == "en"
    assert cli_language({"LANG": "en_US.UTF-8", "GREENLEDGER_LANGUAGE": "zh-hans"}) == "zh-hans"
    assert cli_language({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}) == "zh-hans"


def test_retire_prints_the_retirement_and_its_certificate(market):
    code, out, _ = run(
        market, market.seller_token, "retire", "CEA-2024", "100", "--beneficiary", "Canal Run", "--reason", "Offset"
    )

    retirement = Retirement.objects.get()
    assert code == 0
    assert out.splitlines()[0] == f"Retirement {retirement.pk}: 100 t of CEA-2024 retired for Canal Run."
    assert f"/registry/retirements/{retirement.pk}" in out
    assert balance(market.seller, market.exchange.cea) == (9_900, 0)


def test_pending_transfers_list_and_cancel(market, settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True}
    run(market, market.seller_token, "transfer", market.buyer.number, "CEA-2024", "25")

    listed_code, listed, _ = run(market, market.seller_token, "pending", "list")
    pending_id = listed.splitlines()[2].split()[0]
    cancel_code, cancelled, _ = run(market, market.seller_token, "pending", "cancel", pending_id)

    assert (listed_code, cancel_code) == (0, 0)
    assert "pending" in listed.splitlines()[2]
    assert cancelled.startswith(f"Pending transfer {pending_id}: cancelled")
    assert balance(market.seller, market.exchange.cea) == (10_000, 0)


def test_statement_lists_postings_with_the_balance_after(market):
    run(market, market.seller_token, "transfer", market.buyer.number, "CEA-2024", "25")

    code, out, _ = run(market, market.seller_token, "statement", "--asset", "CEA-2024")

    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"Statement of {market.seller.number}, newest first"
    assert lines[1].split() == ["time", "journal", "entry", "kind", "asset", "amount", "balance", "after", "memo"]
    assert "-25" in lines[3]
    assert "9,975" in lines[3]


def test_approvals_list_and_approve_by_a_second_registry_user(market, settings):
    from accounts.actors import Actor
    from exchange.models import ApprovalOperation, Asset
    from exchange.services.approvals import gated
    from exchange.services.issuance import AllocationRow, cea_allocate
    from tests.helpers.ledger import actor_for

    settings.GREENLEDGER = {**settings.GREENLEDGER, "FOUR_EYES_THRESHOLD": 10}
    registry = market.exchange.market.registry
    first = market.exchange.market.registry_actor
    second = actor_for(registry)
    asset = Asset.objects.get(code="CEA-2024")
    rows = [AllocationRow(account=market.buyer, quantity=50)]
    gated(
        actor=first,
        operation=ApprovalOperation.CEA_ALLOCATE,
        params={"asset": asset.code, "rows": [[market.buyer.number, 50]], "idempotency_key": "cli-1", "memo": ""},
        summary="Allocate 50 t to the buyer",
        call=lambda: cea_allocate(actor=first, asset=asset, rows=rows, idempotency_key="cli-1"),
    )
    approval = ApprovalRequest.objects.get()
    assert isinstance(first, Actor)

    listed_code, listed, _ = run(market, token_for(second), "approvals", "list", "--status", "pending")
    own_code, _, own_err = run(market, token_for(first), "approvals", "approve", str(approval.pk))
    code, out, _ = run(market, token_for(second), "approvals", "approve", str(approval.pk))

    assert listed_code == 0
    assert "Allocate 50 t to the buyer" in listed
    assert (own_code, own_err.split(":")[1].strip()) == (1, "four_eyes_same_user")
    assert code == 0
    assert out.startswith(f"Approval request {approval.pk}: approved")
    assert ApprovalRequest.objects.get().status == ApprovalStatus.APPROVED
    assert balance(market.buyer, asset) == (50, 0)


def test_in_chinese_the_tables_and_the_servers_refusals_are_chinese(market, monkeypatch):
    monkeypatch.setenv("GREENLEDGER_LANGUAGE", "zh-hans")

    code, out, _ = run(market, market.seller_token, "holdings")
    refused, _, err = run(market, market.seller_token, "transfer", "CN-100-999999", "CEA-2024", "1")

    assert code == 0
    assert out.splitlines()[0] == f"{market.seller.number} 的持仓"
    assert out.splitlines()[1].split()[:3] == ["资产", "类型", "总额"]
    assert refused == 1
    assert err.splitlines()[0] == (
        "错误: account_not_found: 持有账户 CN-100-999999 不存在：请核对转入账户号（形如 CN-100-000123）。"
    )


def test_rulebook_list_and_publish(market):
    published = AuditEvent.objects.filter(action="market.rulebook_publish").count()
    listed_code, listed, _ = run(market, market.seller_token, "rulebook", "list", "CN-CEA")
    refused_code, _, refused = run(market, market.seller_token, "rulebook", "publish", "CN-CEA", "2099-01-01")
    code, out, _ = run(
        market,
        market.operator_token,
        "rulebook",
        "publish",
        "CN-CEA",
        "2099-01-01",
        "--set",
        "large_holder_threshold_t=2000000",
        "--set",
        "title=National allowance market, 2099 rules",
    )

    versions = Rulebook.objects.filter(market__code="CN-CEA").count()
    assert listed_code == 0
    in_effect = rulebook_for("CN-CEA").effective_from.isoformat()
    assert listed.splitlines()[2].split()[:3] == [str(versions - 1), in_effect, "*"]
    assert refused_code != 0
    assert "wrong_participant_kind" in refused
    assert code == 0
    assert out.splitlines()[2].split()[:2] == [str(versions), "2099-01-01"]
    assert rulebook_for("CN-CEA", date(2099, 1, 1)).large_holder_threshold_t == 2_000_000
    assert AuditEvent.objects.filter(action="market.rulebook_publish").count() == published + 1


def test_rulebook_publish_sets_whether_sales_cash_buys_on_the_day(market):
    code, _, err = run(
        market,
        market.operator_token,
        "rulebook",
        "publish",
        "CN-CEA",
        "2099-01-01",
        "--set",
        "sale_cash_buys_same_day=false",
    )

    assert code == 0, err
    assert rulebook_for("CN-CEA", date(2099, 1, 1)).sale_cash_buys_same_day is False
    assert rulebook_for("CN-CEA").sale_cash_buys_same_day is True
