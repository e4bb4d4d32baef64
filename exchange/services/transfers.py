"""Transfers between participants' holding accounts, one at a time or up to a thousand at once.

A single transfer of the lowest serials is one statement, ``greenledger_transfer``
(``exchange/sql/greenledger_transfer.sql``), its Idempotency-Key's claim and kept answer and the trust rule
included; with explicit serials it posts through ``ledger_post``. A batch is one journal entry posted
set-wise through ``ledger_post``. Both take the lowest blocks with ``greenledger_lowest_blocks``, write
blocks back with ``greenledger_blocks_put`` and hash the audit event with ``greenledger_event_hash``.
Outside any transaction, the one-statement transfers that a process's threads make at the same time commit
together, each refusal its own (``exchange.group_commit``); a transfer alone is its statement, as ever.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts.actors import Actor
from core import clock
from core.db import pipeline
from core.errors import DomainError, InvalidInput, InvalidQuantity
from core.limits import check_quantity
from exchange.audit_proof import canonical_json, entry_digest, event_body, format_time
from exchange.errors import (
    AssetNotTransferable,
    InsufficientAvailable,
    InvalidDestination,
    RequestInProgress,
    RuleViolation,
    SameAccount,
)
from exchange.group_commit import Member, transfer_group
from exchange.group_commit import enabled as group_commit_enabled
from exchange.locks import AUDIT_LOCK_KEY, IDEMPOTENCY_LOCK_CLASS, LockedBalance
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    AuditEvent,
    BlockState,
    PendingTransfer,
    Transaction,
    TransactionKind,
)
from exchange.services.accounts import check_source
from exchange.services.audit import audit_record, note_recorded, service
from exchange.services.idempotency import (
    POLL_SECONDS,
    WAIT_SECONDS,
    KeyedRequest,
    answer_body,
    idempotency_scope,
    idempotent_service,
    keyed_request,
)
from exchange.services.ledger import (
    Leg,
    Posted,
    insufficient_available,
    journal_open,
    ledger_post,
    request_hash,
)
from exchange.services.trust import (
    TransferRules,
    UntrustedDestination,
    needs_delay,
    pending_transfer_create,
    transfer_rules,
    trust_decides,
    untrusted_destinations,
)


def _(text: str) -> str:
    """``text`` marked for translation, translated when shown (a lazy string typed as the ``str`` it becomes)."""
    return cast(str, gettext_lazy(text))


class NonTradeTransferRequired(RuleViolation):
    code = "non_trade_transfer_required"
    default_message = _(
        "In this market units go to another participant through trading, or as a non-trade transfer the "
        "registry reviews (POST /api/v1/non-trade-transfers)."
    )


def check_transfer(
    *,
    actor: Actor,
    source: Account,
    destination: Account,
    asset: Asset,
    quantity: int,
    rules_read: dict[int, TransferRules] | None = None,
    read_rules: bool = True,
) -> TransferRules | None:
    """Refuse a transfer the actor may not make; return the market's transfer rules where they were read
    (a transfer to another participant), None for one between a participant's own accounts. ``rules_read``
    keeps the rules read per asset across the transfers of a batch (one query per asset, not per transfer).
    With ``read_rules`` False the market's rules are left to ``greenledger_transfer``, which applies them in
    the transfer's one statement (None is returned)."""
    check_source(actor, source)
    check_quantity(quantity)
    if source.pk == destination.pk:
        raise SameAccount(details={"account": source.number})
    if destination.kind != AccountKind.HOLDING:
        raise InvalidDestination(
            gettext("Transfers go to participants' holding accounts; retire or surrender instead."),
            details={"account": destination.number},
        )
    if not asset.transferable or asset.is_cash:
        raise AssetNotTransferable(details={"asset": asset.code})
    if source.participant_id == destination.participant_id:
        return None  # between a participant's own accounts: immediate, whatever the market
    if not read_rules:
        return None
    rules = rules_read.get(asset.pk) if rules_read is not None else None
    if rules is None:
        rules = transfer_rules(asset)
        if rules_read is not None:
            rules_read[asset.pk] = rules
    if rules.non_trade_only:
        raise NonTradeTransferRequired(
            details={"asset": asset.code, "source": source.number, "destination": destination.number}
        )
    return rules


