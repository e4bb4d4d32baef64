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
