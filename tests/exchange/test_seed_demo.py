"""The demo market loads, twice without change, and ends with a CEA pledge registered with a demo bank."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from exchange.models import AuditEvent, PledgeLoan, PledgeStatus
from tests.ledger import assert_reconciled, balance

pytestmark = pytest.mark.django_db


def test_seed_demo_registers_one_demo_pledge_idempotently():
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    events = AuditEvent.objects.count()

    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())

    assert AuditEvent.objects.count() == events
    loan = PledgeLoan.objects.select_related("borrower", "lender", "asset", "account").get()
    assert (loan.status, loan.asset.code, loan.quantity, loan.ltv_bp) == (PledgeStatus.REGISTERED, "CEA-2024", 50_000, 6000)
    assert (loan.borrower.name, loan.lender.name) == ("Jingneng Thermal Power Co.", "Bank of Beijing Tongzhou Branch")
    assert loan.collateral.get().serial_ranges == [[1, 50_000]]
    assert balance(loan.account, loan.asset) == (1_200_000, 50_000)
    assert_reconciled()