def _one_statement(*, serials: tuple[int, int] | None = None, **_: Any) -> bool:
    """Whether this transfer is the database function's to make: the lowest serials, not named ones. Its
    Idempotency-Key, if any, is claimed in the same statement."""
    return serials is None


@service(one_statement=_one_statement)
@idempotent_service("transfer_create", one_statement=_one_statement)
def transfer_create(
    *,
    actor: Actor,
    source: Account,
    destination: Account,
    asset: Asset,
    quantity: int,
    idempotency_key: str | None = None,
    memo: str = "",
    serials: tuple[int, int] | None = None,
) -> Transaction | PendingTransfer:
    """Move ``quantity`` available units (lowest serials first, or exactly ``serials``) to another account.

    To an account that is neither the sender's own nor on its trusted list, the transfer waits: the
    units are held now and a ``PendingTransfer`` is returned (``exchange.services.trust``).
    ``idempotency_key`` is claimed by ``@idempotent_service`` (for the lowest serials, by the database
    function, in the transfer's one statement: ``keyed_request()``); the body never sees it.
    """
    one_statement = _one_statement(serials=serials)
    rules = check_transfer(
        actor=actor,
        source=source,
        destination=destination,
        asset=asset,
        quantity=quantity,
        read_rules=not one_statement,
    )
    request = {
        "source": source.number,
        "destination": destination.number,
        "asset": asset.code,
        "quantity": quantity,
        "memo": memo,
        "serials": list(serials) if serials else None,
    }

    def pending() -> PendingTransfer:
        # Outside a transaction the service may have taken the one-statement route: hold and record in one.
        with transaction.atomic():
            return pending_transfer_create(
                actor=actor,
                source=source,
                destination=destination,
                asset=asset,
                quantity=quantity,
                memo=memo,
                serials=serials,
                request=request,
                delay_seconds=(rules or transfer_rules(asset)).delay_seconds,
            )

    if one_statement:
        keyed = keyed_request()
        # The function applies the trust rule first: an untrusted destination answers None, nothing written.
        done = _transfer_in_sql(actor, source, destination, asset, quantity, memo, request, keyed, rules)
        if done is not None:
            return done
        return keyed.run(pending) if keyed is not None else pending()
    # The trust rule comes first: a delayed transfer does not post.
    if needs_delay(actor, destination, rules):
        return pending()
    # One pipeline for the whole entry: BEGIN rides with the journal row, and the writes with the audit event.
    with pipeline():
        txn, _ = journal_open(
            kind=TransactionKind.TRANSFER, actor=actor, idempotency_key=None, request=request, memo=memo
        )
        posted = ledger_post(txn, [Leg(asset, source, destination, quantity, serials=serials)])
        audit_record(
            actor=actor,
            action="transfer.create",
            obj=txn,
            payload={**request, "ranges": [list(r) for r in posted.ranges[0]], "entry_digest": posted.digest},
            at=txn.created_at,
        )
    attach_result(txn, posted, [(source, destination, asset, quantity)])
    return txn


# Stand-ins in the event body for what only the database knows yet (the entry's id, the moved ranges).
# Control characters never occur raw in canonical JSON (they are escaped), so each appears exactly once.
_ID_MARK = "\x01transaction\x01"
_RANGES_MARK = "\x01ranges\x01"
_ANSWER_ID = -1  # json.dumps writes it once, where the entry id goes: split around it
INSUFFICIENT_SQLSTATE = "GL001"
NON_TRADE_ONLY_SQLSTATE = "GL002"
_REFUSALS = {INSUFFICIENT_SQLSTATE, NON_TRADE_ONLY_SQLSTATE}
_TRANSFER_SQL = f"SELECT * FROM greenledger_transfer({', '.join(['%s'] * 28)})"


@functools.cache
def _answer_parts() -> tuple[str, str]:
    """What ``KeyedRequest.run`` keeps for a transfer, around the entry id the function splices in."""
    before, after = answer_body(Transaction(id=_ANSWER_ID)).split(str(_ANSWER_ID))
    return before, after


