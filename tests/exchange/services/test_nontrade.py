"""Transfers as China's markets have them: own accounts at once; another participant only by a non-trade
transfer that two different registry officers decide."""

from __future__ import annotations

from datetime import date

import pytest

from core import clock
from core.errors import DomainError
from exchange.models import (
    ApprovalStatus,
    AuditEvent,
    HoldKind,
    HoldStatus,
    Market,
    NonTradeStatus,
    Notice,
    NoticeKind,
)
from exchange.services.approvals import approval_approve, approval_reject
from exchange.services.markets import rulebook_publish
from exchange.services.nontrade import (
    non_trade_transfer_apply,
    non_trade_transfer_reject,
    non_trade_transfer_review,
)
from exchange.services.transfers import TransferOrder, transfer_create, transfers_batch_create
from tests.factories import AccountFactory
from tests.helpers.ledger import actor_for, assert_reconciled, balance, blocks, make_market, snapshot

pytestmark = pytest.mark.django_db

DOC = "f" * 64


@pytest.fixture
def china():
    market = make_market(china_transfer_rules=True)
    seller, seller_account, seller_actor = market.holder("Huaneng")
    _buyer, buyer_account, _ = market.holder("Datang")
    market.give(seller_account, 1_000)
    officer_a = market.registry_actor
    officer_b = actor_for(market.registry)
    return market, seller, seller_account, seller_actor, buyer_account, officer_a, officer_b


def _refused(call) -> str:
    with pytest.raises(DomainError) as refused:
        call()
    return refused.value.code


def test_a_transfer_to_another_participant_is_refused_unless_non_trade(china):
    market, _, source, actor, destination, _, _ = china
    before = snapshot()
    code = _refused(
        lambda: transfer_create(actor=actor, source=source, destination=destination, asset=market.cea, quantity=10)
    )
    assert code == "non_trade_transfer_required"
    code = _refused(
        lambda: transfers_batch_create(actor=actor, transfers=[TransferOrder(source, destination, market.cea, 10)])
    )
    assert code == "non_trade_transfer_required"
    assert snapshot() == before


def test_own_accounts_transfer_at_once(china):
    market, seller, source, actor, _, _, _ = china
    second = AccountFactory(participant=seller)
    transfer_create(actor=actor, source=source, destination=second, asset=market.cea, quantity=10)
    assert balance(second, market.cea) == (10, 0)
    assert balance(source, market.cea) == (990, 0)


def test_the_rule_is_data_a_later_rulebook_version_frees_transfers(china):
    market, _, source, actor, destination, _, _ = china
    exchange = actor_for(market.holder("Exchange", kind="exchange")[0])
    with clock.pinned(clock.market_now().replace(year=2026, month=11, day=25)):
        rulebook_publish(
            actor=exchange,
            market=Market.objects.get(code="CN-CEA"),
            effective_from=date(2026, 12, 1),
            changes={"participant_transfers": "free"},
        )
        assert (
            _refused(
                lambda: transfer_create(
                    actor=actor, source=source, destination=destination, asset=market.cea, quantity=1
                )
            )
            == "non_trade_transfer_required"
        )
    with clock.pinned(clock.market_now().replace(year=2026, month=12, day=1)):
        transfer_create(actor=actor, source=source, destination=destination, asset=market.cea, quantity=1)
    assert balance(destination, market.cea) == (1, 0)


def test_a_non_trade_transfer_holds_the_units_and_needs_two_different_officers(china):
    market, _, source, actor, destination, officer_a, officer_b = china
    applied = non_trade_transfer_apply(
        actor=actor,
        source=source,
        destination=destination,
        asset=market.cea,
        quantity=100,
        serials=(101, 200),
        legal_basis="merger_split",
        document_sha256=DOC,
    )
    assert applied.status == NonTradeStatus.APPLIED
    assert applied.hold.kind == HoldKind.NON_TRADE_TRANSFER
    assert balance(source, market.cea) == (1_000, 100)
    assert (101, 200, source.number, "held") in blocks(market.cea, source)

    reviewed = non_trade_transfer_review(actor=officer_a, transfer=applied)
    assert reviewed.status == NonTradeStatus.REVIEWED
    # Filed as every request is: audited (the requester's approval.waiting event) and the requester told.
    assert AuditEvent.objects.filter(action="approval.request", object_id=str(reviewed.approval_id)).count() == 1
    assert Notice.objects.filter(kind=NoticeKind.APPROVAL_WAITING, object_id=str(reviewed.approval_id)).count() == 1
    before = snapshot()
    assert _refused(lambda: approval_approve(actor=officer_a, approval=reviewed.approval)) == "four_eyes_same_user"
    assert snapshot() == before

    approved = approval_approve(actor=officer_b, approval=reviewed.approval)
    assert approved.status == ApprovalStatus.APPROVED
    applied.refresh_from_db()
    assert applied.status == NonTradeStatus.APPROVED
    assert (applied.reviewed_by_id, applied.decided_by_id) == (officer_a.user_id, officer_b.user_id)
    assert balance(source, market.cea) == (900, 0)
    assert balance(destination, market.cea) == (100, 0)
    assert blocks(market.cea, destination) == [(101, 200, destination.number, "available")]
    assert approved.result == f"transaction:{applied.transaction_id}"
    assert_reconciled()


