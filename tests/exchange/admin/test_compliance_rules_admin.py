"""The compliance rules in the admin: versions entered through the services, deductions decided by an action,
the obligations' carryover column."""

from __future__ import annotations

from datetime import date

import pytest

from exchange.models import AllocationDeduction, AllocationRule, AuditEvent, CarryoverRule, OfficialPrice
from exchange.services.compliance import compliance_deadlines_run
from exchange.services.compliance_rules import carryover_rule_set
from tests.helpers.api import admin_client_for
from tests.helpers.compliance import make_cycle

pytestmark = pytest.mark.django_db


def test_rules_are_entered_as_versions_and_never_edited():
    cycle = make_cycle(2024)
    staff = admin_client_for(cycle.registry)
    body = {
        "year": 2024,
        "sector": "power",
        "stage": "final",
        "method": "benchmark",
        "share_bp": "100.00",  # the admin takes rates as percentages and keeps basis points
        "benchmark_ppm": 821800,
        "heat_benchmark_ppm": 110500,
        "output_unit": "MWh",
        "factors": '["cooling", "load"]',
        "effective_from": "2025-01-01",
        "source": "2023-2024 power allocation plan (demo figures)",
    }
    assert staff.post("/admin/exchange/allocationrule/add/", body).status_code == 302
    assert staff.post("/admin/exchange/allocationrule/add/", body | {"benchmark_ppm": 800000}).status_code == 302
    assert list(AllocationRule.objects.order_by("version").values_list("version", "benchmark_ppm")) == [
        (1, 821800),
        (2, 800000),
    ]
    assert set(AllocationRule.objects.values_list("share_bp", flat=True)) == {10000}
    rule = AllocationRule.objects.get(version=1)
    assert (
        staff.post(f"/admin/exchange/allocationrule/{rule.pk}/change/", body | {"benchmark_ppm": 1}).status_code == 403
    )
    assert AuditEvent.objects.filter(action="compliance.allocation_rule_set").count() == 2

    price = {"market": "CN-ETS", "month": "2025-12-01", "price_fen": "98.12", "source": "MEE notice"}
    assert staff.post("/admin/exchange/officialprice/add/", price).status_code == 302
    assert OfficialPrice.objects.get().price_fen == 9812
    assert "98.12" in staff.get("/admin/exchange/officialprice/").content.decode()

    carry = {
        "year": 2024,
        "first_vintage": 2019,
        "base_tonnes": 10000,
        "net_sales_multiple_bp": "150.00",
        "sales_from": "2024-01-01",
        "sales_to": "2025-12-31",
        "enforced": "on",
        "timely_compliance_required": "on",
        "effective_from": "2024-10-01",
        "source": "2023-2024 plan",
    }
    assert staff.post("/admin/exchange/carryoverrule/add/", carry).status_code == 302
    assert CarryoverRule.objects.get().enforced is True
    assert CarryoverRule.objects.get().net_sales_multiple_bp == 15000


def test_the_registry_decides_a_deduction_in_the_admin_and_sees_carryover():
    cycle = make_cycle(2023)
    short = cycle.entity("Short Co.", emissions=40)
    compliance_deadlines_run(today=date(2025, 1, 1))
    carryover_rule_set(
        actor=cycle.registry,
        year=2022,
        base_tonnes=10_000,
        net_sales_multiple_bp=15_000,
        sales_from=date(2022, 1, 1),
        sales_to=date(2023, 12, 31),
        first_vintage=2019,
        effective_from=date(2023, 1, 1),
        source="demo",
        timely_compliance_required=False,
    )
    staff = admin_client_for(cycle.registry)

    response = staff.post(
        "/admin/exchange/obligation/", {"action": "decide_deduction", "_selected_action": [short.obligation.pk]}
    )

    assert response.status_code == 302
    assert AllocationDeduction.objects.get().quantity == 40
    listing = staff.get("/admin/exchange/obligation/").content.decode()
    assert "2019-2022: 0 / 10000 t" in listing
    assert 'field-deducted_next_year">40<' in listing
