"""Creating units: CCER projects and their issuances, CEA vintages and their allocation.

New units come out of the issuance account (whose negative balance is the issued supply) with fresh
serial numbers taken from ``Asset.next_serial`` under a lock on the asset row. An issuance's
external reference is unique (a second issuance under it is 409 ``duplicate_external_reference``); an
Idempotency-Key, claimed through ``exchange.services.idempotency``, makes a retried request happen once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

from django.utils.translation import gettext, gettext_noop

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core.errors import InvalidInput, InvalidQuantity
from core.i18n import registry_text
from core.limits import MAX_QUANTITY, check_quantity
from exchange.errors import (
    CsvRejected,
    DuplicateExternalReference,
    DuplicateObject,
    IdempotencyConflict,
    InvalidDestination,
)
from exchange.locks import lock_asset_serials
from exchange.models import (
    Account,
    AccountKind,
    Asset,
    AssetKind,
    Issuance,
    Market,
    Methodology,
    Project,
    ProjectType,
    Transaction,
    TransactionKind,
)
from exchange.selectors.ccer import old_ccer_status
from exchange.services.accounts import system_account
from exchange.services.audit import audit_record, service
from exchange.services.four_eyes import four_eyes_check
from exchange.services.idempotency import idempotent_service
from exchange.services.ledger import Leg, journal_open, ledger_post
from exchange.services.pledges.future import future_pledges_freeze

PROJECT_OWNER_KINDS = (ParticipantKind.PROJECT_OWNER, ParticipantKind.COMPLIANCE_ENTITY)


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)


def _take_serials(asset: Asset, quantity: int) -> tuple[int, int]:
    """Hand out the next ``quantity`` serial numbers of the asset (the caller's transaction holds the lock)."""
    locked = lock_asset_serials(asset.pk)
    first = locked.next_serial
    Asset.objects.filter(pk=asset.pk).update(next_serial=first + quantity)
    asset.next_serial = first + quantity
    return first, first + quantity - 1


def main_account(participant: Participant) -> Account:
    account = participant.accounts.filter(kind=AccountKind.HOLDING).order_by("pk").first()
    if account is None:
        raise InvalidDestination(
            gettext("%(participant)s has no holding account.") % {"participant": participant.name},
            details={"participant": participant.pk},
        )
    return account


# --- CCER ----------------------------------------------------------------------------------------------
@service
def project_register(
    *,
    actor: Actor,
    code: str,
    name: str,
    project_type: str,
    methodology: str,
    location: str,
    owner: Participant,
    crediting_start: date,
    crediting_end: date,
    ets_covered: bool = False,
    filed_on: date | None = None,
    start_date: date | None = None,
    methodology_ref: Methodology | None = None,
    validation_body: str = "",
    validation_report_sha256: str = "",
) -> Project:
    """Register a CCER project (registry only).

    ``filed_on`` is when the project was first filed: filed before the CCER rule's ``old_ccer_filed_before``
    (14 March 2017), it is old CCER and offsets only until the rule's cut-off (``exchange.services.ccer``).
    The 2023 Measures' cycle registers projects through ``ccer_application_decide``, which passes the
    application's start date, methodology and validation report.
    """
    _require_registry(actor)
    code = code.strip().upper()
    if project_type not in ProjectType.values:
        raise InvalidInput(
            gettext("Unknown project type %(type)r.") % {"type": project_type}, details={"project_type": project_type}
        )
    if owner.kind not in PROJECT_OWNER_KINDS:
        raise InvalidInput(
            gettext("A project's owner is a project owner or a compliance entity."), details={"owner_kind": owner.kind}
        )
    if crediting_end < crediting_start:
        raise InvalidInput(gettext("The crediting period ends before it starts."))
    if Project.objects.filter(code=code).exists():
        raise DuplicateObject(
            gettext("Project %(code)s is registered already.") % {"code": code}, details={"code": code}
        )
    old_ccer, offset_cutoff = old_ccer_status(filed_on)
    project = Project.objects.create(
        filed_on=filed_on,
        old_ccer=old_ccer,
        offset_cutoff=offset_cutoff,
        start_date=start_date,
        methodology_ref=methodology_ref,
        validation_body=validation_body[:200],
        validation_report_sha256=validation_report_sha256,
        code=code,
        name=name,
        project_type=project_type,
        methodology=methodology,
        location=location,
        owner=owner,
        crediting_start=crediting_start,
        crediting_end=crediting_end,
        ets_covered=ets_covered,
    )
    audit_record(
        actor=actor,
        action="project.register",
        obj=project,
        payload={
            "code": code,
            "name": name,
            "project_type": project_type,
            "methodology": methodology,
            "location": location,
            "owner": owner.pk,
            "crediting_start": crediting_start,
            "crediting_end": crediting_end,
            "ets_covered": ets_covered,
            "filed_on": filed_on,
            "old_ccer": old_ccer,
            "offset_cutoff": offset_cutoff,
            "start_date": start_date,
            "methodology_ref": methodology_ref.code if methodology_ref else None,
            "validation_body": validation_body,
            "validation_report_sha256": validation_report_sha256,
        },
    )
    return project


def ccer_asset_code(project: Project, vintage: int) -> str:
    return f"CCER-{project.code}-{vintage}"


@service
def ccer_issue(
    *,
    actor: Actor,
    project: Project,
    vintage: int,
    monitoring_start: date,
    monitoring_end: date,
    quantity: int,
    external_reference: str,
) -> Issuance:
    """Issue verified reductions of a project as a CCER batch into the owner's account.

    The same ``external_reference`` with the same figures returns the first issuance, whoever asks;
    with other figures it is refused (``idempotency_conflict``).
    """
    _require_registry(actor)
    check_quantity(quantity)
    if monitoring_end < monitoring_start:
        raise InvalidInput(gettext("The monitoring period ends before it starts."))
    if not (project.crediting_start <= monitoring_start and monitoring_end <= project.crediting_end):
        raise InvalidInput(gettext("The monitoring period lies outside the project's crediting period."))
    if not 2000 <= vintage <= 2100:
        raise InvalidInput(gettext("The vintage is a year."), details={"vintage": vintage})
    request = {
        "project": project.code,
        "vintage": vintage,
        "monitoring_start": monitoring_start,
        "monitoring_end": monitoring_end,
        "quantity": quantity,
    }
    # The reference is a uniqueness rule registry-wide, whoever issues, not a replay: the journal keeps
    # "issuance:<reference>" in its idempotency_key column under one scope, and that column's unique index
    # (with Issuance.external_reference's) refuses a second issuance. Retries use an Idempotency-Key.
    try:
        txn, replayed = journal_open(
            kind=TransactionKind.ISSUANCE,
            actor=actor,
            idempotency_key=f"issuance:{external_reference}",
            request=request,
            memo=registry_text(
                gettext_noop("Issuance %(reference)s of %(project)s vintage %(vintage)s"),
                {"reference": external_reference, "project": project.code, "vintage": vintage},
            ),
            metadata={"external_reference": external_reference, "project": project.code, "vintage": vintage},
            scope="registry:issuance",
        )
    except IdempotencyConflict:
        replayed = True
    if replayed:
        raise DuplicateExternalReference(details={"external_reference": external_reference})
    four_eyes_check(quantity)
    asset, _ = Asset.objects.get_or_create(
        code=ccer_asset_code(project, vintage),
        defaults={
            "kind": AssetKind.CCER,
            "name": f"CCER {project.name} {vintage}",
            "vintage": vintage,
            "project": project,
            "serialised": True,
            "market": Market.objects.filter(code="CN-CCER").first(),
        },
    )
    destination = main_account(project.owner)
    serials = _take_serials(asset, quantity)
    posted = ledger_post(
        txn, [Leg(asset, system_account(AccountKind.ISSUANCE), destination, quantity, serials=serials)]
    )
    issuance = Issuance.objects.create(
        external_reference=external_reference,
        project=project,
        asset=asset,
        monitoring_start=monitoring_start,
        monitoring_end=monitoring_end,
        quantity=quantity,
        first_serial=serials[0],
        last_serial=serials[1],
        transaction=txn,
    )
    future_pledges_freeze(actor=actor, issuance=issuance)  # pledges of this future CCER, frozen in this transaction
    audit_record(
        actor=actor,
        action="ccer.issue",
        obj=issuance,
        payload={
            **request,
            "external_reference": external_reference,
            "asset": asset.code,
            "account": destination.number,
            "serials": list(serials),
            "transaction": txn.pk,
            "entry_digest": posted.digest,
        },
    )
    return issuance


# --- CEA -----------------------------------------------------------------------------------------------
def cea_asset_code(vintage: int) -> str:
    return f"CEA-{vintage}"


@service
def cea_vintage_create(*, actor: Actor, vintage: int, transferable: bool = True, market: str = "CN-CEA") -> Asset:
    """Create the allowance asset of a compliance year (registry only): a national CEA vintage, or with
    ``market="BJ-BEA"`` a Beijing pilot allowance vintage (``BEA-<vintage>``)."""
    _require_registry(actor)
    if not 2000 <= vintage <= 2100:
        raise InvalidInput(gettext("The vintage is a year."), details={"vintage": vintage})
    if market not in ("CN-CEA", "BJ-BEA"):
        raise InvalidInput(gettext("Allowances belong to CN-CEA or BJ-BEA."), details={"market": market})
    code = cea_asset_code(vintage) if market == "CN-CEA" else f"BEA-{vintage}"
    if Asset.objects.filter(code=code).exists():
        raise DuplicateObject(gettext("%(code)s exists already.") % {"code": code}, details={"code": code})
    asset = Asset.objects.create(
        code=code,
        kind=AssetKind.ALLOWANCE,
        name=f"China emission allowance {vintage}" if market == "CN-CEA" else f"Beijing pilot allowance {vintage}",
        vintage=vintage,
        serialised=True,
        transferable=transferable,
        market=Market.objects.filter(code=market).first(),
    )
    audit_record(
        actor=actor,
        action="cea.vintage_create",
        obj=asset,
        payload={"code": code, "vintage": vintage, "market": market},
    )
    return asset


@dataclass(frozen=True, slots=True)
class AllocationRow:
    account: Account
    quantity: int
    # Where the row came from (a CSV line), for refusals: not part of what is asked, nor of a key's request.
    line: int = field(default=0, compare=False)


@service
@idempotent_service("cea_allocate")
def cea_allocate(
    *,
    actor: Actor,
    asset: Asset,
    rows: list[AllocationRow],
    idempotency_key: str | None = None,
    memo: str = "",
) -> Transaction:
    """Allocate allowances of a vintage to compliance entities' accounts, all rows in one transaction."""
    _require_registry(actor)
    if asset.kind != AssetKind.ALLOWANCE:
        raise InvalidInput(
            gettext("%(asset)s is not an allowance.") % {"asset": asset.code}, details={"asset": asset.code}
        )
    if not rows:
        raise InvalidInput(gettext("Nothing to allocate."))
    problems = []
    for row in rows:
        try:
            check_quantity(row.quantity)
            _check_allocation_account(row.account)
        except (InvalidQuantity, InvalidDestination) as exc:
            problems.append(
                {"line": row.line, "account": row.account.number, "error": exc.code, "message": exc.message}
            )
    if problems:
        raise CsvRejected(
            gettext("%(count)s allocation row(s) refused; nothing was allocated.") % {"count": len(problems)},
            details={"errors": problems},
        )
    request = {"asset": asset.code, "rows": [[r.account.number, r.quantity] for r in rows]}
    txn, _ = journal_open(
        kind=TransactionKind.ALLOCATION,
        actor=actor,
        idempotency_key=None,
        request=request,
        memo=memo or f"Allocation of {asset.code}",
        metadata={"rows": len(rows)},
    )
    total = sum(r.quantity for r in rows)
    four_eyes_check(total)
    first, _ = _take_serials(asset, total)
    legs = []
    issuance_account = system_account(AccountKind.ISSUANCE)
    for row in rows:
        legs.append(Leg(asset, issuance_account, row.account, row.quantity, serials=(first, first + row.quantity - 1)))
        first += row.quantity
    posted = ledger_post(txn, legs)
    audit_record(
        actor=actor,
        action="cea.allocate",
        obj=txn,
        payload={
            **request,
            "total": total,
            "serials": [[leg.serials[0], leg.serials[1]] for leg in legs if leg.serials],
            "entry_digest": posted.digest,
        },
    )
    return txn


def _check_allocation_account(account: Account) -> None:
    if account.kind != AccountKind.HOLDING or account.participant is None:
        raise InvalidDestination(
            gettext("%(account)s is not a participant's holding account.") % {"account": account.number}
        )
    if account.participant.kind != ParticipantKind.COMPLIANCE_ENTITY:
        raise InvalidDestination(
            gettext("%(account)s belongs to a %(kind)s, not a compliance entity.")
            % {"account": account.number, "kind": account.participant.get_kind_display().lower()}
        )


def allocation_rows_from_csv(text: str) -> list[AllocationRow]:
    """Parse ``account,quantity`` rows (a header line is allowed); refuse the whole file on any bad row.

    Each bad row is reported with its line number and the reason.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    parsed: list[tuple[int, str, str]] = []
    errors: list[dict[str, object]] = []
    for index, record in enumerate(reader, start=1):
        if not record or all(not cell.strip() for cell in record):
            continue
        if index == 1 and record[0].strip().lower() in {"account", "account_number"}:
            continue
        if len(record) != 2:
            errors.append({"line": index, "error": "malformed_row", "message": "expected 2 columns: account,quantity"})
            continue
        parsed.append((index, record[0].strip(), record[1].strip()))
    accounts = Account.objects.select_related("participant").in_bulk([n for _, n, _ in parsed], field_name="number")
    rows: list[AllocationRow] = []
    seen: dict[str, int] = {}
    for line, number, quantity_text in parsed:
        account = accounts.get(number)
        if account is None:
            errors.append(
                {
                    "line": line,
                    "error": "account_not_found",
                    "message": gettext("no account %(account)s") % {"account": number},
                }
            )
            continue
        if number in seen:
            errors.append(
                {
                    "line": line,
                    "error": "duplicate_account",
                    "message": gettext("%(account)s is on line %(line)s too")
                    % {"account": number, "line": seen[number]},
                }
            )
            continue
        seen[number] = line
        # isascii: isdigit alone takes superscripts and other scripts' digits, which int() refuses.
        whole = quantity_text.isascii() and quantity_text.isdigit()
        if not whole or int(quantity_text) <= 0 or int(quantity_text) > MAX_QUANTITY:
            errors.append(
                {
                    "line": line,
                    "error": "invalid_quantity",
                    "message": gettext("quantity %(quantity)r is not a whole number from 1 to %(max)s")
                    % {"quantity": quantity_text, "max": MAX_QUANTITY},
                }
            )
            continue
        try:
            _check_allocation_account(account)
        except InvalidDestination as exc:
            errors.append({"line": line, "error": exc.code, "message": exc.message})
            continue
        rows.append(AllocationRow(account=account, quantity=int(quantity_text), line=line))
    if errors:
        raise CsvRejected(
            gettext("%(count)s bad row(s); nothing of the file was applied.") % {"count": len(errors)},
            details={"errors": errors},
        )
    if not rows:
        raise CsvRejected(gettext("The file has no allocation rows."), details={"errors": []})
    return rows
