"""Judicial freezes and seizures (司法冻结 / 司法扣划) of units, on a court's order (registry staff act).

- ``judicial_freeze_create`` freezes exact serials (``serials``) or the lowest available ``quantity`` of an
  account's asset: a ``Hold`` of kind ``judicial_freeze`` whose blocks are ``frozen``. Frozen units are not
  available, so no trade, transfer, pledge, surrender or retirement can take them (each of those takes
  available blocks only, and the database ties frozen blocks to the freeze's hold).
- ``judicial_freeze_release`` unfreezes them on a later order: the blocks are available again.
- ``judicial_freeze_seize`` moves them, on a seizure order, to the account the order names, through the
  posting path (``ledger_post`` from the freeze's hold); the freeze ends as seized.

Each records the court, the order's document number and the document's SHA-256, and an audit event.
Source: the national registration rules (碳排放权登记管理规则 (试行), 2021) on judicial freezes and
transfers ordered by a court; Decree 775 (2024). See docs/registry.md.
"""

from __future__ import annotations

import re
from typing import cast

from django.db import IntegrityError
from django.utils.translation import gettext_lazy, gettext_noop

from accounts.actors import Actor
from accounts.models import ParticipantKind
from core import clock
from core.errors import InvalidInput, NotFound
from core.i18n import registry_text
from core.limits import check_quantity
from exchange.errors import DuplicateObject, InsufficientAvailable, InvalidDestination, InvalidState
from exchange.locks import lock_row
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    Balance,
    BlockState,
    FreezeStatus,
    Hold,
    HoldKind,
    HoldStatus,
    JudicialFreeze,
    SerialBlock,
    TransactionKind,
)
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import Leg, hold_place, hold_release, journal_open, ledger_post


def _(text: str) -> str:
    """``text`` marked for translation, translated when shown (a lazy string typed as the ``str`` it becomes)."""
    return cast(str, gettext_lazy(text))


SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FreezeNotFound(NotFound):
    code = "freeze_not_found"
    default_message = _("No such judicial freeze.")


class FreezeEnded(InvalidState):
    code = "freeze_ended"
    default_message = _("The freeze has been released or its units seized already.")


class FreezeUnitsEncumbered(InsufficientAvailable):
    """The order names units that are pledged or held (an open order, a pending or non-trade transfer, another
    freeze). China's courts may freeze them in waiting (轮候冻结, effective when the earlier measure ends:
    Supreme People's Court provisions on seizure, attachment and freezing in civil enforcement, art. 26); the
    registry records no waiting freeze, so the order is refused until those units are released."""

    code = "freeze_units_encumbered"
    default_message = _(
        "The units are pledged or otherwise held; the registry records no waiting freeze. "
        "Freeze available units, or enter the order again once the units are released."
    )
    remedy = (
        "Read the account's holdings and pledges: freeze available units only, or enter the court's order again "
        "when the pledge or other hold on the named units has ended (docs/registry.md, Judicial freezes)."
    )


class ValueRuleBroken(InvalidInput):
    """Values each valid by the schema that together break a rule of the registry (a range that does not match
    its quantity, a period that ends before it starts...): 400, and not a shape error."""

    code = "value_rule_broken"
    default_message = _("The values break a rule the registry states.")


class InvalidDocumentHash(InvalidInput):
    code = "invalid_document_hash"
    default_message = _("A document's hash is its SHA-256 as 64 lower-case hexadecimal characters.")


def check_sha256(value: str, field: str = "document_sha256") -> str:
    value = (value or "").strip().lower()
    if not SHA256.match(value):
        raise InvalidDocumentHash(details={field: value[:80]})
    return value


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)


def _order(court: str, document_number: str, document_sha256: str) -> tuple[str, str, str]:
    court, document_number = (court or "").strip(), (document_number or "").strip()
    if not court or not document_number:
        raise ValueRuleBroken(_("An order names its court and its document number."))
    return court[:200], document_number[:100], check_sha256(document_sha256)


