"""Audit hashing and proof checking with nothing but the Python standard library.

This module is what an auditor or a client runs to check greenledger's evidence without trusting
its database: copy it anywhere, it imports only ``hashlib`` and ``json``. The server uses the same
functions, so there is one definition of every hash.

- Canonical JSON: sorted keys, no whitespace, UTF-8, integers and decimals as strings.
- Event hash: ``sha256("<seq>|<body>")`` where ``body`` is the canonical JSON object
  ``{"action", "actor", "object", "payload", "time"}``.
- Merkle tree over a checkpoint's event hashes, as RFC 9162 (Certificate Transparency 2.0) defines it:
  leaf = ``sha256(0x00 || event_hash)``, node = ``sha256(0x01 || left || right)``, split at the largest
  power of two below the size.
- Checkpoint hash: ``sha256(canonical JSON of its fields)``; each names the previous one's hash, the
  first names 64 zeros.
- Checkpoint signature: Ed25519 over ``"greenledger checkpoint <hash>"`` (UTF-8) by the registry's audit
  key; ``key_id`` is the first 16 hex digits of ``sha256(raw public key)``. Checking a signature needs the
  ``cryptography`` package; everything else here is the standard library.
- Journal entry digest: ``sha256("<kind>|<time>|<postings>")`` where ``postings`` is
  ``account:asset:quantity`` of every posting, sorted by account, asset and quantity, joined by ``;``.
  The audit event of the entry states it (payload key ``entry_digest``); ``manage.py reconcile``
  recomputes it from the journal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from json.encoder import encode_basestring as _encode_str
from typing import Any

GENESIS_HASH = "0" * 64
CHECKPOINT_FIELDS = ("count", "first_seq", "gaps", "last_seq", "number", "previous_hash", "root", "sealed_at")


# --- what does not hold ---------------------------------------------------------------------------
def gettext_noop(message: str) -> str:
    """Marks a message for greenledger's catalogue (this module imports no Django); returns it unchanged."""
    return message


_same = gettext_noop  # the untranslated text: what this module shows when run alone


# Every problem the checker reports, by a stable code. The English text is the message for anyone running this
# file alone; greenledger shows a person the catalogue's translation of the same text (``ProofProblem.text``).
PROOF_MESSAGES: dict[str, str] = {
    "event_hash": gettext_noop("event %(seq)s: hash %(hash)s does not match its body (%(recomputed)s)"),
    "merkle_path": gettext_noop("event %(seq)s: Merkle path leads to %(root)s, not checkpoint root %(expected)s"),
    "checkpoint_hash": gettext_noop("checkpoint %(number)s: hash does not match its fields"),
    "chain_broken": gettext_noop("checkpoint %(number)s: does not follow checkpoint %(previous)s"),
    "trusted_not_reached": gettext_noop("the chain does not reach the trusted checkpoint"),
    "checkpoint": gettext_noop("checkpoint %(number)s: %(problem)s"),
    "not_signed": gettext_noop("is not signed"),
    "untrusted_key": gettext_noop("is signed by key %(key)s, which is not a trusted audit key"),
    "bad_signature": gettext_noop("signature does not verify with key %(key)s"),
    "kept_gone": gettext_noop("in the kept copy (hash %(hash)s) but no longer in the trail"),
    "kept_changed": gettext_noop("hash %(hash)s differs from the kept copy's %(kept)s (rewritten from here)"),
    "feed": gettext_noop("the checkpoint feed does not hold: %(problems)s"),
}


class ProofProblem(str):
    """What does not hold: the string is its English text; ``code`` (a key of ``messages``) and ``params`` (the
    figures in it; a problem inside another, or a list of them, is a figure too) let a reader be shown it in
    their own language: ``problem.text(gettext)``."""

    messages: Mapping[str, str] = PROOF_MESSAGES
    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, **params: Any) -> ProofProblem:
        problem = super().__new__(cls, _render(cls.messages[code], params, _same))
        problem.code, problem.params = code, params
        return problem

    def text(self, translate: Callable[[str], str] = _same) -> str:
        """The text with ``translate`` (a gettext) applied to the message and to every problem in it."""
        return _render(self.messages[self.code], self.params, translate)

    def __reduce__(self) -> tuple[Any, ...]:  # the trail's verification pickles problems between processes
        return (_problem, (type(self), self.code, self.params))


