"""The demo desks in the admin, least privilege: a participant's staff (a trader, a bank officer) open only the
pledge pages of their README flow, and those hold only their own participant's rows; registry staff and auditors
see every pledge. Users here are staff with seed_demo's desk groups, not superusers."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import ParticipantKind
from exchange.management.commands.seed_demo import demo_desk
from exchange.models import AmendmentStatus, PledgeAmendment, PledgeLoan, PledgeStatus
from exchange.services.pledges.amendments import pledge_amendment_request
from tests.factories import AccountFactory
from tests.helpers.ledger import actor_for, balance
from tests.helpers.pledges import Pledges, admin_pledge_request_form, make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session")]

OTHER_PARTICIPANTS_PAGES = [
    "/admin/exchange/account/",
    "/admin/exchange/balance/",
    "/admin/exchange/order/",
    "/admin/accounts/apitoken/",
    "/admin/exchange/approvalrequest/",
    "/admin/accounts/participant/",
    "/admin/exchange/pledgevaluation/",
    "/admin/exchange/auditevent/",
    "/admin/exchange/judicialfreeze/",
    "/admin/exchange/methodology/",
]


def desk_client(actor, desk: str) -> Client:
    user = get_user_model().objects.get(pk=actor.user_id)
    user.is_staff, user.is_superuser = True, False
    user.save()
    user.groups.add(demo_desk(desk))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ps():
    return make_pledges()


@pytest.fixture
def others(ps):
    """Another borrower pledging with another bank: none of it is the trader's or the first bank's."""
    borrower = ps.ex.trader("Yanshan Cement", units=1000)
    bank = ps.ex.trader("Bank of Tianjin", kind=ParticipantKind.FINANCIAL_INSTITUTION)
    return Pledges(ex=ps.ex, borrower=borrower, bank=bank)


@pytest.fixture
def desks(ps):
    return {
        "trader": desk_client(ps.borrower[2], "trader"),
        "bank": desk_client(ps.bank[2], "bank"),
    }


@pytest.mark.parametrize("desk", ["trader", "bank"])
@pytest.mark.parametrize("page", OTHER_PARTICIPANTS_PAGES)
def test_a_participants_desk_opens_no_other_page(desks, desk, page):
    assert desks[desk].get(page).status_code == 403


@pytest.mark.parametrize("desk", ["trader", "bank"])
def test_the_index_shows_only_the_desks_pages_and_no_market_wide_dashboard(desks, desk):
    page = desks[desk].get("/admin/")
    assert page.status_code == 200
    models = {m["object_name"] for group in page.context["app_list"] for m in group["models"]}
    assert models == ({"PledgeLoan", "MarginCall", "PledgeAmendment"} if desk == "bank" else {"PledgeLoan"})
    assert b'id="gl-dashboard"' not in page.content


@pytest.mark.parametrize("desk", ["trader", "bank"])
def test_the_pledge_list_and_pages_hold_only_the_desks_own_pledges(ps, others, desks, desk):
    own = ps.registered(100)
    theirs = others.registered(100)
    client = desks[desk]

    listed = client.get("/admin/exchange/pledgeloan/")
    assert listed.status_code == 200
    assert [loan.pk for loan in listed.context["cl"].result_list] == [own.pk]
    assert client.get(f"/admin/exchange/pledgeloan/{own.pk}/change/").status_code == 200
    # another's pledge is answered as a pledge that doesn't exist (the admin's answer for a missing id: back to
    # the index with its message), so nothing of it shows, not even that it exists
    for page in ("change", "history", "top-up", "enforce-sale", "compliance-release"):
        assert _answer(client, f"/admin/exchange/pledgeloan/{theirs.pk}/{page}/", theirs.pk) == _answer(
            client, f"/admin/exchange/pledgeloan/{MISSING}/{page}/", MISSING
        )
        after = client.get(f"/admin/exchange/pledgeloan/{theirs.pk}/{page}/", follow=True)
        assert after.redirect_chain == [("/admin/", 302)]
        assert theirs.registration_reference.encode() not in after.content
    # the lender filter names the lenders of the listed pledges only
    assert b"Bank of Tianjin" not in listed.content


def test_the_bank_reads_the_margin_calls_of_its_own_pledges_only(ps, others, desks):
    from core import clock
    from exchange.models import MarginCall
    from exchange.tasks import pledges_value_task
    from tests.helpers.pledges import DAY, at

    terms = {"principal_fen": 550_000, "margin_call_bp": 7500}  # LTV 68.75% at 80.00, 76.39% at 72.00
    own = ps.registered(100, **terms)
    theirs = others.registered(100, **terms)
    ps.close_at(DAY, 7200)  # a margin call for both
    with clock.pinned(at(DAY, 15, 40)):
        pledges_value_task()
    mine, other = MarginCall.objects.get(loan=own), MarginCall.objects.get(loan=theirs)

    listed = desks["bank"].get("/admin/exchange/margincall/")
    assert [call.pk for call in listed.context["cl"].result_list] == [mine.pk]
    assert desks["bank"].get(f"/admin/exchange/margincall/{mine.pk}/change/").status_code == 200
    assert _answer(desks["bank"], f"/admin/exchange/margincall/{other.pk}/change/", other.pk) == _answer(
        desks["bank"], f"/admin/exchange/margincall/{MISSING}/change/", MISSING
    )
    assert desks["trader"].get("/admin/exchange/margincall/").status_code == 403
    # the call shows on the loan's page for either party
    page = desks["trader"].get(f"/admin/exchange/pledgeloan/{own.pk}/change/")
    assert "margin_calls" in {formset.formset.prefix for formset in page.context["inline_admin_formsets"]}


def _top_up_requested(pledges: Pledges) -> PledgeAmendment:
    """A registered pledge of 100 t whose borrower asks to add 50 t: waiting for the lender's confirmation."""
    return pledge_amendment_request(
        actor=pledges.borrower[2], loan=pledges.registered(100), kind="top_up", quantity=50
    )


