"""The CCER project cycle of the 2023 Measures (温室气体自愿减排交易管理办法 (试行), MEE and SAMR, 2023).

1. ``ccer_application_submit``: a project owner applies with a validation body's report (its SHA-256), a
   methodology from the registry's list, its start date and crediting period. Refused at once: an owner that
   is an ETS-covered entity (a compliance entity, 重点排放单位), a start before the rule's earliest, a
   crediting period outside the rule's bounds, a withdrawn methodology.
2. ``ccer_publicity_open``: the registry publishes it for comment; the window closes
   ``rule.publicity_working_days`` working days later by the working-day calendar
   (``exchange.selectors.calendar.add_working_days``). ``ccer_comment_add`` records comments received in it.
3. ``ccer_application_decide``: after the window, the registry registers the project
   (``exchange.services.issuance.project_register``) or refuses it with a reason.
4. ``reduction_claim_submit`` / ``ccer_publicity_open`` / ``reduction_claim_decide``: reductions claimed
   with a verifier's report are published the same way, then issued (``ccer_issue``) or refused. A claim
   above the four-eyes threshold is filed for a second registry officer instead (an ``ApprovalRequest`` of
   operation ``ccer.claim_issue``): ``exchange.services.approvals`` issues it when that officer approves
   (``reduction_claim_issue_approved``) and records the refusal when they reject (``reduction_claim_rejected``).

``check_ccer_offset`` is the surrender path's check for old CCER (filed before 14 March 2017): refused after
its offset cut-off (31 December 2024). The numbers are data: ``CcerRule`` versions with effective dates
(``ccer_rule_add``), and the methodology list (``methodology_add``). See docs/registry.md.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

from django.db import IntegrityError
from django.utils.translation import gettext_lazy

from accounts.actors import Actor
from accounts.models import Participant, ParticipantKind
from core import clock
from core.errors import NotFound
from core.limits import check_quantity
from exchange.errors import DuplicateObject, InvalidState, RuleViolation
from exchange.locks import lock_row
from exchange.models import (
    ApprovalOperation,
    ApprovalRequest,
    Asset,
    CcerRule,
    CycleStatus,
    Methodology,
    Project,
    ProjectApplication,
    ProjectStatus,
    ProjectType,
    PublicComment,
    ReductionClaim,
)
from exchange.selectors.calendar import add_working_days
from exchange.selectors.ccer import add_years, ccer_rule_on
from exchange.services.approval_summaries import reduction_claim_summary
from exchange.services.audit import audit_record, mark_unchanged, service
from exchange.services.four_eyes import ApprovalRequired, approval_file, four_eyes_check
from exchange.services.freezes import ValueRuleBroken, check_sha256
from exchange.services.idempotency import idempotent_service
from exchange.services.issuance import ccer_issue, project_register


def _(text: str) -> str:
    """``text`` marked for translation, translated when shown (a lazy string typed as the ``str`` it becomes)."""
    return cast(str, gettext_lazy(text))


# --- refusals -------------------------------------------------------------------------------------------
class CcerOwnerEtsCovered(RuleViolation):
    code = "ccer_owner_ets_covered"
    default_message = _(
        "A project of an entity covered by the national ETS can't be registered as CCER (2023 Measures)."
    )


class CcerIneligible(RuleViolation):
    code = "ccer_ineligible"
    default_message = _("The project or claim does not meet the CCER rule in effect.")


class MethodologyNotFound(NotFound):
    code = "methodology_not_found"
    default_message = _("No such methodology on the registry's list, or it is withdrawn.")


class ApplicationNotFound(NotFound):
    code = "ccer_application_not_found"
    default_message = _("No such CCER project application.")


class ClaimNotFound(NotFound):
    code = "reduction_claim_not_found"
    default_message = _("No such reduction claim.")


class CycleStepRefused(InvalidState):
    code = "ccer_cycle_step_refused"
    default_message = _("The application or claim is not at the step this needs.")


class PublicityNotOver(InvalidState):
    code = "publicity_not_over"
    default_message = _("The publicity window is still open; decide after its last working day.")


class ClaimAwaitsApproval(InvalidState):
    code = "reduction_claim_awaits_approval"
    default_message = _(
        "The claim waits for a second registry officer's decision on its approval request: approve or reject "
        "that request."
    )


class OldCcerExpired(RuleViolation):
    code = "old_ccer_expired"
    default_message = _("Old CCER (filed before 14 March 2017) no longer offsets after its cut-off date.")


def _require_registry(actor: Actor) -> None:
    actor.require_can_act()
    actor.require_kind(ParticipantKind.REGISTRY)


def _require_owner_or_registry(actor: Actor, owner: Participant) -> None:
    actor.require_can_act()
    if actor.is_system or actor.is_kind(ParticipantKind.REGISTRY) or actor.owns(owner.pk):
        return
    raise ApplicationNotFound(_("You act for another participant."), details={"owner": owner.pk})


# --- the rule and the methodology list (registry data) -----------------------------------------------
RULE_2023: dict[str, Any] = {
    "effective_from": date(2023, 10, 19),
    "min_crediting_years": 7,
    "max_crediting_years": 10,
    "forestry_min_crediting_years": 20,
    "forestry_max_crediting_years": 40,
    "earliest_start_date": date(2012, 11, 8),
    "earliest_reduction_date": date(2020, 9, 22),
    "publicity_working_days": 20,
    "old_ccer_filed_before": date(2017, 3, 14),
    "old_ccer_offset_cutoff": date(2024, 12, 31),
    "source": "温室气体自愿减排交易管理办法 (试行) (MEE and SAMR Order 31, 2023), ch. 2 and 3; "
    "MEE notice on the national ETS's use of CCER, 2024 (old CCER offsets until 31 December 2024)",
}

# The first methodologies MEE published under the 2023 Measures (October 2023).
METHODOLOGIES_2023: list[tuple[str, str, str, str]] = [
    ("CCER-14-001-V01", "Afforestation carbon sink", "造林碳汇", ProjectType.FORESTRY),
    ("CCER-14-002-V01", "Mangrove vegetation restoration", "红树林营造", ProjectType.FORESTRY),
    ("CCER-01-001-V01", "Grid-connected solar thermal power", "并网光热发电", ProjectType.RENEWABLE),
    ("CCER-01-002-V01", "Grid-connected offshore wind power", "并网海上风力发电", ProjectType.RENEWABLE),
]


@service
def ccer_rule_add(*, actor: Actor, **fields: Any) -> CcerRule:
    """Enter a new version of the CCER rule, effective from its date (registry). Versions are never edited."""
    _require_registry(actor)
    effective_from = fields.get("effective_from")
    if not isinstance(effective_from, date):
        raise ValueRuleBroken(_("A rule version has its effective date."))
    if CcerRule.objects.filter(effective_from=effective_from).exists():
        raise DuplicateObject(details={"effective_from": effective_from.isoformat()})
    names = {f.name for f in CcerRule._meta.fields} - {"id", "created_at"}
    unknown = set(fields) - names
    if unknown or set(fields) != names:
        raise ValueRuleBroken(
            _("A rule version states every field."),
            details={"missing": sorted(names - set(fields)), "unknown": sorted(unknown)},
        )
    if fields["max_crediting_years"] < fields["min_crediting_years"] or (
        fields["forestry_max_crediting_years"] < fields["forestry_min_crediting_years"]
    ):
        raise ValueRuleBroken(_("A crediting period's longest bound is below its shortest."))
    rule = CcerRule.objects.create(**fields, created_at=clock.now())
    audit_record(actor=actor, action="ccer.rule_add", obj=rule, payload=dict(fields))
    return rule


@service
def methodology_add(
    *, actor: Actor, code: str, name: str, project_type: str, name_zh: str = "", active: bool = True
) -> Methodology:
    """Put a methodology on the registry's list (registry)."""
    _require_registry(actor)
    code = code.strip().upper()
    if project_type not in ProjectType.values:
        raise ValueRuleBroken(details={"project_type": project_type})
    if not code.startswith("CCER-") or len(code) < 12:
        raise ValueRuleBroken(_("A methodology code reads like CCER-14-001-V01."), details={"code": code})
    if Methodology.objects.filter(code=code).exists():
        raise DuplicateObject(details={"code": code})
    methodology = Methodology.objects.create(
        code=code,
        name=name[:200],
        name_zh=name_zh[:200],
        project_type=project_type,
        active=active,
        created_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="ccer.methodology_add",
        obj=methodology,
        payload={"code": code, "name": name, "name_zh": name_zh, "project_type": project_type, "active": active},
    )
    return methodology