def _transfer_in_sql(
    actor: Actor,
    source: Account,
    destination: Account,
    asset: Asset,
    quantity: int,
    memo: str,
    request: dict[str, Any],
    keyed: KeyedRequest | None,
    rules: TransferRules | None,
) -> Transaction | PendingTransfer | None:
    """``transfer_create`` of the lowest serials: one statement (``greenledger_transfer``), the key's claim
    and kept answer included; None when the destination is untrusted (nothing written: a pending transfer).

    The same entry, postings, blocks, movements and audit event as ``ledger_post`` and ``audit_record``
    would write, and the same key row and answer as ``KeyedRequest.run``; the event's payload and body are
    made here, with the entry id and the ranges spliced in by the function before it hashes them. A key
    a twin holds is polled for as ``idempotency_claim`` does; a key already answered is replayed (or
    refused as a conflict) as it would be. Outside a transaction the statement goes to this process's group
    commit (``exchange.group_commit``), which answers its row once the transaction holding it has committed.
    """
    scope = idempotency_scope(actor)
    digest = request_hash(TransactionKind.TRANSFER, request)
    now = timezone.now()
    postings = [(source.pk, asset.pk, -quantity), (destination.pk, asset.pk, quantity)]
    entry = entry_digest(TransactionKind.TRANSFER, now, postings)
    payload = canonical_json({**request, "ranges": _RANGES_MARK, "entry_digest": entry}).replace(
        json.dumps(_RANGES_MARK), _RANGES_MARK
    )
    body = event_body(
        time=format_time(now),
        action="transfer.create",
        actor_label=actor.label,
        actor_user=actor.user_id,
        actor_participant=actor.participant_id,
        object_type="transaction",
        object_id=_ID_MARK,
        payload=payload,
    ).replace(json.dumps(_ID_MARK), f'"{_ID_MARK}"')
    body1, rest = body.split(_ID_MARK)
    body2, body3 = rest.split(_RANGES_MARK)
    pay1, pay2 = payload.split(_RANGES_MARK)
    claim: list[Any] = [None] * 7
    if keyed is not None:
        assert keyed.scope == scope
        claim = [keyed.key, keyed.method, keyed.operation, keyed.digest, IDEMPOTENCY_LOCK_CLASS, *_answer_parts()]
    params = [
        actor.user_id,
        actor.participant_id,
        actor.label,
        scope,
        digest,
        memo[:500],
        now,
        source.pk,
        destination.pk,
        asset.pk,
        quantity,
        "transfer.create",
        body1,
        body2,
        body3,
        pay1,
        pay2,
        AUDIT_LOCK_KEY,
        trust_decides(actor, destination, rules),
        clock.now(),
        *claim,
        source.participant_id != destination.participant_id,
    ]
    # What a group committing it together with others locks first (exchange.group_commit).
    touched = ((source.pk, asset.pk), (destination.pk, asset.pk))
    participants = tuple(p for p in (source.participant_id, destination.participant_id) if p is not None)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        row = None
        if group_commit_enabled() and not connection.in_atomic_block:
            row = transfer_group().run(Member(params, touched, participants), lambda: _transfer_alone(params))
            if row is not None and row[0] == "refused" and row[6] not in _REFUSALS:
                row = None  # an error not of the transfer's own making: raised by the statement alone
        if row is None:  # in a caller's transaction, or not written by a group: a statement of its own
            row = _transfer_alone(params)
        status, txn_id, _, source_after, dest_after, flat, sqlstate, detail = row[:8]
        if status == "refused":
            raise _refusal(sqlstate, detail, source, destination, asset, quantity)
        if status != "busy":
            break
        # A twin with the same key is running: wait for it to end, as idempotency_claim waits.
        if keyed is None or time.monotonic() >= deadline:
            key = keyed.key if keyed is not None else None
            raise RequestInProgress(
                details={"idempotency_key": key, "retry_after_seconds": RequestInProgress.retry_after}
            )
        time.sleep(POLL_SECONDS)
    if status == "untrusted":
        return None
    if status == "claimed":
        assert keyed is not None
        return keyed.replay()
    if status != "posted":
        raise RuntimeError(f"greenledger_transfer answered {status!r}")
    note_recorded()
    txn = Transaction(
        id=txn_id,
        kind=TransactionKind.TRANSFER,
        actor_user_id=actor.user_id,
        actor_participant_id=actor.participant_id,
        actor_label=actor.label,
        idempotency_scope=scope,
        idempotency_key=None,
        request_hash=digest,
        memo=memo[:500],
        metadata={},
        created_at=now,
    )
    txn._state.adding = False
    ranges = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    balances = {
        (source.pk, asset.pk): LockedBalance(0, source.pk, asset.pk, source_after, 0, False),
        (destination.pk, asset.pk): LockedBalance(0, destination.pk, asset.pk, dest_after, 0, False),
    }
    attach_result(txn, Posted(postings=2, ranges=[ranges], balances=balances), [(source, destination, asset, quantity)])
    return txn