def test_the_bank_opens_and_confirms_the_amendments_of_its_own_pledges_only(ps, others, desks):
    own = _top_up_requested(ps)
    theirs = _top_up_requested(others)
    bank = desks["bank"]

    listed = bank.get("/admin/exchange/pledgeamendment/")
    page = bank.get(f"/admin/exchange/pledgeamendment/{own.pk}/change/")
    assert [amendment.pk for amendment in listed.context["cl"].result_list] == [own.pk]
    assert page.status_code == 200
    assert "/admin/auth/user/" not in page.content.decode()  # who requested it, as text: the bank can't open users
    assert _answer(bank, f"/admin/exchange/pledgeamendment/{theirs.pk}/change/", theirs.pk) == _answer(
        bank, f"/admin/exchange/pledgeamendment/{MISSING}/change/", MISSING
    )
    assert desks["trader"].get("/admin/exchange/pledgeamendment/").status_code == 403

    # the list's actions call the services: the lender confirms its own pledge's top-up; another's is no row of
    # its list, so nothing happens to it; registering is the registry's, refused with the service's message
    bank.post("/admin/exchange/pledgeamendment/", {"action": "confirm", "_selected_action": [own.pk, theirs.pk]})
    refused = bank.post(
        "/admin/exchange/pledgeamendment/", {"action": "register", "_selected_action": [own.pk]}, follow=True
    )
    own.refresh_from_db()
    theirs.refresh_from_db()
    assert (own.status, theirs.status) == (AmendmentStatus.APPLIED, AmendmentStatus.REQUESTED)
    assert any("wrong_participant_kind" in str(m) for m in refused.context["messages"])
    assert balance(ps.account, ps.cea) == (1000, 100)  # the top-up freezes nothing until the registry registers it