@service
def methodology_set_active(*, actor: Actor, methodology: Methodology, active: bool) -> Methodology:
    """Withdraw a methodology from new applications, or put it back (registry)."""
    _require_registry(actor)
    if methodology.active == active:
        mark_unchanged()
        return methodology
    Methodology.objects.filter(pk=methodology.pk).update(active=active)
    methodology.active = active
    audit_record(actor=actor, action="ccer.methodology_active", obj=methodology, payload={"active": active})
    return methodology


@service
def ccer_reference_seed(*, actor: Actor) -> int:
    """Enter the 2023 Measures' rule and the first four methodologies where missing; return how many rows."""
    _require_registry(actor)
    made = 0
    if not CcerRule.objects.filter(effective_from=RULE_2023["effective_from"]).exists():
        ccer_rule_add(actor=actor, **RULE_2023)
        made += 1
    for code, name, name_zh, project_type in METHODOLOGIES_2023:
        if not Methodology.objects.filter(code=code).exists():
            methodology_add(actor=actor, code=code, name=name, name_zh=name_zh, project_type=project_type)
            made += 1
    if not made:
        mark_unchanged()
    return made


# --- eligibility -----------------------------------------------------------------------------------------
def check_crediting_period(rule: CcerRule, project_type: str, start: date, end: date) -> None:
    """The crediting period's length within the rule's bounds for the project type (forestry has its own)."""
    forestry = project_type == ProjectType.FORESTRY
    shortest = rule.forestry_min_crediting_years if forestry else rule.min_crediting_years
    longest = rule.forestry_max_crediting_years if forestry else rule.max_crediting_years
    earliest_end = add_years(start, shortest) - timedelta(days=1)
    latest_end = add_years(start, longest) - timedelta(days=1)
    if not earliest_end <= end <= latest_end:
        raise CcerIneligible(
            _("The crediting period must last from %(min)s to %(max)s years.") % {"min": shortest, "max": longest},
            details={
                "crediting_start": start.isoformat(),
                "crediting_end": end.isoformat(),
                "min_years": shortest,
                "max_years": longest,
                "rule": rule.effective_from.isoformat(),
            },
        )