def _problem(kind: type[ProofProblem], code: str, params: dict[str, Any]) -> ProofProblem:
    return kind(code, **params)


def _render(message: str, params: Mapping[str, Any], translate: Callable[[str], str]) -> str:
    def figure(value: Any) -> Any:
        if isinstance(value, ProofProblem):
            return value.text(translate)
        if isinstance(value, list | tuple):
            return "; ".join(str(figure(v)) for v in value)
        return value

    return translate(message) % {name: figure(value) for name, value in params.items()}


# --- canonical JSON -------------------------------------------------------------------------------
def _normalise(value: Any) -> Any:
    kind = type(value)  # the common exact types first: a batch's payload holds thousands of them
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return str(value)
    if kind is list or kind is tuple:
        return [_normalise(v) for v in value]
    if kind is dict:
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not allowed in audit payloads; use int or Decimal")
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    raise TypeError(f"can't put {type(value).__name__} in an audit payload")


def canonical_json(value: Any) -> str:
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_hex(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# --- events -----------------------------------------------------------------------------------------
def _json_str(text: str) -> str:
    return _encode_str(text)


def _json_id(value: int | None) -> str:
    return "null" if value is None else f'"{value}"'


def event_body(
    *,
    time: str,
    action: str,
    actor_label: str,
    actor_user: int | None,
    actor_participant: int | None,
    object_type: str,
    object_id: str,
    payload: str,
) -> str:
    """The canonical body of an event; ``payload`` is already canonical JSON text.

    Equal to ``canonical_json({"action": ..., "actor": {"label", "participant", "user"},
    "object": {"id", "type"}, "payload": ..., "time": ...})``, built by hand because verification
    rebuilds a million of these.
    """
    return (
        '{"action":'
        + _json_str(action)
        + ',"actor":{"label":'
        + _json_str(actor_label)
        + ',"participant":'
        + _json_id(actor_participant)
        + ',"user":'
        + _json_id(actor_user)
        + '},"object":{"id":'
        + _json_str(object_id)
        + ',"type":'
        + _json_str(object_type)
        + '},"payload":'
        + payload
        + ',"time":'
        + _json_str(time)
        + "}"
    )


def event_hash(seq: int, body: str) -> str:
    return sha256_hex(f"{seq}|{body}")


def event_digest(
    seq: int,
    time: str,
    actor_user: int | None,
    actor_participant: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    payload: str,
) -> bytes:
    """``event_hash(seq, event_body(...))`` as its 32 bytes, positional and in one expression: verification
    computes a million of these, and the keyword call, the helpers and the hex round trip were most of an
    event's cost. The tests hold the two equal."""
    enc = _encode_str
    participant = "null" if actor_participant is None else f'"{actor_participant}"'
    user = "null" if actor_user is None else f'"{actor_user}"'
    return hashlib.sha256(
        f'{seq}|{{"action":{enc(action)},"actor":{{"label":{enc(actor_label)},"participant":{participant},'
        f'"user":{user}}},"object":{{"id":{enc(object_id)},"type":{enc(object_type)}}},"payload":{payload},'
        f'"time":{enc(time)}}}'.encode()
    ).digest()


# --- Merkle tree (RFC 9162 section 2.1) ------------------------------------------------------------
def leaf_hash(event_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(event_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(event_hashes: Sequence[str]) -> str:
    """Root of the tree over the event hashes, in order (bottom-up, no recursion)."""
    return merkle_root_of_digests([bytes.fromhex(h) for h in event_hashes])


def merkle_root_of_digests(digests: Sequence[bytes]) -> str:
    """``merkle_root`` of event hashes given as their 32 bytes each (as a checkpoint keeps its leaves)."""
    if not digests:
        raise ValueError("a checkpoint seals at least one event")
    sha256 = hashlib.sha256
    level = [sha256(b"\x00" + d).digest() for d in digests]
    # Bottom-up pairing gives RFC 9162's tree: an odd node is carried up unchanged.
    while len(level) > 1:
        # node_hash, inline: a checkpoint of 100,000 events has as many nodes.
        nxt = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def inclusion_path(event_hashes: Sequence[str], index: int) -> list[str]:
    """The audit path (sibling hashes, leaf to root) proving the event at ``index`` is in the tree."""
    if not 0 <= index < len(event_hashes):
        raise IndexError("leaf index outside the tree")
    leaves = [leaf_hash(h) for h in event_hashes]
    return [h.hex() for h in _path(index, leaves)]


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), _subtree_root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _subtree_root(leaves[:k])]


def _subtree_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_subtree_root(leaves[:k]), _subtree_root(leaves[k:]))


