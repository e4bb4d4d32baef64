"""The public pledge registration certificate: found by its registration number, no login, showing the
parties by name, the asset and serial ranges, the secured amount and dates, and the registration's audit
inclusion proof checked on the server (as the retirement certificate does)."""

from __future__ import annotations

import pytest
from django.test import Client

from exchange.audit_proof import verify_proof
from exchange.models import AuditEvent
from exchange.selectors.registry import pledge_certificate
from exchange.services.pledges import pledge_external_reference_record
from exchange.services.sealing import audit_seal
from tests.helpers.pledges import make_pledges

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_session", "cleared_cache")]


@pytest.fixture
def registered():
    ps = make_pledges()
    loan = ps.registered(300, serials=(101, 400))
    pledge_external_reference_record(actor=ps.bank[2], loan=loan, reference="04567890001234567890")
    return ps, loan


def test_the_certificate_before_sealing_shows_the_registration_and_says_pending(registered):
    _, loan = registered

    page = Client().get(f"/registry/pledges/{loan.registration_reference}")

    assert page.status_code == 200
    html = page.content.decode()
    assert f"Pledge registration certificate No. {loan.registration_reference}" in html
    assert "Jingneng" in html
    assert "Bank of Beijing" in html
    assert ">101</td>" in html
    assert ">400</td>" in html
    assert "14,400.00" in html or "14400.00" in html  # 300 t x 48.00 yuan secured
    assert "04567890001234567890" in html
    assert "Sealing pending" in html


def test_the_certificate_after_sealing_verifies_the_registration_event(registered):
    _, loan = registered
    audit_seal()
    seq = AuditEvent.objects.get(action="pledge.register").seq

    html = Client().get(f"/registry/pledges/{loan.registration_reference}").content.decode()

    assert 'class="badge verified"' in html
    assert f"Audit event {seq} is included in checkpoint 1" in html
    certificate = pledge_certificate(loan.registration_reference)
    assert certificate.verification.state == "verified"
    assert verify_proof(certificate.verification.proof)["seq"] == seq
    assert certificate.ranges == [(101, 400, 300)]


def test_an_unknown_registration_number_is_a_404_page(registered):
    page = Client().get("/registry/pledges/CNPL-2026-999999")

    assert page.status_code == 404
    assert "There is no pledge registration number CNPL-2026-999999." in page.content.decode()


def test_an_unregistered_pledge_has_no_certificate(registered):
    ps, _ = registered
    applied = ps.applied(10)

    assert applied.registration_reference is None
    assert pledge_certificate("") is None