def check_owner_not_covered(owner: Participant) -> None:
    """A key emitting unit covered by the national ETS (a compliance entity here) may not register CCER."""
    if owner.kind == ParticipantKind.COMPLIANCE_ENTITY:
        raise CcerOwnerEtsCovered(details={"owner": owner.pk, "owner_kind": owner.kind})


def check_ccer_offset(asset: Asset, project: Project | None, on: date) -> None:
    """Old CCER (filed before 14 March 2017) offsets only until its cut-off: refuse it after that day.

    Called by the surrender path (``exchange.services.compliance.surrender_create``) for each CCER item.
    """
    if project is None or not project.old_ccer or project.offset_cutoff is None:
        return
    if on > project.offset_cutoff:
        raise OldCcerExpired(
            details={
                "asset": asset.code,
                "project": project.code,
                "filed_on": project.filed_on.isoformat() if project.filed_on else None,
                "offset_cutoff": project.offset_cutoff.isoformat(),
                "on": on.isoformat(),
            }
        )


# --- applications ------------------------------------------------------------------------------------------
@service
@idempotent_service("ccer_application_submit")
def ccer_application_submit(
    *,
    actor: Actor,
    owner: Participant,
    code: str,
    name: str,
    project_type: str,
    methodology: str,
    location: str,
    start_date: date,
    crediting_start: date,
    crediting_end: date,
    validation_body: str,
    validation_report_sha256: str,
    idempotency_key: str | None = None,
) -> ProjectApplication:
    """Apply to register a CCER project (its owner, or the registry for it)."""
    _require_owner_or_registry(actor, owner)
    code = code.strip().upper()
    if not code or not name.strip() or not location.strip() or not validation_body.strip():
        raise ValueRuleBroken(_("An application gives the project's code, name, location and validation body."))
    if project_type not in ProjectType.values:
        raise ValueRuleBroken(details={"project_type": project_type})
    report = check_sha256(validation_report_sha256, "validation_report_sha256")
    if owner.kind not in (ParticipantKind.PROJECT_OWNER, ParticipantKind.COMPLIANCE_ENTITY):
        raise CcerIneligible(_("A project's owner is a project owner."), details={"owner_kind": owner.kind})
    check_owner_not_covered(owner)
    found = Methodology.objects.filter(code=methodology.strip().upper(), active=True).first()
    if found is None:
        raise MethodologyNotFound(details={"methodology": methodology})
    if found.project_type != project_type:
        raise CcerIneligible(
            _("The methodology is for another type of project."),
            details={"methodology": found.code, "methodology_type": found.project_type, "project_type": project_type},
        )
    if crediting_end < crediting_start:
        raise ValueRuleBroken(_("The crediting period ends before it starts."))
    rule = ccer_rule_on()
    if start_date < rule.earliest_start_date:
        raise CcerIneligible(
            _("The project started before the earliest start the rule allows."),
            details={"start_date": start_date.isoformat(), "earliest": rule.earliest_start_date.isoformat()},
        )
    if crediting_start < rule.earliest_reduction_date:
        raise CcerIneligible(
            _("The crediting period starts before the earliest reductions the rule allows."),
            details={
                "crediting_start": crediting_start.isoformat(),
                "earliest": rule.earliest_reduction_date.isoformat(),
            },
        )
    check_crediting_period(rule, project_type, crediting_start, crediting_end)
    if (
        Project.objects.filter(code=code).exists()
        or ProjectApplication.objects.filter(code=code).exclude(status=CycleStatus.REFUSED).exists()
    ):
        raise DuplicateObject(_("A project or open application has this code."), details={"code": code})
    try:
        application = ProjectApplication.objects.create(
            code=code,
            name=name.strip()[:200],
            project_type=project_type,
            methodology=found,
            location=location.strip()[:200],
            owner=owner,
            start_date=start_date,
            crediting_start=crediting_start,
            crediting_end=crediting_end,
            validation_body=validation_body.strip()[:200],
            validation_report_sha256=report,
            rule=rule,
            submitted_by_id=actor.member_user_id,
            submitted_at=clock.now(),
        )
    except IntegrityError:  # a twin application with this code committed first
        raise DuplicateObject(_("A project or open application has this code."), details={"code": code}) from None
    audit_record(
        actor=actor,
        action="ccer.application_submit",
        obj=application,
        payload={
            "code": code,
            "name": application.name,
            "project_type": project_type,
            "methodology": found.code,
            "location": application.location,
            "owner": owner.pk,
            "start_date": start_date,
            "crediting_start": crediting_start,
            "crediting_end": crediting_end,
            "validation_body": application.validation_body,
            "validation_report_sha256": report,
            "rule": rule.effective_from,
        },
    )
    return application


