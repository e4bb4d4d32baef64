"""The demo market loads, twice without change, and ends with a CEA pledge registered with a demo bank."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import F, Sum

from exchange.models import AuditEvent, HoldStatus, PledgeLoan, PledgeStatus, SerialBlock
from exchange.services.pledges import ltv_bp_of
from tests.ledger import assert_reconciled

pytestmark = pytest.mark.django_db


def test_seed_demo_registers_one_demo_pledge_idempotently():
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    events = AuditEvent.objects.count()

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())

    assert AuditEvent.objects.count() == events
    loan = PledgeLoan.objects.select_related("borrower", "lender", "asset", "account").get()
    assert (loan.status, loan.asset.code, loan.quantity, loan.principal_fen) == (
        PledgeStatus.REGISTERED,
        "CEA-2024",
        50_000,
        240_000_000,
    )
    assert (loan.borrower.name, loan.lender.name) == ("Jingneng Thermal Power Co.", "Bank of Beijing Tongzhou Branch")
    assert loan.ltv_bp == ltv_bp_of(loan.principal_fen, 50_000 * loan.price_fen) <= loan.ltv_limit_bp
    (collateral,) = loan.collateral.select_related("hold")
    assert (collateral.hold.status, sum(last - first + 1 for first, last in collateral.serial_ranges)) == (
        HoldStatus.ACTIVE,
        50_000,
    )
    assert SerialBlock.objects.filter(hold=collateral.hold).aggregate(n=Sum(F("last") - F("first") + 1))["n"] == 50_000
    assert_reconciled()
