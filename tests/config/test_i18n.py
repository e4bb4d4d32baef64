"""Chinese first, English kept: the catalogue translates every message and holds every string the code
wraps for translation; the API's errors, the admin and the public pages speak the language asked for
(Accept-Language, or Chinese when none is asked for)."""

from __future__ import annotations

import os
import shutil
from datetime import date

import pytest
from django.template.loader import render_to_string
from django.test import Client, override_settings
from django.utils import translation

from config import catalogues
from exchange.management.commands.translations import new_in_code
from tests.helpers.api import client_for, error_of


def test_every_message_in_the_catalogue_has_a_translation():
    missing = catalogues.untranslated()

    assert catalogues.catalogues(), "no catalogue under locale/"
    assert [entry.msgid for entry in missing] == [], (
        f"{len(missing)} message(s) without a Chinese translation (list them with `manage.py translations missing`)"
    )


@pytest.mark.skipif(
    shutil.which("xgettext") is None and os.environ.get("REQUIRE_SERVICES") != "1",
    reason="makemessages needs GNU gettext (xgettext); .ci/run installs it",
)
def test_the_catalogue_holds_every_string_the_code_wraps_for_translation():
    new = new_in_code()

    assert [msgid for _context, msgid in new] == [], (
        f"{len(new)} string(s) in the code are not in the catalogue: run `make messages`, translate, commit"
    )


def test_the_compiled_catalogue_translates():
    with translation.override("zh-hans"):
        assert translation.gettext("No such asset.") == "资产不存在。"
    with translation.override("en"):
        assert translation.gettext("No such asset.") == "No such asset."