def root_from_path(event_hash_hex: str, index: int, size: int, path: Iterable[str]) -> str:
    """Recompute the root from a leaf and its audit path (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    fn, sn = index, size - 1
    r = leaf_hash(event_hash_hex)
    for p_hex in path:
        p = bytes.fromhex(p_hex)
        if sn == 0:
            raise ValueError("audit path is longer than the tree")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("audit path is shorter than the tree")
    return r.hex()


# --- checkpoints -----------------------------------------------------------------------------------
def checkpoint_hash(checkpoint: Mapping[str, Any]) -> str:
    fields = {name: checkpoint[name] for name in CHECKPOINT_FIELDS}
    return sha256_hex(canonical_json(fields))


# --- journal entries ------------------------------------------------------------------------------
def entry_digest(kind: str, created_at: datetime, postings: Iterable[tuple[int, int, int]]) -> str:
    """What an entry's audit event states about it: its kind, time and ``(account, asset, quantity)`` postings."""
    lines = ";".join(f"{account}:{asset}:{quantity}" for account, asset, quantity in sorted(postings))
    return sha256_hex(f"{kind}|{format_time(created_at)}|{lines}")


# --- signatures ------------------------------------------------------------------------------------
SIGNATURE_ALGORITHM = "Ed25519"


def signed_message(checkpoint_hash_hex: str) -> bytes:
    return f"greenledger checkpoint {checkpoint_hash_hex}".encode()


def key_id(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


def signature_problem(checkpoint: Mapping[str, Any], public_keys: Mapping[str, str]) -> ProofProblem | None:
    """Why ``checkpoint``'s signature does not hold against ``public_keys`` (key id -> base64 raw key), or None.

    Needs the ``cryptography`` package (``ImportError`` without it).
    """
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signature, kid = checkpoint.get("signature") or "", checkpoint.get("key_id") or ""
    if not signature:
        return ProofProblem("not_signed")
    if kid not in public_keys:
        return ProofProblem("untrusted_key", key=kid)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_keys[kid]))
    try:
        public.verify(base64.b64decode(signature), signed_message(checkpoint["hash"]))
    except (InvalidSignature, ValueError):
        return ProofProblem("bad_signature", key=kid)
    return None


def compare_with_kept(
    kept: Iterable[Mapping[str, Any]], current: Mapping[int, Mapping[str, Any]]
) -> list[tuple[int, ProofProblem]]:
    """Compare checkpoints kept from the feed with the trail as it is now (number -> document).

    Every kept checkpoint must still be there with the same hash: one that changed means the trail was
    rewritten from there, one that is gone means it was cut. Returns the differences, first first.
    """
    problems = []
    for doc in sorted(kept, key=lambda d: int(d["number"])):
        number = int(doc["number"])
        now = current.get(number)
        if now is None:
            problems.append((number, ProofProblem("kept_gone", hash=doc["hash"])))
        elif now["hash"] != doc["hash"]:
            problems.append((number, ProofProblem("kept_changed", hash=now["hash"], kept=doc["hash"])))
    return problems


