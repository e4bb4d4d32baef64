"""The admin a registry officer works in: models grouped by the work, search on every list, money in yuan
and rates in percent wherever a person reads them, a CSV export of every list, no save buttons where nothing
can change, and API tokens issued (shown once) and revoked."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

import pytest
from django.contrib import admin
from django.test import override_settings

from accounts.models import ApiToken
from core import clock
from exchange.admin.market import RulebookPublishForm
from exchange.admin.pledges import ComplianceReleaseForm, CourtOrderForm, EnforceAgreementForm, EnforceSaleForm
from exchange.admin_site import WORK
from exchange.models import Transaction
from tests.factories import UserFactory, make_trade
from tests.helpers.api import admin_client_for, client_for
from tests.helpers.market import make_exchange
from tests.helpers.pledges import make_pledges

pytestmark = pytest.mark.django_db

# The admin's pages of their own that take money or rates (every model form is found through the site).
PAGE_FORMS = [ComplianceReleaseForm, EnforceSaleForm, EnforceAgreementForm, CourtOrderForm, RulebookPublishForm]


def test_the_index_groups_models_by_the_work_in_order(market):
    page = admin_client_for(market.registry_actor).get("/admin/").content.decode()

    captions = re.findall(r'<caption>\s*<a href="#(\w+)"', page)
    assert captions[: len(WORK)] == [key for key, _name, _models in WORK]


def test_every_list_has_a_search_box_and_a_csv_export(market):
    client = admin_client_for(market.registry_actor)
    for model, model_admin in admin.site._registry.items():
        assert model_admin.search_fields, f"{model._meta.label} has no search"
        assert model_admin.change_list_template, f"{model._meta.label} has no list template"
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        searched = client.get(url, {"q": "CN-100 x"})
        exported = client.get(url, {"_export": "csv"})
        assert searched.status_code == 200, url
        assert exported.status_code == 200, url
        assert exported["Content-Type"].startswith("text/csv"), url


def test_a_cash_balance_reads_in_yuan_with_separators_and_units_with_separators():
    ex = make_exchange()
    _, account, _ = ex.trader("Jingneng Thermal Power", units=900_000, cash_fen=4_995_528_330)

    page = admin_client_for(ex.market.registry_actor).get(f"/admin/exchange/balance/?q={account.number}")
    page = page.content.decode()

    assert "49,955,283.30" in page
    assert "4995528330" not in page
    assert "900,000" in page


def test_a_pledge_reads_in_yuan_and_percent(in_session):
    ps = make_pledges()
    loan = ps.registered(100, principal_fen=520_000)

    page = admin_client_for(ps.bank[2]).get(f"/admin/exchange/pledgeloan/{loan.pk}/change/").content.decode()

    assert "5,200.00" in page  # the principal, in yuan
    assert "70.00%" in page  # the LTV limit
    assert "Ltv bp" not in page
    assert "Principal fen" not in page


# Words that say a figure is typed in the unit the ledger keeps, not the one a person types.
KEPT_UNITS = re.compile(r"\bfen\b|basis point|\bbp\b", re.IGNORECASE)


def test_every_money_and_rate_input_is_typed_in_yuan_or_percent_and_says_so(rf):
    request = rf.get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    forms = {model._meta.label: model_admin.get_form(request) for model, model_admin in admin.site._registry.items()}
    forms |= {form.__name__: form for form in PAGE_FORMS}

    typed = {
        f"{owner}.{name}": (type(field).__name__, f"{field.label} | {field.help_text}")
        for owner, form in forms.items()
        for name, field in form.base_fields.items()
        if name.endswith(("_fen", "_bp"))
    }

    assert "exchange.PledgeLoan.principal_fen" in typed
    assert "EnforceSaleForm.price_fen" in typed
    assert {k: kind for k, (kind, _words) in typed.items() if kind not in {"YuanField", "PercentField"}} == {}
    assert {k: words for k, (_kind, words) in typed.items() if KEPT_UNITS.search(words)} == {}


@pytest.mark.usefixtures("in_session")
def test_a_rulebook_version_is_published_with_the_tick_in_yuan_and_rates_in_percent():
    ex = make_exchange()
    latest = ex.cea.market.rulebooks.order_by("-version").first()
    client = admin_client_for(ex.operator)
    url = f"/admin/exchange/rulebook/publish/{ex.cea.market.code}/"

    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    modes = json.loads(data["modes"])
    assert (data["tick_fen"], data["pledge_valuation_band_bp"]) == ("0.01", "10.00")
    assert modes
    assert [sorted(k for k in m if k.endswith(("_bp", "band", "fee"))) for m in modes] == [
        ["band", "buyer_fee", "seller_fee"]
    ] * len(modes)

    modes[0] |= {"band": "7.25", "seller_fee": "0.05"}
    published = client.post(
        url,
        {
            **data,
            "effective_from": clock.trading_day().isoformat(),
            "pledge_valuation_band_bp": "7.50",
            "modes": json.dumps(modes),
        },
    )

    assert published.status_code == 302
    book = ex.cea.market.rulebooks.order_by("-version").first()
    assert book.version == latest.version + 1
    assert (book.tick_fen, book.pledge_valuation_band_bp) == (1, 750)
    assert book.alert_price_deviation_bp == latest.alert_price_deviation_bp
    mode = book.modes.get(mode=modes[0]["mode"])
    assert (mode.band_bp, mode.seller_fee_bp) == (725, 5)


@pytest.mark.usefixtures("in_session")
@pytest.mark.parametrize(
    ("field", "typed", "error"),
    [
        ("pledge_valuation_band_bp", "7.505", "Enter a percentage with at most two decimals, e.g. 3.85."),
        ("tick_fen", "0.001", "Enter yuan with at most two decimals (fen), e.g. 72.50."),
        ("band", "7.505", 'is a percentage with at most two decimals, e.g. "10.00".'),
    ],
)
def test_a_rulebook_rate_or_price_finer_than_the_ledger_keeps_is_refused(field, typed, error):
    ex = make_exchange()
    versions = ex.cea.market.rulebooks.count()
    client = admin_client_for(ex.operator)
    url = f"/admin/exchange/rulebook/publish/{ex.cea.market.code}/"
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["effective_from"] = clock.trading_day().isoformat()
    if field == "band":
        modes = json.loads(data["modes"])
        modes[0]["band"] = typed
        data["modes"] = json.dumps(modes)
    else:
        data[field] = typed

    refused = client.post(url, data)

    assert refused.status_code == 200
    [message] = [str(e) for errors in refused.context["form"].errors.values() for e in errors]
    assert error in message
    assert ex.cea.market.rulebooks.count() == versions


def test_trades_export_as_csv_in_yuan_with_china_times(market):
    _, seller, _ = market.holder("Seller")
    _, buyer, _ = market.holder("Buyer")
    market.give(seller, 1000)
    make_trade(asset=market.cea, seller=seller, buyer=buyer, quantity=300, price_fen=8850, day=date(2026, 11, 25))

    response = admin_client_for(market.registry_actor).get("/admin/exchange/trade/?_export=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    header, first = rows[0], rows[1]
    assert "price (yuan/t)" in header
    assert first[header.index("price (yuan/t)")] == "88.50"
    assert first[header.index("turnover (yuan)")] == "26,550.00"


def test_the_csv_export_follows_the_lists_filters(market):
    response = admin_client_for(market.registry_actor).get(
        "/admin/exchange/transaction/?kind__exact=retirement&_export=csv"
    )

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 1 + Transaction.objects.filter(kind="retirement").count()


def test_a_read_only_page_has_no_save_button(market):
    _, account, _ = market.holder("Holder")
    market.give(account, 10)
    txn = Transaction.objects.order_by("-id").first()

    page = admin_client_for(market.registry_actor).get(f"/admin/exchange/transaction/{txn.pk}/change/").content.decode()

    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page


@override_settings(LANGUAGE_CODE="zh-hans")
def test_the_admin_in_chinese_names_models_as_an_officer_does(market):
    page = admin_client_for(market.registry_actor).get("/admin/").content.decode()

    for word in ["登记账户", "日记账分录", "结算批次", "质押", "履约义务", "审计事件", "API 令牌", "序列号区段"]:
        assert word in page


def test_an_admin_issues_a_token_shown_once_and_it_works(market):
    _, _, trader = market.holder("Jingneng Thermal Power")
    staff = admin_client_for(trader)  # the user issues their own token
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=trader.user_id)

    page = staff.post("/admin/accounts/apitoken/issue/", {"user": user.pk, "name": "desk bot"})

    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    text = re.search(r'id="token-text"[^>]*>(gl_[^<]+)<', page.content.decode()).group(1)
    token = ApiToken.objects.get(user=user, name="desk bot")
    assert text.split("_")[1] == token.prefix
    assert text not in token.digest
    assert client_for(token=text).get("/api/v1/").status_code == 200
    listing = staff.get("/admin/accounts/apitoken/").content.decode()
    assert text not in listing


def test_an_admin_revokes_a_token_and_it_stops_working(market):
    _, _, trader = market.holder("Jingneng Thermal Power")
    from tests.helpers.api import token_for

    text = token_for(trader)
    token = ApiToken.objects.get(prefix=text.split("_")[1])

    admin_client_for(market.registry_actor).post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client_for(token=text).get("/api/v1/").status_code == 401


def test_a_user_of_another_participant_cannot_issue_someone_elses_token(market):
    _, _, one = market.holder("One Co.")
    _, _, other = market.holder("Other Co.")
    from django.contrib.auth import get_user_model

    victim = get_user_model().objects.get(pk=other.user_id)

    page = admin_client_for(one).post("/admin/accounts/apitoken/issue/", {"user": victim.pk, "name": "stolen"})

    assert "role_forbidden" in page.content.decode()
    assert not ApiToken.objects.filter(user=victim, name="stolen").exists()
