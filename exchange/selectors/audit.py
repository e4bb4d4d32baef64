"""Reading the sealed audit trail: checkpoints as published, and inclusion proofs for single events.

A proof holds an event's body and hash, its Merkle path to the root of the checkpoint that seals it, and
the chain of checkpoints after it; ``exchange.audit_proof.verify_proof`` checks one with the stdlib alone.
Sealing and verification (writes and the full check) are in ``exchange.services.sealing``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.errors import Conflict, NotFound
from core.errors import translatable as _
from exchange.audit_proof import event_body, format_time, inclusion_path
from exchange.models import AuditEvent, Checkpoint


def checkpoint_fields(c: Any) -> dict[str, Any]:
    get: Callable[[str], Any] = c.get if isinstance(c, dict) else lambda name: getattr(c, name)
    return {
        "count": get("count"),
        "first_seq": get("first_seq"),
        "gaps": json.loads(get("gaps")),
        "last_seq": get("last_seq"),
        "number": get("number"),
        "previous_hash": get("previous_hash"),
        "root": get("root"),
        "sealed_at": format_time(get("sealed_at")),
    }


def checkpoint_document(c: Checkpoint) -> dict[str, Any]:
    """A checkpoint as published: the hashed fields (as strings) and its hash."""
    doc = {k: (str(v) if isinstance(v, int) else v) for k, v in checkpoint_fields(c).items()}
    doc["hash"] = c.hash
    doc["key_id"] = c.key_id
    doc["signature"] = c.signature
    return doc


class EventNotFound(NotFound):
    code = "event_not_found"
    default_message = _("No such audit event.")


class NotSealed(Conflict):
    code = "not_sealed"
    default_message = _("The event is not sealed yet; sealing runs every minute.")


class ChainTooLong(Conflict):
    code = "chain_too_long"
    default_message = _("Too many checkpoints follow; ask for ?to=<a checkpoint number you trust>.")


MAX_CHAIN = 5000


def audit_proof(seq: int, to: int | None = None) -> dict[str, Any]:
    """An inclusion proof for event ``seq``: leaf, Merkle path, root, checkpoint, chain to the latest."""
    event = AuditEvent.objects.filter(seq=seq).first()
    if event is None:
        raise EventNotFound(details={"seq": seq})
    checkpoint = Checkpoint.objects.filter(first_seq__lte=seq, last_seq__gte=seq).first()
    if checkpoint is None:
        raise NotSealed(details={"seq": seq})
    hashes = list(
        AuditEvent.objects.filter(seq__gte=checkpoint.first_seq, seq__lte=checkpoint.last_seq)
        .order_by("seq")
        .values_list("seq", "hash")
    )
    index = next(i for i, (s, _) in enumerate(hashes) if s == seq)
    later = Checkpoint.objects.filter(number__gt=checkpoint.number).order_by("number")
    if to is not None:
        later = later.filter(number__lte=to)
    chain = list(later[: MAX_CHAIN + 1])
    if len(chain) > MAX_CHAIN:
        raise ChainTooLong(details={"checkpoint": checkpoint.number, "max_chain": MAX_CHAIN})
    body = event_body(
        time=format_time(event.created_at),
        action=event.action,
        actor_label=event.actor_label,
        actor_user=event.actor_user_id,
        actor_participant=event.actor_participant_id,
        object_type=event.object_type,
        object_id=event.object_id,
        payload=event.payload,
    )
    return {
        "event": {"seq": str(seq), "hash": event.hash, "body": body},
        "leaf_index": index,
        "path": inclusion_path([h for _, h in hashes], index),
        "root": checkpoint.root,
        "checkpoint": checkpoint_document(checkpoint),
        "chain": [checkpoint_document(c) for c in chain],
    }
