"""The standalone proof checker (stdlib only): Merkle trees as RFC 9162 defines them, paths, proofs."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.audit_proof import (
    GENESIS_HASH,
    ProofError,
    canonical_json,
    checkpoint_hash,
    event_body,
    event_hash,
    inclusion_path,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_path,
    verify_proof,
)


def rfc_root(hashes: list[str]) -> bytes:
    """MTH from RFC 9162 section 2.1.1, written recursively as the RFC states it."""
    if len(hashes) == 1:
        return leaf_hash(hashes[0])
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(rfc_root(hashes[:k]), rfc_root(hashes[k:]))


def fake_hashes(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


@given(st.integers(min_value=1, max_value=70))
def test_merkle_root_is_the_rfc_tree(n):
    hashes = fake_hashes(n)
    assert merkle_root(hashes) == rfc_root(hashes).hex()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 17, 33])
def test_every_leaf_path_leads_to_the_root(n):
    hashes = fake_hashes(n)
    root = merkle_root(hashes)
    for index in range(n):
        assert root_from_path(hashes[index], index, n, inclusion_path(hashes, index)) == root


def test_a_path_for_another_leaf_or_size_fails():
    hashes = fake_hashes(9)
    path = inclusion_path(hashes, 4)
    root = merkle_root(hashes)
    assert root_from_path(hashes[5], 4, 9, path) != root
    with pytest.raises(ValueError, match="audit path is longer"):
        root_from_path(hashes[4], 4, 8, path)


def test_canonical_json_sorts_keys_and_writes_numbers_as_strings():
    assert canonical_json({"b": 1, "a": [2, None, True], "c": "北京"}) == '{"a":["2",null,true],"b":"1","c":"北京"}'
    with pytest.raises(TypeError):
        canonical_json({"price": 1.5})


def _proof(n: int = 5, index: int = 2) -> dict:
    bodies = [
        event_body(
            time="2026-11-23T00:00:00.000000Z",
            action="transfer.create",
            actor_label="user:1@participant:2",
            actor_user=1,
            actor_participant=2,
            object_type="transaction",
            object_id=str(i),
            payload=canonical_json({"quantity": 10 * i}),
        )
        for i in range(n)
    ]
    hashes = [event_hash(100 + i, body) for i, body in enumerate(bodies)]
    checkpoint = {
        "number": "1",
        "first_seq": "100",
        "last_seq": str(99 + n),
        "count": str(n),
        "gaps": [],
        "root": merkle_root(hashes),
        "previous_hash": GENESIS_HASH,
        "sealed_at": "2026-11-23T00:01:00.000000Z",
    }
    checkpoint["hash"] = checkpoint_hash(checkpoint)
    later = {
        "number": "2",
        "first_seq": str(100 + n),
        "last_seq": str(100 + n),
        "count": "1",
        "gaps": [],
        "root": merkle_root([hashes[0]]),
        "previous_hash": checkpoint["hash"],
        "sealed_at": "2026-11-23T00:02:00.000000Z",
    }
    later["hash"] = checkpoint_hash(later)
    return {
        "event": {"seq": str(100 + index), "hash": hashes[index], "body": bodies[index]},
        "leaf_index": index,
        "path": inclusion_path(hashes, index),
        "root": checkpoint["root"],
        "checkpoint": checkpoint,
        "chain": [later],
    }


def test_a_valid_proof_verifies_to_the_latest_checkpoint():
    proof = _proof()
    assert verify_proof(proof) == {"seq": 102, "checkpoint": 1, "latest": 2}
    assert verify_proof(proof, trusted_checkpoint_hash=proof["chain"][-1]["hash"])["latest"] == 2


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda p: p["event"].update(body=p["event"]["body"].replace('"20"', '"21"')), "does not match its body"),
        (lambda p: p.update(leaf_index=1), "Merkle path"),
        # The path alone does not bind the tree size; the checkpoint's hash does.
        (lambda p: p["checkpoint"].update(count="6"), "hash does not match"),
        (lambda p: p["checkpoint"].update(sealed_at="2026-11-24T00:00:00.000000Z"), "hash does not match"),
        (lambda p: p["chain"][0].update(previous_hash="0" * 64), "does not follow"),
    ],
)
def test_a_changed_proof_fails(tamper, message):
    proof = _proof()
    tamper(proof)
    with pytest.raises(ProofError, match=message):
        verify_proof(proof)


def test_an_untrusted_chain_end_fails():
    with pytest.raises(ProofError, match="trusted"):
        verify_proof(_proof(), trusted_checkpoint_hash="f" * 64)


# --- what does not hold: a stable code, English for the file alone, the catalogue's Chinese for a person ----------
@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (lambda p: p["event"].update(body=p["event"]["body"].replace('"20"', '"21"')), "event_hash"),
        (lambda p: p.update(leaf_index=1), "merkle_path"),
        (lambda p: p["checkpoint"].update(count="6"), "checkpoint_hash"),
        (lambda p: p["chain"][0].update(previous_hash="0" * 64), "chain_broken"),
    ],
)
def test_each_step_that_fails_has_a_stable_code(tamper, code):
    proof = _proof()
    tamper(proof)

    with pytest.raises(ProofError) as failed:
        verify_proof(proof)

    assert failed.value.code == code


def test_a_proof_that_does_not_hold_reads_in_chinese_from_the_catalogue_and_in_english_alone():
    from django.utils import translation
    from django.utils.translation import gettext

    with pytest.raises(ProofError) as untrusted:
        verify_proof(_proof(), trusted_checkpoint_hash="f" * 64)
    with pytest.raises(ProofError) as unsigned:
        verify_proof(_proof(), public_keys={})  # the test's checkpoints carry no signature

    with translation.override("zh-hans"):
        chinese = [untrusted.value.text(gettext), unsigned.value.text(gettext)]
    with translation.override("en"):
        english = [untrusted.value.text(gettext), unsigned.value.text(gettext)]

    assert (untrusted.value.code, unsigned.value.code, unsigned.value.problem.params["problem"].code) == (
        "trusted_not_reached",
        "checkpoint",
        "not_signed",
    )
    assert chinese == ["链未到达受信任的检查点", "检查点 1：未签名"]
    assert english == [str(untrusted.value), str(unsigned.value)]
    assert english == ["the chain does not reach the trusted checkpoint", "checkpoint 1: is not signed"]


def test_a_problem_is_its_english_text_and_keeps_its_code_through_pickling():
    import pickle

    from exchange.audit_proof import ProofProblem

    problem = ProofProblem("kept_changed", hash="ab", kept="cd")

    copy = pickle.loads(pickle.dumps(problem))  # noqa: S301 - our own bytes, as the verification's workers

    assert problem == copy == "hash ab differs from the kept copy's cd (rewritten from here)"
    assert (type(copy), copy.code, copy.params) == (ProofProblem, "kept_changed", {"hash": "ab", "kept": "cd"})


def test_the_proof_checker_imports_nothing_but_the_standard_library():
    code = (
        "import sys, exchange.audit_proof; "
        "sys.exit(1 if {'django', 'cryptography'} & {name.split('.')[0] for name in sys.modules} else 0)"
    )

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr


def test_a_proof_error_survives_pickling_and_copying_with_its_code_and_figures():
    """Celery results and copies rebuild an exception from what it reduces to: its code, not its English text."""
    import copy
    import pickle

    error = ProofError("checkpoint_hash", number=3)

    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):  # noqa: S301 - its own bytes
        assert (again.code, str(again), again.problem.params) == ("checkpoint_hash", str(error), {"number": 3})