@service
@idempotent_service("judicial_freeze_create")
def judicial_freeze_create(
    *,
    actor: Actor,
    account: Account,
    asset: Asset,
    court: str,
    document_number: str,
    document_sha256: str,
    quantity: int | None = None,
    serials: tuple[int, int] | None = None,
    idempotency_key: str | None = None,
) -> JudicialFreeze:
    """Freeze exact ``serials`` (inclusive) or the lowest available ``quantity`` of ``asset`` in ``account``."""
    _require_registry(actor)
    court, document_number, document_sha256 = _order(court, document_number, document_sha256)
    if account.kind != AccountKind.HOLDING:
        raise InvalidDestination(
            _("Only a participant's holding account is frozen."), details={"account": account.number}
        )
    if not asset.serialised:
        raise ValueRuleBroken(_("Only allowances and CCER are frozen here."), details={"asset": asset.code})
    if serials is not None:
        first, last = serials
        if first < 1 or last < first:
            raise ValueRuleBroken(_("The serial range is not a range."), details={"serials": [first, last]})
        if quantity is not None and quantity != last - first + 1:
            raise ValueRuleBroken(
                _("The serial range does not match the quantity."), details={"serials": [first, last]}
            )
        quantity = last - first + 1
    if quantity is None:
        raise ValueRuleBroken(_("A freeze names serials or a quantity."))
    check_quantity(quantity)
    if JudicialFreeze.objects.filter(
        court=court, document_number=document_number, account=account, asset=asset
    ).exists():
        raise DuplicateObject(
            _("This order has frozen units of this holding already."),
            details={"document_number": document_number, "account": account.number, "asset": asset.code},
        )
    now = clock.now()
    try:
        hold = hold_place(
            account=account,
            asset=asset,
            quantity=quantity,
            kind=HoldKind.JUDICIAL_FREEZE,
            reference=f"freeze:{document_number}"[:100],
            serials=serials,
        )
    except InsufficientAvailable as short:
        _refuse_encumbered(account, asset, quantity, serials)
        raise short
    try:
        freeze = JudicialFreeze.objects.create(
            account=account,
            asset=asset,
            quantity=quantity,
            first_serial=serials[0] if serials else None,
            last_serial=serials[1] if serials else None,
            court=court,
            document_number=document_number,
            document_sha256=document_sha256,
            hold=hold,
            created_by_id=actor.user_id,
            created_at=now,
        )
    except IntegrityError:  # a twin of the same order committed first
        raise DuplicateObject(details={"document_number": document_number, "account": account.number}) from None
    ranges = list(hold.blocks.order_by("first").values_list("first", "last"))
    audit_record(
        actor=actor,
        action="freeze.create",
        obj=freeze,
        payload={
            "account": account.number,
            "asset": asset.code,
            "quantity": quantity,
            "serials": list(serials) if serials else None,
            "ranges": [list(r) for r in ranges],
            "court": court,
            "document_number": document_number,
            "document_sha256": document_sha256,
            "hold": hold.pk,
        },
        at=now,
    )
    return freeze


def _refuse_encumbered(account: Account, asset: Asset, quantity: int, serials: tuple[int, int] | None) -> None:
    """The units a refused freeze named are the holder's but held (pledged, on order...): say so, with the holds.

    Called after ``hold_place`` refused, in its transaction (which holds the balance lock); a freeze of more
    than the holder has stays ``insufficient_available``."""
    if serials is not None:
        held = SerialBlock.objects.filter(
            account=account, asset=asset, first__lte=serials[1], last__gte=serials[0]
        ).exclude(state=BlockState.AVAILABLE)
        if not held.exists():
            return
        holds = Hold.objects.filter(pk__in=held.exclude(hold=None).values("hold_id"))
    else:
        row = Balance.objects.filter(account=account, asset=asset).values_list("total", "held").first()
        if row is None or quantity > row[0] or row[1] == 0:
            return
        holds = Hold.objects.filter(account=account, asset=asset, status=HoldStatus.ACTIVE)
    # The kinds only, in one query: not every hold's (or fragment's) id brought back to Python.
    kinds = list(holds.order_by("kind").values_list("kind", flat=True).distinct())
    raise FreezeUnitsEncumbered(
        details={"account": account.number, "asset": asset.code, "quantity": quantity, "holds": kinds}
    )


def _active(freeze: JudicialFreeze) -> JudicialFreeze:
    locked = lock_row(JudicialFreeze.objects.select_related("account", "asset", "hold").filter(pk=freeze.pk))
    if locked is None:
        raise FreezeNotFound(details={"freeze": freeze.pk})
    return locked