def _lock_application(application: ProjectApplication) -> ProjectApplication:
    locked = lock_row(
        ProjectApplication.objects.select_related("owner", "methodology", "rule").filter(pk=application.pk)
    )
    if locked is None:
        raise ApplicationNotFound(details={"application": application.pk})
    return locked


def _lock_claim(claim: ReductionClaim) -> ReductionClaim:
    locked = lock_row(ReductionClaim.objects.select_related("project").filter(pk=claim.pk))
    if locked is None:
        raise ClaimNotFound(details={"claim": claim.pk})
    return locked


def _label(target: ProjectApplication | ReductionClaim) -> str:
    return "application" if isinstance(target, ProjectApplication) else "claim"


@service
def ccer_publicity_open(
    *, actor: Actor, target: ProjectApplication | ReductionClaim, today: date | None = None
) -> ProjectApplication | ReductionClaim:
    """Publish an application or claim for comment (registry): the window's last day is the rule's number of
    working days after today, by the working-day calendar (today itself not counted)."""
    _require_registry(actor)
    locked = _lock_application(target) if isinstance(target, ProjectApplication) else _lock_claim(target)
    if locked.status == CycleStatus.PUBLICITY:
        mark_unchanged()
        return locked
    if locked.status != CycleStatus.APPLIED:
        raise CycleStepRefused(details={_label(locked): locked.pk, "status": locked.status})
    today = today or clock.trading_day()
    rule = locked.rule if isinstance(locked, ProjectApplication) else ccer_rule_on(today)
    locked.publicity_start = today
    locked.publicity_end = add_working_days(today, rule.publicity_working_days)
    locked.status = CycleStatus.PUBLICITY
    locked.save(update_fields=["publicity_start", "publicity_end", "status"])
    audit_record(
        actor=actor,
        action=f"ccer.{_label(locked)}_publicity",
        obj=locked,
        payload={
            "publicity_start": locked.publicity_start,
            "publicity_end": locked.publicity_end,
            "working_days": rule.publicity_working_days,
        },
    )
    return locked