def test_the_bank_rejects_an_amendment_of_its_own_pledge_only(ps, others, desks):
    own = _top_up_requested(ps)
    theirs = _top_up_requested(others)

    desks["bank"].post(
        "/admin/exchange/pledgeamendment/", {"action": "reject", "_selected_action": [own.pk, theirs.pk]}
    )

    own.refresh_from_db()
    theirs.refresh_from_db()
    assert (own.status, theirs.status) == (AmendmentStatus.REJECTED, AmendmentStatus.REQUESTED)


def test_the_traders_request_form_offers_its_own_accounts_and_the_banks_only(ps, others, desks):
    second = AccountFactory(participant=ps.borrower[0])

    form = desks["trader"].get("/admin/exchange/pledgeloan/add/")
    assert form.status_code == 200
    fields = form.context["adminform"].form.fields
    assert set(fields["account"].queryset) == {ps.account, second}
    assert set(fields["lender"].queryset) == {ps.bank[0], others.bank[0]}
    assert others.account.number.encode() not in form.content
    # no autocomplete, which would search every participant's accounts: the desk may not use it
    autocomplete = desks["trader"].get(
        "/admin/autocomplete/", {"app_label": "exchange", "model_name": "pledgeloan", "field_name": "account"}
    )
    assert autocomplete.status_code == 403


def test_the_trader_cannot_pledge_another_participants_account(ps, others, desks):
    response = desks["trader"].post(
        "/admin/exchange/pledgeloan/add/", admin_pledge_request_form(ps, others.account, ps.bank[0])
    )

    assert response.status_code == 200
    assert "account" in response.context["adminform"].form.errors
    assert not PledgeLoan.objects.exists()


def test_the_readme_flow_with_the_desks_trader_requests_bank_accepts_registry_registers(ps, desks):
    requested = desks["trader"].post(
        "/admin/exchange/pledgeloan/add/", admin_pledge_request_form(ps, ps.account, ps.bank[0])
    )
    assert requested.status_code == 302, requested.content[:2000]
    loan = PledgeLoan.objects.get()
    assert (loan.status, loan.borrower_id, loan.lender_id) == (PledgeStatus.REQUESTED, ps.borrower[0].pk, ps.bank[0].pk)

    desks["bank"].post("/admin/exchange/pledgeloan/", {"action": "accept", "_selected_action": [loan.pk]})
    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.APPLIED

    registry = desk_client(ps.ex.market.registry_actor, "registry")
    registry.post("/admin/exchange/pledgeloan/", {"action": "register", "_selected_action": [loan.pk]})
    assert PledgeLoan.objects.get(pk=loan.pk).status == PledgeStatus.REGISTERED
    assert balance(ps.account, ps.cea) == (1000, 100)
    # the parts of the loan show on its page for the bank (collateral, valuations), without their own pages
    page = desks["bank"].get(f"/admin/exchange/pledgeloan/{loan.pk}/change/")
    assert "collateral" in {formset.formset.prefix for formset in page.context["inline_admin_formsets"]}


@pytest.mark.parametrize("desk", ["registry", "auditor"])
def test_registry_staff_and_auditors_see_every_pledge(ps, others, desk):
    own = ps.registered(100)
    theirs = others.registered(100)
    if desk == "registry":
        actor = ps.ex.market.registry_actor
    else:
        actor = actor_for(ps.ex.market.holder("Audit office", kind=ParticipantKind.AUDITOR)[0], role="viewer")
    client = desk_client(actor, desk)

    listed = client.get("/admin/exchange/pledgeloan/")
    assert {loan.pk for loan in listed.context["cl"].result_list} == {own.pk, theirs.pk}
    assert client.get(f"/admin/exchange/pledgeloan/{theirs.pk}/change/").status_code == 200
    assert client.get("/admin/exchange/account/").status_code == 200
    assert b'id="gl-dashboard"' in client.get("/admin/").content


MISSING = 999_999


def _answer(client: Client, url: str, pk: int) -> tuple[list[tuple[str, int]], list[str]]:
    """Where the page leads and the messages shown there, with the id in them made the same."""
    response = client.get(url, follow=True)
    shown = [str(m).replace(str(pk), "ID") for m in response.context["messages"]]
    return response.redirect_chain, shown