@service
def judicial_freeze_release(
    *, actor: Actor, freeze: JudicialFreeze, document_number: str, document_sha256: str
) -> JudicialFreeze:
    """Unfreeze on the court's release order: the units are available again. Again with the same order: unchanged."""
    _require_registry(actor)
    document_number = (document_number or "").strip()[:100]
    if not document_number:
        raise ValueRuleBroken(_("A release names the order's document number."))
    document_sha256 = check_sha256(document_sha256)
    locked = _active(freeze)
    if locked.status == FreezeStatus.RELEASED and locked.end_document_number == document_number:
        mark_unchanged()
        return locked
    if locked.status != FreezeStatus.ACTIVE:
        raise FreezeEnded(details={"freeze": locked.pk, "status": locked.status})
    released = hold_release(locked.hold)
    locked.status, locked.ended_at, locked.ended_by_id = FreezeStatus.RELEASED, clock.now(), actor.user_id
    locked.end_document_number, locked.end_document_sha256 = document_number, document_sha256
    locked.save(update_fields=["status", "ended_at", "ended_by", "end_document_number", "end_document_sha256"])
    audit_record(
        actor=actor,
        action="freeze.release",
        obj=locked,
        payload={
            "account": locked.account.number,
            "asset": locked.asset.code,
            "quantity": released,
            "document_number": document_number,
            "document_sha256": document_sha256,
        },
    )
    return locked


@service
def judicial_freeze_seize(
    *,
    actor: Actor,
    freeze: JudicialFreeze,
    destination: Account,
    document_number: str,
    document_sha256: str,
) -> JudicialFreeze:
    """Move the frozen units to ``destination`` on the court's seizure order (扣划), through the posting path."""
    _require_registry(actor)
    document_number = (document_number or "").strip()[:100]
    if not document_number:
        raise ValueRuleBroken(_("A seizure names the order's document number."))
    document_sha256 = check_sha256(document_sha256)
    locked = _active(freeze)
    if locked.status == FreezeStatus.SEIZED and locked.end_document_number == document_number:
        mark_unchanged()
        return locked
    if locked.status != FreezeStatus.ACTIVE:
        raise FreezeEnded(details={"freeze": locked.pk, "status": locked.status})
    if destination.kind != AccountKind.HOLDING or destination.pk == locked.account_id:
        raise InvalidDestination(
            _("A seizure moves the units to another participant's holding account."),
            details={"account": destination.number},
        )
    hold = locked.hold
    if hold.status != HoldStatus.ACTIVE:
        raise FreezeEnded(details={"freeze": locked.pk, "hold": hold.status})
    request = {
        "freeze": locked.pk,
        "destination": destination.number,
        "document_number": document_number,
        "document_sha256": document_sha256,
    }
    txn, _replayed = journal_open(
        kind=TransactionKind.TRANSFER,
        actor=actor,
        idempotency_key=f"seizure:{locked.pk}",
        request=request,
        memo=registry_text(gettext_noop("Judicial seizure %(document)s"), {"document": document_number})[:500],
        metadata={"judicial_freeze": locked.pk, "court": locked.court},
    )
    moved = hold.remaining
    posted = ledger_post(txn, [Leg(locked.asset, locked.account, destination, moved, hold=hold)])
    locked.status, locked.ended_at, locked.ended_by_id = FreezeStatus.SEIZED, clock.now(), actor.user_id
    locked.end_document_number, locked.end_document_sha256 = document_number, document_sha256
    locked.seized_to, locked.transaction = destination, txn
    locked.save(
        update_fields=[
            "status",
            "ended_at",
            "ended_by",
            "end_document_number",
            "end_document_sha256",
            "seized_to",
            "transaction",
        ]
    )
    audit_record(
        actor=actor,
        action="freeze.seize",
        obj=txn,
        payload={
            **request,
            "source": locked.account.number,
            "asset": locked.asset.code,
            "quantity": moved,
            "ranges": [list(r) for r in posted.ranges[0]],
            "transaction": txn.pk,
            "entry_digest": posted.digest,
        },
    )
    return locked


__all__ = [
    "FreezeEnded",
    "FreezeNotFound",
    "FreezeUnitsEncumbered",
    "InvalidDocumentHash",
    "check_sha256",
    "judicial_freeze_create",
    "judicial_freeze_release",
    "judicial_freeze_seize",
]