def test_api_errors_speak_the_language_the_client_asks_for(market):
    _, _, actor = market.holder("Shougang Steel")
    client = client_for(actor)

    chinese = client.get("/api/v1/accounts/CN-999-999999/holdings", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")
    english = client.get("/api/v1/accounts/CN-999-999999/holdings", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert error_of(chinese)[1] == error_of(english)[1]  # the code never changes with the language
    assert chinese.json()["error"]["message"] != english.json()["error"]["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.json()["error"]["message"])
    assert chinese["Content-Language"] == "zh-hans"
    assert english["Content-Language"] == "en"


@override_settings(LANGUAGE_CODE="zh-hans")
def test_chinese_is_the_default_when_no_language_is_asked_for(market):
    response = Client().post("/api/v1/transfers", data="{}", content_type="application/json")

    assert response.status_code == 401
    assert response["Content-Language"] == "zh-hans"


@override_settings(LANGUAGE_CODE="zh-hans")
def test_the_admin_and_the_front_page_are_chinese_by_default(market, admin_client):
    index = admin_client.get("/admin/")
    front = Client().get("/")

    page = index.content.decode()
    assert index.status_code == 200
    for group in ["注册登记", "交易", "结算", "质押", "履约", "审计", "访问权限"]:
        assert group in page
    assert "碳市场与注册登记" in front.content.decode()


def test_a_page_switches_to_english_and_back(market):
    client = Client()

    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    english = client.get("/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    chinese = client.get("/").content.decode()

    assert "Carbon market and registry" in english
    assert "碳市场与注册登记" in chinese


def test_every_msgid_is_english_with_no_chinese_gloss():
    chinese = [
        msgid
        for po in catalogues.catalogues()
        for _context, msgid in catalogues.msgids(po)
        if any("\u4e00" <= ch <= "\u9fff" for ch in msgid)
    ]

    assert chinese == [], "a msgid is the English text; the Chinese belongs in its msgstr"


def test_quotes_name_the_opening_price_and_the_market_not_an_open_state(rf):
    row = {
        "market": "CNEEEX",
        "asset": "CEA-2024",
        "open_fen": 9_000,
        "high_fen": 9_500,
        "low_fen": 8_800,
        "close_fen": 9_100,
        "final": True,
        "vwap_fen": 9_050,
        "volume": 1_000,
        "turnover_fen": 9_050_000,
        "by_mode": {},
    }
    with translation.override("zh-hans"):
        page = render_to_string(
            "registry/quotes.html", {"rows": [row], "markets": [], "day": date(2026, 12, 2)}, request=rf.get("/")
        )
        assert translation.pgettext("trading venue", "Market") == "市场"
        assert translation.gettext("Open") == "进行中"  # an order's or an obligation's state keeps its word

    for heading in ["市场", "开盘价", "最高价", "最低价", "收盘价"]:
        assert f">{heading}<" in page
    assert "<label>市场 <select" in page
    assert "进行中" not in page


def test_a_service_refusal_built_from_its_figures_reads_in_chinese(market):
    from core.errors import DomainError
    from exchange.services.transfers import MAX_BATCH, transfers_batch_create

    _, _, actor = market.holder("Shougang Steel")

    with translation.override("zh-hans"), pytest.raises(DomainError) as chinese:
        transfers_batch_create(actor=actor, transfers=[])
    with translation.override("en"), pytest.raises(DomainError) as english:
        transfers_batch_create(actor=actor, transfers=[])

    assert chinese.value.code == english.value.code == "invalid"
    assert str(chinese.value.message) == f"一批划转须包含 1 至 {MAX_BATCH} 笔。"
    assert str(english.value.message) == f"A batch holds 1 to {MAX_BATCH} transfers."


# --- texts kept as written: in the registry's language, whatever the request's (docs/i18n.md) ----------------
@pytest.mark.parametrize(
    ("registry", "expected"),
    [("zh-hans", "履约年度 2024 预分配"), ("en", "Pre-allocate compliance year 2024")],
)
def test_an_approval_summary_is_written_in_the_registry_language_whatever_the_request(registry, expected):
    from exchange.services.approval_summaries import allocate_summary, preallocation_summary

    with override_settings(LANGUAGE_CODE=registry), translation.override("en" if registry == "zh-hans" else "zh-hans"):
        summary = preallocation_summary(2024)
        allocation = allocate_summary(asset="CEA-2025", quantities=[1_000, 100])

    assert summary == expected
    assert allocation == (
        "向 2 个账户分配 CEA-2025 1100 吨" if registry == "zh-hans" else "Allocate 1100 t of CEA-2025 to 2 accounts"
    )


def test_a_memo_is_written_in_the_registry_language_and_kept_as_written():
    from django.utils.translation import gettext_noop

    from core.i18n import registry_text

    with override_settings(LANGUAGE_CODE="zh-hans"), translation.override("en"):
        memo = registry_text(gettext_noop("Surrender for %(year)s"), {"year": 2024})
    with translation.override("en"):
        shown = str(memo)

    assert shown == "2024 年度清缴"


def test_a_kept_text_and_a_text_read_later_are_filled_by_one_function(monkeypatch):
    """registry_text (now, in the registry's language) and lazy_text (when read, in the reader's) differ only
    in when: both translate and fill through core.i18n.filled_text, lazy parameters (a choice's label) too."""
    from django.utils.translation import gettext_noop

    from core import i18n
    from exchange.models import PledgeStatus

    message = gettext_noop("Pledge %(reference)s declared in default on %(day)s")
    params = {"reference": PledgeStatus.REGISTERED.label, "day": "2026-12-03"}
    with override_settings(LANGUAGE_CODE="zh-hans"), translation.override("en"):
        kept = i18n.registry_text(message, params)
    with translation.override("zh-hans"):
        read = str(i18n.lazy_text(message, params))
        label = str(PledgeStatus.REGISTERED.label)
    calls = []
    monkeypatch.setattr(i18n, "filled_text", lambda *args: calls.append(args) or "filled")

    assert kept == read == f"质押 {label} 于 2026-12-03 被宣布违约"
    assert label != PledgeStatus.REGISTERED.label  # the lazy parameter was translated too
    assert (i18n.registry_text(message, params), str(i18n.lazy_text(message, params))) == ("filled", "filled")
    assert calls == [(message, params), (message, params)]


def test_the_statement_csv_names_a_trade_leg_in_the_reader_language():
    from exchange.selectors.balances import _legs_text

    leg = {"trade": 7, "asset": "CEA-2024", "side": "sell", "quantity": 100, "price": "80.00", "units": -100}
    leg |= {"turnover": "8000.00", "cash": "+7996.00", "fee": "4.00"}

    with translation.override("zh-hans"):
        chinese = _legs_text([leg])
    with translation.override("en"):
        english = _legs_text([leg])

    assert chinese == "成交 7 卖出 CEA-2024 100 @ 80.00：数量 -100，资金 +7996.00，手续费 4.00"
    assert english == "trade 7 sell 100 CEA-2024 @ 80.00: units -100, cash +7996.00, fee 4.00"


def test_the_cli_heads_its_tables_in_chinese_and_aligns_them_by_display_width():
    import io

    from exchange import cli

    out = io.StringIO()
    try:
        cli.activate("zh-hans")
        cli.table(cli.RULEBOOK_HEADERS[:2], [[3, "2026-01-01"]], out)
        message = cli._("Each --set is NAME=VALUE (VALUE as JSON, or text).")
        sides = [cli.side_name("buy"), cli.side_name("sell")]
    finally:
        cli.activate("en")

    header, rule, row = out.getvalue().splitlines()
    assert header.split() == ["版本", "生效时间"]
    assert rule == "----  ----------"  # 版本 takes four columns on a terminal, not two
    assert row == "   3  2026-01-01"
    assert message == "每个 --set 的格式为 名称=值（值为 JSON 或文本）。"
    assert sides == ["买入", "卖出"]
    assert cli.side_name("sell") == "sell"  # in English again


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("zh-hans", "请提供 client_order_id 或 Idempotency-Key。"),
        ("en", "Give a client_order_id or an Idempotency-Key."),
    ],
)
@pytest.mark.parametrize("endpoint", ["/api/v1/orders", "/api/v1/listings"])
def test_an_order_without_client_order_id_or_key_is_told_in_the_reader_language(db, language, message, endpoint):
    from tests.helpers.market import make_exchange

    ex = make_exchange()
    _, account, seller = ex.trader("Seller", units=500)
    payload = {"account": account.number, "asset": "CEA-2024", "side": "sell", "price": "80.00", "quantity": 10}

    response = client_for(seller).post(endpoint, payload, format="json", HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 400
    assert error_of(response)[1] == "invalid"
    assert response.json()["error"]["details"]["client_order_id"] == [message]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("zh-hans", "数量须为 1 至 1000000000000 的整数。"),
        ("en", "Quantities are whole numbers from 1 to 1000000000000."),
    ],
)
def test_a_refusal_with_figures_reads_in_the_language_it_is_raised_in(language, message):
    from core.errors import InvalidQuantity
    from core.limits import check_quantity

    with translation.override(language), pytest.raises(InvalidQuantity) as refused:
        check_quantity(0)

    assert refused.value.code == "invalid_quantity"
    assert str(refused.value.message) == message


@pytest.mark.usefixtures("in_session")
@pytest.mark.parametrize(
    ("registry", "subject", "body_starts"),
    [
        ("zh-hans", "质押 {ref}：质权人提议按每吨 75.00 元折价受让", "{lender} 提议以协议方式处置质押 {ref}"),
        (
            "en",
            "Pledge {ref}: the lender proposes to take units at 75.00 yuan/t",
            "{lender} proposes to enforce pledge {ref}",
        ),
    ],
)
def test_the_agreement_proposal_notice_is_written_in_the_registry_language(db, registry, subject, body_starts):
    from datetime import timedelta

    from core import clock
    from exchange.models import Notice, NoticeKind
    from exchange.services.pledges import pledge_default, pledge_enforce
    from tests.helpers.pledges import DAY, at, make_pledges

    ps = make_pledges()
    loan = ps.registered(300, serials=(401, 700), maturity_date=DAY + timedelta(days=1))
    with clock.pinned(at(DAY + timedelta(days=2))):
        pledge_default(actor=ps.bank[2], loan=loan)
        other = "en" if registry == "zh-hans" else "zh-hans"  # the lender's request asks for the other language
        with override_settings(LANGUAGE_CODE=registry), translation.override(other):
            pledge_enforce(actor=ps.bank[2], loan=loan, method="agreement", price_fen=7500, costs_fen=1000)

    notices = Notice.objects.filter(kind=NoticeKind.ENFORCEMENT, object_id=str(loan.pk))
    ref, lender = loan.registration_reference, loan.lender.name
    assert {n.address for n in notices} == {loan.borrower.email, loan.lender.email}
    assert {n.subject for n in notices} == {subject.format(ref=ref)}
    assert all(n.body.startswith(body_starts.format(ref=ref, lender=lender)) for n in notices)



@pytest.mark.parametrize(
    ("app", "name", "chinese", "english"),
    [
        (
            "exchange",
            "verify_audit",
            ["验证每个审计事件的哈希（存储的和封存的）", "列出所有不一致之处，而不只是第一个。"],
            ["Verify every audit event hash (as stored and as sealed)", "List every mismatch, not only the first."],
        ),
        (
            "accounts",
            "revoke_token",
            ["吊销前缀为 PREFIX", "令牌前缀（与管理后台列表中所示一致），或整个令牌。"],
            ["Revoke the API token with PREFIX", "The token's prefix (as the admin lists it), or the whole token."],
        ),
    ],
)
def test_a_management_command_help_is_in_the_active_language(app, name, chinese, english):
    from django.core.management import load_command_class

    with translation.override("zh-hans"):
        in_chinese = load_command_class(app, name).create_parser("manage.py", name).format_help()
    with translation.override("en"):
        in_english = load_command_class(app, name).create_parser("manage.py", name).format_help()

    assert all(text in " ".join(in_chinese.split()) for text in chinese), in_chinese  # as one line, unwrapped
    assert all(text in " ".join(in_english.split()) for text in english), in_english