@service
def ccer_comment_add(
    *,
    actor: Actor,
    target: ProjectApplication | ReductionClaim,
    text: str,
    author: str = "",
    received_on: date | None = None,
) -> PublicComment:
    """Record a comment received during the publicity window: any acting member for itself (the author is its
    participant), or the registry for a comment received otherwise (naming its author)."""
    actor.require_can_act()
    text = (text or "").strip()
    if not text:
        raise ValueRuleBroken(_("A comment has its text."))
    received_on = received_on or clock.trading_day()
    if actor.is_kind(ParticipantKind.REGISTRY) and author.strip():
        author = author.strip()
    else:
        if actor.participant_id is None:
            raise ValueRuleBroken(_("A comment recorded by the system names its author."))
        author = Participant.objects.get(pk=actor.participant_id).name
        received_on = clock.trading_day()
    locked = _lock_application(target) if isinstance(target, ProjectApplication) else _lock_claim(target)
    if locked.status != CycleStatus.PUBLICITY or not (
        locked.publicity_start
        and locked.publicity_end
        and locked.publicity_start <= received_on <= locked.publicity_end
    ):
        raise CycleStepRefused(
            _("Comments are taken while the publicity window is open."),
            details={_label(locked): locked.pk, "status": locked.status, "received_on": received_on.isoformat()},
        )
    comment = PublicComment.objects.create(
        application=locked if isinstance(locked, ProjectApplication) else None,
        claim=locked if isinstance(locked, ReductionClaim) else None,
        author=author[:200],
        text=text[:5000],
        received_on=received_on,
        recorded_by_id=actor.member_user_id,
        recorded_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="ccer.comment",
        obj=comment,
        payload={_label(locked): locked.pk, "author": comment.author, "text": comment.text, "received_on": received_on},
    )
    return comment


def _decidable(locked: ProjectApplication | ReductionClaim, today: date) -> None:
    if locked.status != CycleStatus.PUBLICITY:
        raise CycleStepRefused(details={_label(locked): locked.pk, "status": locked.status})
    assert locked.publicity_end is not None
    if today <= locked.publicity_end:
        raise PublicityNotOver(details={_label(locked): locked.pk, "publicity_end": locked.publicity_end.isoformat()})


@service
def ccer_application_decide(
    *, actor: Actor, application: ProjectApplication, register: bool, reason: str = "", today: date | None = None
) -> ProjectApplication:
    """After the publicity window, register the project or refuse it with a reason (registry)."""
    _require_registry(actor)
    locked = _lock_application(application)
    today = today or clock.trading_day()
    if not register and not reason.strip():
        raise ValueRuleBroken(_("A refusal gives its reason."))
    _decidable(locked, today)
    if register:
        locked.project = project_register(
            actor=actor,
            code=locked.code,
            name=locked.name,
            project_type=locked.project_type,
            methodology=locked.methodology.code,
            location=locked.location,
            owner=locked.owner,
            crediting_start=locked.crediting_start,
            crediting_end=locked.crediting_end,
            start_date=locked.start_date,
            methodology_ref=locked.methodology,
            validation_body=locked.validation_body,
            validation_report_sha256=locked.validation_report_sha256,
            filed_on=today,
        )
    locked.status = CycleStatus.REGISTERED if register else CycleStatus.REFUSED
    locked.decided_by_id, locked.decided_at, locked.reason = actor.user_id, clock.now(), reason.strip()[:500]
    locked.save(update_fields=["status", "decided_by", "decided_at", "reason", "project"])
    audit_record(
        actor=actor,
        action="ccer.application_decide",
        obj=locked,
        payload={
            "status": locked.status,
            "reason": locked.reason,
            "project": locked.project.code if locked.project else None,
            "comments": locked.comments.count(),
        },
    )
    return locked


