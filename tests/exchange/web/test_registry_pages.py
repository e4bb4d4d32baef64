"""The public registry pages: a retirement certificate with its checked audit proof, and serial lookup."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings

from exchange.models import AuditEvent
from exchange.services.retirement import retirement_create
from exchange.services.sealing import audit_seal
from exchange.services.transfers import transfer_create
from tests.helpers.api import client_for
from tests.helpers.ledger import make_market

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cleared_cache")]


@pytest.fixture
def retired():
    market = make_market()
    _, account, actor = market.holder("Jingneng Thermal Power Co.")
    market.give(account, 1_000)
    _, other, _ = market.holder("Yanshan Petrochemical Co.")
    market.give(other, 77)
    retirement = retirement_create(
        actor=actor,
        account=account,
        asset=market.cea,
        quantity=120,
        beneficiary="Beijing Marathon 2026",
        reason="Offsetting the race's emissions",
        serials=(101, 220),
    )
    return market, account, actor, retirement


def test_certificate_before_sealing_says_pending(retired):
    _, account, _, retirement = retired

    page = Client().get(f"/registry/retirements/{retirement.pk}")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Beijing Marathon 2026" in html
    assert "Offsetting the race&#x27;s emissions" in html
    assert "Sealing pending" in html
    assert ">101</td>" in html
    assert ">220</td>" in html
    assert account.number in html
    assert "Jingneng Thermal Power Co." in html


def test_certificate_after_sealing_shows_the_verified_proof(retired):
    *_, retirement = retired
    audit_seal()
    seq = AuditEvent.objects.get(action="retirement.create").seq

    html = Client().get(f"/registry/retirements/{retirement.pk}").content.decode()

    assert 'class="badge verified"' in html
    assert f"Audit event {seq} is included in checkpoint 1" in html


def test_certificate_shows_no_balances_or_other_participants(retired):
    *_, retirement = retired

    html = Client().get(f"/registry/retirements/{retirement.pk}").content.decode()

    assert "Yanshan" not in html
    assert ">880<" not in html  # the retiring account's remaining balance (1,000 - 120)
    assert "880 t" not in html
    assert "balance" not in html.lower()


def test_an_unknown_retirement_is_a_404_page():
    page = Client().get("/registry/retirements/999999")

    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    assert "There is no retirement number 999999." in page.content.decode()


def test_the_api_links_the_certificate(retired):
    _, _, actor, retirement = retired

    body = client_for(actor).get(f"/api/v1/retirements/{retirement.pk}").json()

    assert body["certificate_url"] == f"http://testserver/registry/retirements/{retirement.pk}"


def test_serial_lookup_shows_block_state_holder_and_history(retired):
    market, account, actor, _ = retired
    _, buyer, _ = market.holder("Capital Airport Energy Co.")
    transfer_create(actor=actor, source=account, destination=buyer, asset=market.cea, quantity=10, serials=(1, 10))

    page = Client().get("/registry/serials", {"asset": "CEA-2024", "serial": "5"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "<strong>available</strong>" in html
    assert buyer.number in html
    assert "Capital Airport Energy Co." in html
    assert html.count('<tr><td class="num">') == 2  # allocated, then transferred
    assert "Transfer" in html


def test_serial_lookup_of_a_retired_serial(retired):
    page = Client().get("/registry/serials", {"asset": "CEA-2024", "serial": "150"})

    assert "<strong>retired</strong>" in page.content.decode()


def test_serial_lookup_of_an_unissued_serial_is_404(retired):
    page = Client().get("/registry/serials", {"asset": "CEA-2024", "serial": "5000"})

    assert page.status_code == 404
    assert "Not issued" in page.content.decode()


def test_serial_lookup_refuses_bad_input_with_400(retired):
    assert Client().get("/registry/serials", {"asset": "NOPE", "serial": "1"}).status_code == 400
    assert Client().get("/registry/serials", {"asset": "CEA-2024", "serial": "x"}).status_code == 400
    assert Client().get("/registry/serials").status_code == 200


def test_registry_pages_are_throttled_per_address(retired):
    *_, retirement = retired
    client = Client()
    with override_settings(GREENLEDGER={**settings.GREENLEDGER, "THROTTLE_ANON_PER_MINUTE": 2}):
        codes = [client.get(f"/registry/retirements/{retirement.pk}").status_code for _ in range(3)]
        other = Client(REMOTE_ADDR="10.0.0.9").get("/registry/serials")

    assert codes == [200, 200, 429]
    assert other.status_code == 200


def test_registry_pages_keep_the_security_headers(retired):
    *_, retirement = retired

    page = Client().get(f"/registry/retirements/{retirement.pk}")

    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"


def test_an_unmatched_registry_address_is_a_404_page():
    page = Client().get("/registry/retirements/not-a-number")

    assert page.status_code == 404
    assert "There is no page at this address." in page.content.decode()
    assert Client().head("/registry/serials").status_code == 200


def test_certificate_says_the_proof_in_the_reader_language(retired):
    *_, retirement = retired
    pending = Client().get(f"/registry/retirements/{retirement.pk}", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    audit_seal()
    seq = AuditEvent.objects.get(action="retirement.create").seq

    chinese = Client().get(f"/registry/retirements/{retirement.pk}", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    english = Client().get(f"/registry/retirements/{retirement.pk}", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "等待封存：审计链每分钟封存一次新事件。" in pending
    assert f"审计事件 {seq} 已包含在检查点 1 中，且检查点链直至检查点 1 均完好。" in chinese
    assert f"Audit event {seq} is included in checkpoint 1, and the checkpoint chain holds up to checkpoint" in english


def test_a_proof_that_does_not_hold_is_named_on_the_certificate_in_chinese(retired, monkeypatch):
    from exchange.selectors import registry

    *_, retirement = retired
    audit_seal()
    real = registry.audit_proof

    def tampered(seq, *args):
        proof = real(seq, *args)
        proof["checkpoint"]["sealed_at"] = "2026-01-01T00:00:00.000000Z"
        return proof

    monkeypatch.setattr(registry, "audit_proof", tampered)

    html = Client().get(f"/registry/retirements/{retirement.pk}", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()

    assert 'class="badge failed"' in html
    assert "证明不成立：检查点 1：哈希与其字段不符" in html


@pytest.mark.parametrize(
    "damage",
    [
        lambda proof: proof["checkpoint"].pop("root"),  # the checker meets a missing key (KeyError)
        lambda proof: proof.update(leaf_index="third"),  # or a figure that is no number (ValueError)
    ],
)
def test_an_unreadable_proof_says_what_to_do_not_the_checker_internals(retired, monkeypatch, damage):
    from exchange.selectors import registry

    *_, retirement = retired
    audit_seal()
    real = registry.audit_proof

    def damaged(seq, *args):
        proof = real(seq, *args)
        damage(proof)
        return proof

    monkeypatch.setattr(registry, "audit_proof", damaged)

    chinese = Client().get(f"/registry/retirements/{retirement.pk}", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    english = Client().get(f"/registry/retirements/{retirement.pk}", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'class="badge failed"' in chinese
    assert "无法读取该证明：证明不完整或已损坏。" in chinese
    assert "The proof could not be read: it is incomplete or damaged." in english
    for html in (chinese, english):
        assert "&#x27;root&#x27;" not in html
        assert "invalid literal" not in html
