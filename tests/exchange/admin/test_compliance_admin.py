"""The compliance admin: the year at a glance, covering entities and opening a year through the services."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from exchange.models import AuditEvent, ComplianceYear, Obligation
from tests.helpers.api import admin_client_for
from tests.helpers.compliance import Cycle, make_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle() -> Cycle:
    return make_cycle(2024)


@pytest.fixture
def staff(cycle) -> Client:
    return admin_client_for(cycle.registry)


def test_the_year_at_a_glance(cycle, staff):
    short = cycle.entity("Shougang Steel", emissions=500)
    done = cycle.entity("Jingneng Power", emissions=100)
    cycle.entity("Jinyu Cement")
    cycle.market.give(short.account, 450)
    cycle.market.give(done.account, 100)
    cycle.surrender(short, (cycle.market.cea, 450))
    cycle.surrender(done, (cycle.market.cea, 100))

    listing = staff.get("/admin/exchange/complianceyear/").content.decode()
    glance = staff.get("/admin/exchange/complianceyear/2024/glance/").content.decode()

    # entities 3; verified 600 t (2 of 3); surrendered 550 t; 1 entity short by 50 t
    for cell in (
        '<td class="field-entities">3</td>',
        "600 (2 of 3)",
        'field-surrendered">550<',
        'field-shortfall">50<',
    ):
        assert cell in listing, cell
    assert "<td>3</td><td>2</td><td>600</td>" in glance
    assert "<td>1</td><td>50</td>" in glance
    assert glance.index("Jingneng Power") < glance.index("Jinyu Cement") < glance.index("Shougang Steel")
    assert staff.get("/admin/exchange/obligation/?status__exact=open").status_code == 200


def test_admin_opens_a_year_and_covers_entities_through_the_services(cycle, staff):
    _, _, _ = cycle.market.holder("Yanshan Petrochemical")
    entity = cycle.market.holders["Yanshan Petrochemical"][0]

    added = staff.post(
        "/admin/exchange/complianceyear/add/",
        {"year": 2025, "deadline": "2026-12-31", "preallocation_bp": "70", "ccer_limit_bp": "5"},  # percent
    )
    covered = staff.post("/admin/exchange/complianceyear/2025/cover/", {"entities": [entity.pk]})

    assert added.status_code == 302
    assert ComplianceYear.objects.get(pk=2025).deadline == date(2026, 12, 31)
    assert (
        ComplianceYear.objects.get(pk=2025).preallocation_bp,
        ComplianceYear.objects.get(pk=2025).ccer_limit_bp,
    ) == (
        7000,
        500,
    )
    assert covered.status_code == 302
    assert Obligation.objects.filter(year_id=2025, entity=entity).count() == 1
    assert set(AuditEvent.objects.filter(actor_user_id=cycle.registry.user_id).values_list("action", flat=True)) >= {
        "compliance.year_create",
        "compliance.cover",
    }


def test_the_cover_form_renders(cycle, staff):
    response = staff.get("/admin/exchange/complianceyear/2024/cover/")

    assert response.status_code == 200
    assert "Cover entities for 2024" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_and_the_glance_agree_with_each_other_and_with_the_ledger(client):
    import io
    import re

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db.models import Sum

    from core import clock
    from exchange.models import Posting, TransactionKind
    from exchange.selectors.dashboard import current_compliance_year

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    client.force_login(get_user_model().objects.get(username="admin"))
    year = current_compliance_year(clock.trading_day())
    assert year is not None
    obligations = Obligation.objects.filter(year=year)
    accounts = list(obligations.values_list("account_id", flat=True))

    def ledger(kinds, sign):
        return sign * (
            Posting.objects.filter(
                account_id__in=accounts, transaction__kind__in=kinds, asset__kind__in=["allowance", "ccer"]
            )
            .filter(**({"asset__vintage": year.year} if sign > 0 else {}))
            .aggregate(total=Sum("quantity"))["total"]
            or 0
        )

    allocated = ledger([TransactionKind.ALLOCATION, TransactionKind.TAKEBACK], 1)
    surrendered = ledger([TransactionKind.SURRENDER], -1)

    def numbers(cells):
        return [int(re.sub(r"[^\d]", "", c) or 0) for c in cells]

    dashboard = client.get("/admin/").content.decode()
    section = dashboard[dashboard.index('id="gl-compliance"') :]
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td[^>]*>([^<]*)", section[: section.index("</table>")]))
    glance = client.get(f"/admin/exchange/complianceyear/{year.pk}/glance/").content.decode()
    summary = re.search(r"<tbody><tr>(.*?)</tr></tbody>", glance, re.S).group(1)
    (entities, verified_entities, verified, glance_allocated, glance_surrendered, ccer, remaining, short, short_t) = (
        numbers(re.findall(r"<td>([^<]*)</td>", summary))
    )

    # the glance and the ledger: what allocation moved in, what surrender took out
    assert allocated > 0
    assert glance_allocated == allocated
    assert glance_surrendered == surrendered
    assert entities == obligations.count()
    # the dashboard and the glance: the same entities, emissions, surrenders, still to surrender and short
    assert numbers([rows["Verified emissions (t)"]]) == [verified]
    assert numbers(rows["Surrendered (t)"].split("(")) == [surrendered, ccer]
    assert numbers([rows["Still to surrender (t)"]]) == [remaining]
    short_row = rows.get("Entities short") or rows["Entities still to surrender"]
    assert numbers(short_row.split("(")) == [short, short_t]
    assert rows["Covered entities"].startswith(f"{entities} ({verified_entities} ")