# --- reduction claims --------------------------------------------------------------------------------------
@service
@idempotent_service("reduction_claim_submit")
def reduction_claim_submit(
    *,
    actor: Actor,
    project: Project,
    vintage: int,
    monitoring_start: date,
    monitoring_end: date,
    quantity: int,
    verification_body: str,
    verification_report_sha256: str,
    idempotency_key: str | None = None,
) -> ReductionClaim:
    """Claim a registered project's verified reductions for issuance (its owner, or the registry for it)."""
    _require_owner_or_registry(actor, project.owner)
    check_quantity(quantity)
    report = check_sha256(verification_report_sha256, "verification_report_sha256")
    if not verification_body.strip():
        raise ValueRuleBroken(_("A claim names its verification body."))
    if project.status != ProjectStatus.REGISTERED:
        raise CycleStepRefused(details={"project": project.code, "status": project.status})
    if monitoring_end < monitoring_start:
        raise ValueRuleBroken(_("The monitoring period ends before it starts."))
    if not monitoring_start.year <= vintage <= monitoring_end.year:
        raise ValueRuleBroken(_("The vintage is a year of the monitoring period."), details={"vintage": vintage})
    if not (project.crediting_start <= monitoring_start and monitoring_end <= project.crediting_end):
        raise CcerIneligible(_("The monitoring period lies outside the project's crediting period."))
    rule = ccer_rule_on()
    if monitoring_start < rule.earliest_reduction_date:
        raise CcerIneligible(
            _("Reductions before the rule's earliest date can't be claimed."),
            details={
                "monitoring_start": monitoring_start.isoformat(),
                "earliest": rule.earliest_reduction_date.isoformat(),
            },
        )
    overlapping = ReductionClaim.objects.filter(
        project=project, monitoring_start__lte=monitoring_end, monitoring_end__gte=monitoring_start
    ).exclude(status=CycleStatus.REFUSED)
    if overlapping.exists():
        raise DuplicateObject(
            _("Reductions of this period are claimed already."),
            details={"claim": overlapping.first().pk},  # type: ignore[union-attr]
        )
    claim = ReductionClaim.objects.create(
        project=project,
        vintage=vintage,
        monitoring_start=monitoring_start,
        monitoring_end=monitoring_end,
        quantity=quantity,
        verification_body=verification_body.strip()[:200],
        verification_report_sha256=report,
        submitted_by_id=actor.member_user_id,
        submitted_at=clock.now(),
    )
    audit_record(
        actor=actor,
        action="ccer.claim_submit",
        obj=claim,
        payload={
            "project": project.code,
            "vintage": vintage,
            "monitoring_start": monitoring_start,
            "monitoring_end": monitoring_end,
            "quantity": quantity,
            "verification_body": claim.verification_body,
            "verification_report_sha256": report,
        },
    )
    return claim


@service
def reduction_claim_decide(
    *, actor: Actor, claim: ReductionClaim, issue: bool, reason: str = "", today: date | None = None
) -> ReductionClaim:
    """After the publicity window, issue the claimed reductions (``ccer_issue``) or refuse them (registry).

    A claim above the four-eyes threshold is not issued by one officer: the decision to issue files it for a
    second registry officer (an approval request, ``claim.approval``) and the claim stays in publicity until
    that officer approves (``reduction_claim_issue_approved``) or rejects (``reduction_claim_rejected``) it.
    Asking again to issue a claim that waits is unchanged; refusing it is done by rejecting the request.
    """
    _require_registry(actor)
    locked = _lock_claim(claim)
    today = today or clock.trading_day()
    if not issue and not reason.strip():
        raise ValueRuleBroken(_("A refusal gives its reason."))
    if locked.approval_id is not None and locked.status == CycleStatus.PUBLICITY:
        if issue:
            mark_unchanged()
            return locked
        raise ClaimAwaitsApproval(details={"claim": locked.pk, "approval": locked.approval_id})
    _decidable(locked, today)
    if issue:
        try:
            four_eyes_check(locked.quantity)
        except ApprovalRequired:
            return _file_for_approval(actor, locked)
    return _decide(actor, locked, issue=issue, reason=reason)


