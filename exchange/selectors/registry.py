"""What the public registry shows: retirement and pledge registration certificates, and serial histories.

Public means no login, so these return only what a public carbon registry publishes: who retired which
serials for whom and why, and where a serial sits (its holder's account number and name) with the
transactions that moved it. No balances, no holds, no prices, nothing else of any participant.
A certificate carries the retirement's audit inclusion proof, checked here with the same stdlib checker
(``exchange.audit_proof.verify_proof``) a reader can run on the downloaded proof.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.translation import gettext

from exchange.audit_proof import ProofError, canonical_json, verify_proof
from exchange.models import (
    Account,
    AmendmentStatus,
    Asset,
    AuditEvent,
    BlockState,
    PledgeAmendment,
    PledgeCollateral,
    PledgeLoan,
    Retirement,
    SerialMovement,
)
from exchange.selectors.audit import NotSealed, audit_proof
from exchange.selectors.serials import serial_lookup

logger = logging.getLogger("greenledger.registry")


@dataclass(frozen=True, slots=True)
class Verification:
    """``state`` is ``verified``, ``failed`` or ``pending`` (not sealed yet)."""

    state: str
    message: str
    proof: dict[str, Any] | None = None

    @property
    def proof_json(self) -> str:
        return canonical_json(self.proof) if self.proof is not None else ""


@dataclass(frozen=True, slots=True)
class Certificate:
    retirement: Retirement
    holder: str
    ranges: list[tuple[int, int, int]]  # first, last, units
    event_seq: int | None
    verification: Verification


def holder_name(account: Account) -> str:
    return account.participant.name if account.participant is not None else account.name


def retirement_certificate(pk: int) -> Certificate | None:
    retirement = (
        Retirement.objects.select_related("account__participant", "asset__project", "transaction").filter(pk=pk).first()
    )
    if retirement is None:
        return None
    ranges = [
        (first, last, last - first + 1)
        for first, last in SerialMovement.objects.filter(transaction_id=retirement.transaction_id)
        .order_by("first")
        .values_list("first", "last")
    ]
    seq = (
        AuditEvent.objects.filter(
            object_type="transaction", object_id=str(retirement.transaction_id), action="retirement.create"
        )
        .values_list("seq", flat=True)
        .first()
    )
    return Certificate(
        retirement=retirement,
        holder=holder_name(retirement.account),
        ranges=ranges,
        event_seq=seq,
        verification=verify_event(seq),
    )


@dataclass(frozen=True, slots=True)
class PledgeCertificate:
    loan: PledgeLoan
    ranges: list[tuple[int, int, int]]  # first, last, units: every block frozen at registration and since
    event_seq: int | None
    verification: Verification
    amendments: list[PledgeAmendment] = field(default_factory=list)  # registered, in number order


def pledge_certificate(reference: str) -> PledgeCertificate | None:
    """A registered pledge's registration certificate, public by its registration number: the parties by
    name, the asset and serial ranges, the secured amount, the dates, and the registration's audit proof
    checked here; and its registered amendments (top-ups, partial releases, extensions)."""
    loan = (
        PledgeLoan.objects.select_related("borrower", "lender", "asset__project", "account")
        .filter(registration_reference=reference)
        .first()
    )
    if loan is None:
        return None
    ranges = [
        (first, last, last - first + 1)
        for ranges_ in PledgeCollateral.objects.filter(loan=loan).order_by("id").values_list("serial_ranges", flat=True)
        for first, last in ranges_
    ]
    seq = (
        AuditEvent.objects.filter(object_type="pledgeloan", object_id=str(loan.pk), action="pledge.register")
        .values_list("seq", flat=True)
        .first()
    )
    amendments = list(PledgeAmendment.objects.filter(loan=loan, status=AmendmentStatus.REGISTERED).order_by("number"))
    return PledgeCertificate(
        loan=loan,
        ranges=ranges,
        event_seq=seq,
        verification=verify_event(seq, "registration"),
        amendments=amendments,
    )


def verify_event(seq: int | None, what: str = "retirement") -> Verification:
    """The proof of event ``seq`` checked here, said in the reader's language (the active one)."""
    if seq is None:
        missing = (
            gettext("No audit event records this retirement.")
            if what == "retirement"
            else gettext("No audit event records this registration.")
        )
        return Verification("failed", missing)
    try:
        proof = audit_proof(seq)
    except NotSealed:
        return Verification("pending", gettext("Sealing pending: the audit trail seals new events every minute."))
    try:
        result = verify_proof(proof)
    except ProofError as exc:
        return Verification(
            "failed", gettext("The proof does not hold: %(problem)s") % {"problem": exc.text(gettext)}, proof
        )
    except (ValueError, KeyError):
        # A proof malformed beyond the checker's steps: the exception's text is internal (a key, a parser's
        # words), so the public reads what happened and what to do; the operators read the log.
        logger.warning("the audit proof of event %s could not be read", seq, exc_info=True)
        return Verification(
            "failed",
            gettext(
                "The proof could not be read: it is incomplete or damaged. The record is as the registry keeps it; "
                "to have its proof checked, send the address of this page to the registry."
            ),
            proof,
        )
    return Verification(
        "verified",
        gettext(
            "Audit event %(seq)s is included in checkpoint %(checkpoint)s, and the checkpoint chain holds up to "
            "checkpoint %(latest)s."
        )
        % {"seq": result["seq"], "checkpoint": result["checkpoint"], "latest": result["latest"]},
        proof,
    )


@dataclass(frozen=True, slots=True)
class PublicMovement:
    transaction: int
    kind: str
    time: datetime
    first: int
    last: int
    source: str
    destination: str
    state: str


@dataclass(frozen=True, slots=True)
class PublicSerial:
    asset: Asset
    serial: int
    first: int | None
    last: int | None
    state: str | None
    account: str | None
    holder: str | None
    history: list[PublicMovement]


def public_serial(asset: Asset, serial: int) -> PublicSerial:
    """A serial as the public sees it. A frozen block shows its state only: neither the court that froze it
    nor the holder is named (the registration rules keep a judicial freeze between the court, the holder and
    the registry)."""
    info = serial_lookup(asset, serial)
    block = info.block
    named = block is not None and block.state != BlockState.FROZEN
    return PublicSerial(
        asset=asset,
        serial=serial,
        first=block.first if block else None,
        last=block.last if block else None,
        state=block.state if block else None,
        account=block.account.number if named and block else None,
        holder=holder_name(block.account) if named and block else None,
        history=[
            PublicMovement(
                transaction=m.transaction_id,
                kind=m.transaction.get_kind_display(),
                time=m.transaction.created_at,
                first=m.first,
                last=m.last,
                source=m.source.number,
                destination=m.destination.number,
                state=m.state,
            )
            for m in info.movements
        ],
    )


def serialised_assets() -> list[Asset]:
    return list(Asset.objects.filter(serialised=True).order_by("kind", "code"))