def _transfer_alone(params: list[Any]) -> tuple[Any, ...]:
    """``greenledger_transfer`` as a statement of its own (or in the caller's transaction), answered as
    ``greenledger_transfer_try`` answers in a group: a refusal of the transfer's own as status ``refused``."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(_TRANSFER_SQL, params)
            return (*cursor.fetchone(), None, None)
    except DatabaseError as exc:
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        diag = getattr(exc.__cause__, "diag", None)
        if sqlstate not in _REFUSALS or diag is None:
            raise
        return ("refused", None, None, None, None, None, sqlstate, diag.message_detail)


def _refusal(
    sqlstate: str, detail: str | None, source: Account, destination: Account, asset: Asset, quantity: int
) -> DomainError:
    """The refusal ``greenledger_transfer`` raised (``_REFUSALS``) as the service raises it."""
    if sqlstate == NON_TRADE_ONLY_SQLSTATE:
        return NonTradeTransferRequired(
            details={"asset": asset.code, "source": source.number, "destination": destination.number}
        )
    # The function reports the source's available amount (raw, as the ledger keeps it) in the detail.
    available = json.loads(detail or "{}")["available"]
    return insufficient_available(source, asset, available, quantity)


@dataclass(frozen=True, slots=True)
class PostingLine:
    """A posting as the API shows it, built from what the service wrote (no query, no model instance)."""

    account: Account
    asset: Asset
    quantity: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class MovementLine:
    asset: Asset
    first: int
    last: int
    source: Account
    destination: Account
    state: str


def attach_result(txn: Transaction, posted: Posted, moves: Sequence[tuple[Account, Account, Asset, int]]) -> None:
    """Give ``txn`` the postings and serial movements just written, so the response needs no query.

    In the order ``ledger_post`` wrote them (by id): per move the source's posting, then the destination's.
    """
    postings: list[PostingLine] = []
    movements: list[MovementLine] = []
    running = {key: bal.total for key, bal in posted.balances.items()}
    for (source, destination, asset, quantity), ranges in reversed(list(zip(moves, posted.ranges, strict=True))):
        # Walk back from the balances after the entry to each posting's balance after it.
        for account, signed in ((destination, quantity), (source, -quantity)):
            key = (account.pk, asset.pk)
            postings.append(PostingLine(account, asset, signed, running[key]))
            running[key] -= signed
        movements.extend(
            MovementLine(asset, first, last, source, destination, BlockState.AVAILABLE)
            for first, last in reversed(ranges)
        )
    txn._postings = postings[::-1]  # type: ignore[attr-defined]
    txn._movements = movements[::-1]  # type: ignore[attr-defined]


# --- batches ---------------------------------------------------------------------------------------------
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class TransferOrder:
    """One transfer of a batch."""

    source: Account
    destination: Account
    asset: Asset
    quantity: int
    serials: tuple[int, int] | None = None


@dataclass(slots=True)
class BatchResult:
    transaction: Transaction
    ranges: list[list[tuple[int, int]]]  # per transfer, the serial ranges it moved
    replayed: bool = False


def at_index(index: int, exc: DomainError) -> DomainError:
    """The same refusal, naming the transfer of the batch it is about."""
    refusal = type(exc)(
        gettext("Transfer %(index)s: %(message)s") % {"index": index, "message": exc.message},
        details={"index": index, **exc.details},
    )
    return refusal


def _culprit(orders: Sequence[TransferOrder], exc: InsufficientAvailable) -> int:
    """The first transfer the refusal is about: where its source runs out, or that names those serials."""
    details = exc.details
    if "serials" in details:
        wanted = list(details["serials"])
        for i, order in enumerate(orders):
            if order.serials is not None and list(order.serials) == wanted:
                return i
    spent = 0
    first = None
    for i, order in enumerate(orders):
        if order.source.number == details.get("account") and order.asset.code == details.get("asset"):
            first = i if first is None else first
            spent += order.quantity
            if spent > details.get("available", spent):
                return i
    return first or 0


def _batch_replayed(txn: Transaction) -> BatchResult:
    return BatchResult(txn, _batch_ranges(txn), replayed=True)


@service
@idempotent_service("transfers_batch_create", kept=lambda result: result.transaction, replayed=_batch_replayed)
def transfers_batch_create(
    *,
    actor: Actor,
    transfers: Sequence[TransferOrder],
    memo: str = "",
    idempotency_key: str | None = None,
) -> BatchResult:
    """Up to 1,000 transfers from the actor's accounts as one journal entry: all of them, or none.

    Each is checked as ``transfer_create`` checks it; a refusal names the index of the transfer it is
    about (``details.index``). The Idempotency-Key covers the whole batch (claimed by
    ``@idempotent_service``). One audit event records it.
    """
    if not 1 <= len(transfers) <= MAX_BATCH:
        raise InvalidInput(
            gettext("A batch holds 1 to %(max)s transfers.") % {"max": MAX_BATCH},
            details={"transfers": len(transfers), "max": MAX_BATCH},
        )
    rules_read: dict[int, TransferRules] = {}
    for i, order in enumerate(transfers):
        try:
            check_transfer(
                actor=actor,
                source=order.source,
                destination=order.destination,
                asset=order.asset,
                quantity=order.quantity,
                rules_read=rules_read,
            )
            if order.serials is not None and (
                order.serials[0] < 1 or order.serials[1] - order.serials[0] + 1 != order.quantity
            ):
                raise InvalidQuantity(
                    gettext("The serial range does not match the quantity."), details={"serials": list(order.serials)}
                )
        except DomainError as exc:
            raise at_index(i, exc) from None
    untrusted = untrusted_destinations(actor, [t.destination for t in transfers], [t.asset for t in transfers])
    if untrusted:
        first = next(i for i, t in enumerate(transfers) if t.destination.pk in untrusted)
        raise at_index(first, UntrustedDestination(details={"account": transfers[first].destination.number}))
    request = {
        "memo": memo,
        "transfers": [
            [t.source.number, t.destination.number, t.asset.code, t.quantity, list(t.serials) if t.serials else None]
            for t in transfers
        ],
    }
    with pipeline():
        txn, _ = journal_open(
            kind=TransactionKind.TRANSFER,
            actor=actor,
            idempotency_key=None,
            request=request,
            memo=memo,
            metadata={"batch": len(transfers)},
        )
        legs = [Leg(t.asset, t.source, t.destination, t.quantity, serials=t.serials) for t in transfers]
        try:
            posted = ledger_post(txn, legs)
        except InsufficientAvailable as exc:
            raise at_index(_culprit(transfers, exc), exc) from None
        audit_record(
            actor=actor,
            action="transfer.batch",
            obj=txn,
            payload={
                **request,
                "ranges": [[list(r) for r in ranges] for ranges in posted.ranges],
                "entry_digest": posted.digest,
            },
            at=txn.created_at,
        )
    return BatchResult(txn, posted.ranges)


def _batch_ranges(txn: Transaction) -> list[list[tuple[int, int]]]:
    """What a batch moved, per transfer, as its audit event recorded it (for a replayed request)."""
    event = AuditEvent.objects.filter(object_type="transaction", object_id=str(txn.pk), action="transfer.batch").first()
    if event is None:
        return []
    return [[(int(f), int(last)) for f, last in ranges] for ranges in json.loads(event.payload)["ranges"]]


__all__ = [
    "MAX_BATCH",
    "BatchResult",
    "NonTradeTransferRequired",
    "TransferOrder",
    "check_source",
    "check_transfer",
    "transfer_create",
    "transfers_batch_create",
]