def _file_for_approval(actor: Actor, locked: ReductionClaim) -> ReductionClaim:
    summary = reduction_claim_summary(
        claim=locked.pk, quantity=locked.quantity, project=locked.project.code, vintage=locked.vintage
    )
    approval = approval_file(
        actor=actor,
        operation=ApprovalOperation.CCER_CLAIM_ISSUE,
        params={"claim": locked.pk},
        quantity=locked.quantity,
        summary=summary,
    )
    locked.approval = approval
    locked.save(update_fields=["approval"])
    audit_record(
        actor=actor,
        action="ccer.claim_approval_request",
        obj=locked,
        payload={"approval": approval.pk, "quantity": locked.quantity, "project": locked.project.code},
    )
    return locked


def _decide(actor: Actor, locked: ReductionClaim, *, issue: bool, reason: str) -> ReductionClaim:
    if issue:
        locked.issuance = ccer_issue(
            actor=actor,
            project=locked.project,
            vintage=locked.vintage,
            monitoring_start=locked.monitoring_start,
            monitoring_end=locked.monitoring_end,
            quantity=locked.quantity,
            external_reference=f"CCER-CLAIM-{locked.pk}",
        )
    locked.status = CycleStatus.ISSUED if issue else CycleStatus.REFUSED
    locked.decided_by_id, locked.decided_at, locked.reason = actor.user_id, clock.now(), reason.strip()[:500]
    locked.save(update_fields=["status", "decided_by", "decided_at", "reason", "issuance"])
    audit_record(
        actor=actor,
        action="ccer.claim_decide",
        obj=locked,
        payload={
            "status": locked.status,
            "reason": locked.reason,
            "issuance": locked.issuance.external_reference if locked.issuance else None,
            "comments": locked.comments.count(),
            "approval": locked.approval_id,
        },
    )
    return locked


def _for_approval(approval: ApprovalRequest) -> ReductionClaim:
    found = ReductionClaim.objects.filter(pk=approval.params.get("claim")).first()
    if found is None:
        raise ClaimNotFound(details={"approval": approval.pk})
    locked = _lock_claim(found)
    if locked.status != CycleStatus.PUBLICITY or locked.approval_id != approval.pk:
        raise CycleStepRefused(details={"claim": locked.pk, "status": locked.status, "approval": approval.pk})
    return locked


def reduction_claim_issue_approved(*, actor: Actor, approval: ApprovalRequest) -> ReductionClaim:
    """Issue a claim as the second officer approves its request (called by ``approval_approve``, in its
    transaction and under its four-eyes cover, which lets ``ccer_issue`` issue the approved quantity)."""
    _require_registry(actor)
    return _decide(actor, _for_approval(approval), issue=True, reason="")


def reduction_claim_rejected(*, actor: Actor, approval: ApprovalRequest, reason: str) -> ReductionClaim:
    """The second officer rejected the claim's request (called by ``approval_reject``): the claim is refused
    with that reason, and nothing is issued."""
    _require_registry(actor)
    return _decide(actor, _for_approval(approval), issue=False, reason=reason)


__all__ = [
    "METHODOLOGIES_2023",
    "RULE_2023",
    "ApplicationNotFound",
    "CcerIneligible",
    "CcerOwnerEtsCovered",
    "ClaimAwaitsApproval",
    "ClaimNotFound",
    "CycleStepRefused",
    "MethodologyNotFound",
    "OldCcerExpired",
    "PublicityNotOver",
    "ccer_application_decide",
    "ccer_application_submit",
    "ccer_comment_add",
    "ccer_publicity_open",
    "ccer_reference_seed",
    "ccer_rule_add",
    "check_ccer_offset",
    "check_crediting_period",
    "check_owner_not_covered",
    "methodology_add",
    "methodology_set_active",
    "reduction_claim_decide",
    "reduction_claim_issue_approved",
    "reduction_claim_rejected",
    "reduction_claim_submit",
]
