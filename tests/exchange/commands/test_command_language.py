"""The management commands speak the registry's language (LANGUAGE_CODE, Chinese) and count in its grammar:
their outcomes, refusals and counts, not only their ``--help`` (docs/i18n.md)."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import translation

from accounts.models import ApiToken
from exchange.management.commands import run_engine
from exchange.models import AuditEvent, Calendar
from exchange.services.transfers import transfer_create

pytestmark = pytest.mark.django_db

ENGLISH_WORD = re.compile(r"\b[a-z]{4,}\b")


def _call(command: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with translation.override("zh-hans"):  # manage.py speaks the registry's language (LANGUAGE_CODE)
        try:
            call_command(command, *args, stdout=out, stderr=err)
        except SystemExit as exit_:
            return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _refusal(command: str, *args: str) -> str:
    with translation.override("zh-hans"), pytest.raises(CommandError) as refused:
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(refused.value)


def _words(text: str) -> set[str]:
    """The English words left in a text."""
    return set(ENGLISH_WORD.findall(text))


def test_create_and_revoke_token_say_what_they_did_in_chinese(market):
    _, _, actor = market.holder("Jingneng")
    username = get_user_model().objects.get(pk=actor.user_id).username

    _, out, err = _call("create_token", username)
    token = ApiToken.objects.get()
    _, revoked, _ = _call("revoke_token", token.prefix)

    assert err.strip() == f"已为 {username} 创建令牌 {token.prefix}；请立即复制，之后不再显示："
    assert out.startswith(f"gl_{token.prefix}_")
    assert revoked.strip() == f"{username} 的令牌 {token.prefix} 已吊销。"
    assert _refusal("create_token", "nobody") == (
        "没有用户 'nobody'。请先创建该用户（manage.py createuser 或管理后台）。"
    )
    assert _refusal("revoke_token", "nosuchprefix") == "没有前缀为 'nosuchprefix' 的 API 令牌。"


def test_settle_counts_and_reports_in_chinese():
    _, out, err = _call("settle")

    assert err.splitlines() == ["[1/2] 0 笔未结算成交，共 0 吨，涉及 0 个资产", "[2/2] 正在以一个批次结算……"]
    assert re.fullmatch(
        r"settle：批次 \d+（无需结算）：0 笔成交，0 吨，0\.00 元，手续费 0\.00 元，解除冻结 0 笔，用时 [\d.]+ 秒\n", out
    )
    assert _refusal("settle", "--as", "nobody") == "没有用户 'nobody'。"


def test_audit_seal_reports_in_chinese(market):
    _, a_acc, a = market.holder("A")
    _, b_acc, _ = market.holder("B")
    market.give(a_acc, 10)
    transfer_create(actor=a, source=a_acc, destination=b_acc, asset=market.cea, quantity=3)

    _, sealed, _ = _call("audit_seal")
    _, nothing, _ = _call("audit_seal")

    events = AuditEvent.objects.count()
    assert re.fullmatch(rf"audit_seal：1 个检查点，{events} 条事件，封存至事件 \d+；最新哈希 [0-9a-f]{{64}}\n", sealed)
    assert nothing == "audit_seal：没有需要封存的新事件。\n"


def test_reconcile_names_its_checks_and_counts_in_chinese(market):
    _, a_acc, _ = market.holder("A")
    market.give(a_acc, 10)

    code, out, err = _call("reconcile")

    assert code == 0
    assert re.fullmatch(
        r"reconcile：全部通过，\d+ 项检查，覆盖 \d+ 笔日记账分录，\d+ 条记账明细，\d+ 个序列号区段，1 个资产，"
        r"用时 [\d.]+ 秒\n",
        out,
    )
    assert "通过   1 借贷平衡" in err
    assert "通过   7 日记账时间与其顺序一致" in err
    assert not _words(err)


def test_load_calendar_reports_and_refuses_in_chinese():
    _, out, _ = _call("load_calendar", "cn", "2026")

    assert out.startswith("load_calendar：CN 2026：33 天节假日，6 天调休工作日，修订次数 1；已载入；来源：")
    assert _refusal("load_calendar", "cn", "twenty") == "年份须为数字，而不是 'twenty'（calendar_year_invalid）。"
    assert _refusal("load_calendar", "cn", "2026", "--as", "nobody") == "没有用户 'nobody'。"
    assert Calendar.objects.count() == 1


def test_run_engine_says_it_starts_and_stops_in_chinese(monkeypatch):
    class Engine:
        owner = "engine-1"

        def __init__(self, markets: list[str], *, batch: int) -> None:
            pass

        def run(self) -> None:
            pass

        def stop(self) -> None:
            pass

    monkeypatch.setattr(run_engine, "Engine", Engine)
    monkeypatch.setattr(run_engine.signal, "signal", lambda *args: None)

    _, out, _ = _call("run_engine")

    assert out.splitlines() == ["撮合引擎 engine-1 正在启动（市场：全部）", "撮合引擎已停止"]


@override_settings(PRODUCTION=True)
def test_seed_demo_refuses_production_in_chinese():
    assert _refusal("seed_demo") == "seed_demo 载入的演示市场使用公开的密码；在生产环境中拒绝运行。"
    assert AuditEvent.objects.count() == 0