def test_rejection_by_the_second_officer_releases_the_hold(china):
    market, _, source, actor, destination, officer_a, officer_b = china
    applied = non_trade_transfer_apply(
        actor=actor,
        source=source,
        destination=destination,
        asset=market.cea,
        quantity=50,
        legal_basis="other",
        legal_basis_text="Transfer ordered by arbitral award",
        document_sha256=DOC,
    )
    reviewed = non_trade_transfer_review(actor=officer_a, transfer=applied)
    approval_reject(actor=officer_b, approval=reviewed.approval, reason="The award is not enforceable yet.")
    applied.refresh_from_db()
    assert applied.status == NonTradeStatus.REJECTED
    assert applied.hold.status == HoldStatus.RELEASED
    assert balance(source, market.cea) == (1_000, 0)
    assert balance(destination, market.cea) == (0, 0)
    assert_reconciled()


def test_rejection_before_review_releases_the_hold(china):
    market, _, source, actor, destination, officer_a, _ = china
    applied = non_trade_transfer_apply(
        actor=actor,
        source=source,
        destination=destination,
        asset=market.cea,
        quantity=50,
        legal_basis="inheritance",
        document_sha256=DOC,
    )
    assert (
        _refused(lambda: non_trade_transfer_reject(actor=officer_a, transfer=applied, reason=" "))
        == "value_rule_broken"
    )
    rejected = non_trade_transfer_reject(actor=officer_a, transfer=applied, reason="No succession certificate.")
    assert rejected.status == NonTradeStatus.REJECTED
    assert balance(source, market.cea) == (1_000, 0)
    assert _refused(lambda: non_trade_transfer_review(actor=officer_a, transfer=applied)) == "non_trade_step_refused"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"legal_basis": "gift"}, "value_rule_broken"),
        ({"legal_basis": "other"}, "value_rule_broken"),  # "other" is stated in words
        ({"document_sha256": "abc"}, "invalid_document_hash"),
        ({"quantity": 1_001}, "insufficient_available"),
    ],
)
def test_a_bad_application_is_refused_and_changes_nothing(china, changes, code):
    market, _, source, actor, destination, _, _ = china
    fields = {"quantity": 10, "legal_basis": "judicial_ruling", "document_sha256": DOC} | changes
    before = snapshot()
    assert (
        _refused(
            lambda: non_trade_transfer_apply(
                actor=actor, source=source, destination=destination, asset=market.cea, **fields
            )
        )
        == code
    )
    assert snapshot() == before


def test_another_participant_cannot_apply_for_the_holder(china):
    market, _, source, _, destination, _, _ = china
    stranger = market.holder("Stranger")[2]
    assert (
        _refused(
            lambda: non_trade_transfer_apply(
                actor=stranger,
                source=source,
                destination=destination,
                asset=market.cea,
                quantity=1,
                legal_basis="judicial_ruling",
                document_sha256=DOC,
            )
        )
        == "non_trade_transfer_not_found"
    )


def test_the_registry_applies_for_a_court_and_the_trusted_list_is_off_in_china(china, settings):
    settings.GREENLEDGER = {**settings.GREENLEDGER, "TRUSTED_ACCOUNTS": True}
    market, seller, source, actor, destination, officer_a, officer_b = china
    applied = non_trade_transfer_apply(
        actor=officer_a,
        source=source,
        destination=destination,
        asset=market.cea,
        quantity=5,
        legal_basis="judicial_ruling",
        document_sha256=DOC,
    )
    reviewed = non_trade_transfer_review(actor=officer_b, transfer=applied)
    approval_approve(actor=officer_a, approval=reviewed.approval)
    assert balance(destination, market.cea) == (5, 0)
    # Own accounts stay immediate with the trusted list on: China's rulebook does not use it.
    second = AccountFactory(participant=seller)
    assert transfer_create(actor=actor, source=source, destination=second, asset=market.cea, quantity=1).pk