def kept_checkpoints(text: str) -> list[dict[str, Any]]:
    """The checkpoints in a kept copy of the feed: one feed page (``{"checkpoints": [...]}``), a list of
    checkpoint documents, or JSON lines of either (pages appended as they were fetched)."""
    text = text.strip()
    if not text:
        return []
    try:
        values = [json.loads(text)]
    except json.JSONDecodeError:
        values = [json.loads(line) for line in text.splitlines() if line.strip()]
    docs: list[dict[str, Any]] = []
    for value in values:
        if isinstance(value, dict) and "checkpoints" in value:
            docs.extend(value["checkpoints"])
        elif isinstance(value, dict):
            docs.append(value)
        else:
            docs.extend(value)
    return docs


# --- the client-side check -------------------------------------------------------------------------
class ProofError(ValueError):
    """The proof does not hold: ``str()`` says which step failed, in English; ``code`` is stable and ``text(gettext)``
    says it in a reader's language (see ``ProofProblem``)."""

    def __init__(self, code: str, **params: Any) -> None:
        self.problem = ProofProblem(code, **params)
        super().__init__(self.problem)

    @property
    def code(self) -> str:
        return self.problem.code

    def text(self, translate: Callable[[str], str] = _same) -> str:
        return self.problem.text(translate)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled and copied as its code and figures, not its English text
        return (_proof_error, (self.problem.code, self.problem.params))


def _proof_error(code: str, params: dict[str, Any]) -> ProofError:
    return ProofError(code, **params)


def verify_proof(
    proof: Mapping[str, Any],
    *,
    trusted_checkpoint_hash: str | None = None,
    public_keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check an inclusion proof from ``GET /api/v1/audit/events/{seq}/proof``.

    Checks, in order: the event's hash from its body; the Merkle path from that hash to the
    checkpoint's root; the checkpoint's own hash; then each later checkpoint in ``chain`` names the
    one before it, up to the latest. If ``trusted_checkpoint_hash`` is given (a hash you obtained
    independently, e.g. published), the chain must reach it. With ``public_keys`` (key id -> base64 raw
    Ed25519 key) every checkpoint's signature is checked too (that needs ``cryptography``). Returns a
    summary; raises ``ProofError``.
    """
    event = proof["event"]
    body = event["body"]
    recomputed = event_hash(int(event["seq"]), body)
    if recomputed != event["hash"]:
        raise ProofError("event_hash", seq=event["seq"], hash=event["hash"], recomputed=recomputed)
    checkpoint = proof["checkpoint"]
    root = root_from_path(event["hash"], int(proof["leaf_index"]), int(checkpoint["count"]), proof["path"])
    if root != checkpoint["root"]:
        raise ProofError("merkle_path", seq=event["seq"], root=root, expected=checkpoint["root"])
    previous = checkpoint
    prev_hash = checkpoint_hash(checkpoint)
    if prev_hash != checkpoint["hash"]:
        raise ProofError("checkpoint_hash", number=checkpoint["number"])
    for later in proof.get("chain", []):
        if later["previous_hash"] != prev_hash:
            raise ProofError("chain_broken", number=later["number"], previous=previous["number"])
        prev_hash = checkpoint_hash(later)
        if prev_hash != later["hash"]:
            raise ProofError("checkpoint_hash", number=later["number"])
        previous = later
    if trusted_checkpoint_hash is not None and prev_hash != trusted_checkpoint_hash:
        raise ProofError("trusted_not_reached")
    if public_keys is not None:
        for doc in (checkpoint, *proof.get("chain", [])):
            problem = signature_problem(doc, public_keys)
            if problem:
                raise ProofError("checkpoint", number=doc["number"], problem=problem)
    summary = {"seq": int(event["seq"]), "checkpoint": int(checkpoint["number"]), "latest": int(previous["number"])}
    if public_keys is not None:
        summary["signed"] = True  # every checkpoint's signature checked
    return summary
