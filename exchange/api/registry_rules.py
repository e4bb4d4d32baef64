"""China's registry rules on the API: judicial freezes and seizures, non-trade transfers, the CCER project
cycle (applications, publicity and comments, registration; reduction claims and issuance).

Thin views: each parses its input, calls one service (``exchange.services.freezes``, ``.nontrade``,
``.ccer``) and renders the result. See docs/registry.md for the rules and their sources.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Participant, ParticipantKind
from accounts.permissions import KindRequired
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.fields import AssetField, QuantityField, SerialRangeField
from exchange.api.idempotency import idempotent_request
from exchange.errors import ProjectNotFound
from exchange.models import (
    CcerRule,
    JudicialFreeze,
    LegalBasis,
    Methodology,
    NonTradeTransfer,
    Project,
    ProjectApplication,
    ProjectType,
    PublicComment,
    ReductionClaim,
)
from exchange.selectors.accounts import holding_account
from exchange.services.ccer import (
    ApplicationNotFound,
    ClaimNotFound,
    ccer_application_decide,
    ccer_application_submit,
    ccer_comment_add,
    ccer_publicity_open,
    reduction_claim_decide,
    reduction_claim_submit,
)
from exchange.services.freezes import (
    FreezeNotFound,
    judicial_freeze_create,
    judicial_freeze_release,
    judicial_freeze_seize,
)
from exchange.services.nontrade import (
    NonTradeTransferNotFound,
    non_trade_transfer_apply,
    non_trade_transfer_reject,
    non_trade_transfer_review,
)

RegistryWrites = KindRequired(ParticipantKind.REGISTRY)
RegistryAndAuditors = KindRequired(ParticipantKind.REGISTRY, ParticipantKind.AUDITOR, for_reads=True)


def sha256_field() -> serializers.RegexField:
    """A document's SHA-256 as 64 hexadecimal characters (the schema states the pattern)."""
    return serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text=_("SHA-256 of the document, hex."))


# --- judicial freezes --------------------------------------------------------------------------------------
class FreezeOut(serializers.ModelSerializer):
    account = serializers.CharField(source="account.number")
    asset = serializers.CharField(source="asset.code")
    seized_to = serializers.CharField(source="seized_to.number", allow_null=True, default=None)
    transaction = serializers.IntegerField(source="transaction_id", allow_null=True)

    class Meta:
        model = JudicialFreeze
        fields = [
            "id",
            "account",
            "asset",
            "quantity",
            "first_serial",
            "last_serial",
            "court",
            "document_number",
            "document_sha256",
            "status",
            "created_at",
            "ended_at",
            "end_document_number",
            "end_document_sha256",
            "seized_to",
            "transaction",
        ]


class FreezeIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    court = serializers.CharField(max_length=200)
    document_number = serializers.CharField(max_length=100)
    document_sha256 = sha256_field()
    quantity = QuantityField(required=False, help_text=_("Freeze the lowest available units, this many."))
    serials = SerialRangeField(required=False, help_text=_("Freeze exactly this range [first, last]."))


class FreezeOrderIn(serializers.Serializer):
    document_number = serializers.CharField(max_length=100)
    document_sha256 = sha256_field()


class SeizureIn(FreezeOrderIn):
    destination = serializers.CharField(max_length=32, help_text=_("The holding account the seizure order names."))


def _freeze(pk: int) -> JudicialFreeze:
    found = JudicialFreeze.objects.select_related("account", "asset", "seized_to").filter(pk=pk).first()
    if found is None:
        raise FreezeNotFound(details={"freeze": pk})
    return found


class FreezeListApi(ActorMixin, generics.ListAPIView):
    """Judicial freezes, newest first (registry and auditors); the registry enters a court's freeze order."""

    serializer_class = FreezeOut
    permission_classes = [RegistryAndAuditors]

    def get_queryset(self) -> QuerySet[JudicialFreeze]:
        return JudicialFreeze.objects.select_related("account", "asset", "seized_to").order_by("-id")

    @idempotent_request
    @extend_schema(request=FreezeIn, responses={201: FreezeOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        self.actor.require_kind(ParticipantKind.REGISTRY, allow_system=False)
        data = FreezeIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        freeze = judicial_freeze_create(
            actor=self.actor,
            account=holding_account(v["account"]),
            asset=v["asset"],
            court=v["court"],
            document_number=v["document_number"],
            document_sha256=v["document_sha256"],
            quantity=v.get("quantity"),
            serials=v.get("serials"),
        )
        return Response(FreezeOut(_freeze(freeze.pk)).data, status=status.HTTP_201_CREATED)


class FreezeReleaseApi(ActorMixin, APIView):
    """Unfreeze on the court's release order: the units are available again."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=FreezeOrderIn, responses=FreezeOut)
    def post(self, request: Request, pk: int) -> Response:
        data = FreezeOrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        released = judicial_freeze_release(actor=self.actor, freeze=_freeze(pk), **data.validated_data)
        return Response(FreezeOut(_freeze(released.pk)).data)


class FreezeSeizeApi(ActorMixin, APIView):
    """Seize the frozen units (扣划): they move to the account the court's order names."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=SeizureIn, responses=FreezeOut)
    def post(self, request: Request, pk: int) -> Response:
        data = SeizureIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        seized = judicial_freeze_seize(
            actor=self.actor,
            freeze=_freeze(pk),
            destination=holding_account(v["destination"]),
            document_number=v["document_number"],
            document_sha256=v["document_sha256"],
        )
        return Response(FreezeOut(_freeze(seized.pk)).data)


# --- non-trade transfers -----------------------------------------------------------------------------------
class NonTradeOut(serializers.ModelSerializer):
    source = serializers.CharField(source="source.number")  # type: ignore[assignment]  # not Field.source
    destination = serializers.CharField(source="destination.number")
    asset = serializers.CharField(source="asset.code")
    approval = serializers.IntegerField(source="approval_id", allow_null=True)
    transaction = serializers.IntegerField(source="transaction_id", allow_null=True)

    class Meta:
        model = NonTradeTransfer
        fields = [
            "id",
            "source",
            "destination",
            "asset",
            "quantity",
            "legal_basis",
            "legal_basis_text",
            "document_sha256",
            "memo",
            "status",
            "applied_at",
            "approval",
            "decided_at",
            "reason",
            "transaction",
        ]


class NonTradeIn(serializers.Serializer):
    source = serializers.CharField(  # type: ignore[assignment]  # not Field.source
        max_length=32, help_text=_("The holding account the units leave (yours, or any for the registry).")
    )
    destination = serializers.CharField(max_length=32)
    asset = AssetField()
    quantity = QuantityField()
    serials = SerialRangeField(required=False)
    legal_basis = serializers.ChoiceField(choices=LegalBasis.choices)
    legal_basis_text = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    document_sha256 = sha256_field()
    memo = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class NonTradeRejectIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class NoteIn(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


def _non_trade_queryset() -> QuerySet[NonTradeTransfer]:
    return NonTradeTransfer.objects.select_related("source", "destination", "asset")


def _non_trade(pk: int) -> NonTradeTransfer:
    found = _non_trade_queryset().filter(pk=pk).first()
    if found is None:
        raise NonTradeTransferNotFound(details={"non_trade_transfer": pk})
    return found


class NonTradeListApi(ActorMixin, generics.ListAPIView):
    """Your non-trade transfers (overseers: all); apply for one (the holder, or the registry for a court)."""

    serializer_class = NonTradeOut

    def get_queryset(self) -> QuerySet[NonTradeTransfer]:
        if getattr(self, "swagger_fake_view", False):
            return NonTradeTransfer.objects.none()
        queryset = _non_trade_queryset().order_by("-id")
        if self.actor.sees_everything:
            return queryset
        return queryset.filter(participant_id=self.actor.member_participant_id)

    @idempotent_request
    @extend_schema(request=NonTradeIn, responses={201: NonTradeOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        data = NonTradeIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        transfer = non_trade_transfer_apply(
            actor=self.actor,
            source=holding_account(v["source"]),
            destination=holding_account(v["destination"]),
            asset=v["asset"],
            quantity=v["quantity"],
            serials=v.get("serials"),
            legal_basis=v["legal_basis"],
            legal_basis_text=v["legal_basis_text"],
            document_sha256=v["document_sha256"],
            memo=v["memo"],
        )
        return Response(NonTradeOut(_non_trade(transfer.pk)).data, status=status.HTTP_201_CREATED)


class NonTradeReviewApi(ActorMixin, APIView):
    """A first registry officer reviews the application and files it for a second officer's approval
    (``POST /api/v1/approvals/{id}/approve`` or ``/reject``)."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=NoteIn, responses=NonTradeOut)
    def post(self, request: Request, pk: int) -> Response:
        data = NoteIn(data=request.data)
        data.is_valid(raise_exception=True)
        reviewed = non_trade_transfer_review(
            actor=self.actor, transfer=_non_trade(pk), note=data.validated_data["note"]
        )
        return Response(NonTradeOut(_non_trade(reviewed.pk)).data)


class NonTradeRejectApi(ActorMixin, APIView):
    """A registry officer refuses the application before review; the held units are available again."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=NonTradeRejectIn, responses=NonTradeOut)
    def post(self, request: Request, pk: int) -> Response:
        data = NonTradeRejectIn(data=request.data)
        data.is_valid(raise_exception=True)
        rejected = non_trade_transfer_reject(
            actor=self.actor, transfer=_non_trade(pk), reason=data.validated_data["reason"]
        )
        return Response(NonTradeOut(_non_trade(rejected.pk)).data)


# --- the CCER cycle ----------------------------------------------------------------------------------------
class MethodologyOut(serializers.ModelSerializer):
    class Meta:
        model = Methodology
        fields = ["code", "name", "name_zh", "project_type", "active"]


class CcerRuleOut(serializers.ModelSerializer):
    class Meta:
        model = CcerRule
        exclude = ["id", "created_at"]


class MethodologyListApi(ActorMixin, generics.ListAPIView):
    """The registry's list of CCER methodologies."""

    serializer_class = MethodologyOut
    queryset = Methodology.objects.order_by("code")


class CcerRuleListApi(ActorMixin, generics.ListAPIView):
    """The CCER rule's versions, newest first, each from its effective date."""

    serializer_class = CcerRuleOut
    queryset = CcerRule.objects.order_by("-effective_from")


class CommentOut(serializers.ModelSerializer):
    class Meta:
        model = PublicComment
        fields = ["id", "author", "text", "received_on"]


class ApplicationOut(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.name")
    methodology = serializers.CharField(source="methodology.code")
    project = serializers.CharField(source="project.code", allow_null=True, default=None)
    comments = CommentOut(many=True, read_only=True)

    class Meta:
        model = ProjectApplication
        fields = [
            "id",
            "code",
            "name",
            "project_type",
            "methodology",
            "location",
            "owner",
            "start_date",
            "crediting_start",
            "crediting_end",
            "validation_body",
            "validation_report_sha256",
            "status",
            "publicity_start",
            "publicity_end",
            "decided_at",
            "reason",
            "project",
            "comments",
        ]


class ApplicationIn(serializers.Serializer):
    owner = serializers.IntegerField(required=False, help_text=_("The owner's participant id (the registry only)."))
    code = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200)
    project_type = serializers.ChoiceField(choices=ProjectType.choices)
    methodology = serializers.CharField(max_length=32, help_text=_("A code from GET /api/v1/ccer/methodologies."))
    location = serializers.CharField(max_length=200)
    start_date = serializers.DateField()
    crediting_start = serializers.DateField()
    crediting_end = serializers.DateField()
    validation_body = serializers.CharField(max_length=200)
    validation_report_sha256 = sha256_field()


class CommentIn(serializers.Serializer):
    text = serializers.CharField(max_length=5000)
    author = serializers.CharField(
        max_length=200,
        required=False,
        default="",
        allow_blank=True,
        help_text=_("The registry, for a comment by post."),
    )
    received_on = serializers.DateField(required=False, help_text=_("The registry, for a comment by post."))


class DecisionIn(serializers.Serializer):
    approve = serializers.BooleanField(help_text=_("True: register (an application) or issue (a claim)."))
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


def _applications() -> QuerySet[ProjectApplication]:
    return ProjectApplication.objects.select_related("owner", "methodology", "project").prefetch_related("comments")


def _application(pk: int) -> ProjectApplication:
    found = _applications().filter(pk=pk).first()
    if found is None:
        raise ApplicationNotFound(details={"application": pk})
    return found


class ApplicationListApi(ActorMixin, generics.ListAPIView):
    """CCER project applications (published for comment, so every member reads them); an owner applies."""

    serializer_class = ApplicationOut

    def get_queryset(self) -> QuerySet[ProjectApplication]:
        return _applications().order_by("-id")

    @idempotent_request
    @extend_schema(request=ApplicationIn, responses={201: ApplicationOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        data = ApplicationIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        owner_id = v.pop("owner", None)
        if owner_id is None or not self.actor.is_kind(ParticipantKind.REGISTRY):
            owner_id = self.actor.member_participant_id
        owner = Participant.objects.filter(pk=owner_id).first()
        if owner is None:
            raise ApplicationNotFound(gettext("No such owner."), details={"owner": owner_id})
        application = ccer_application_submit(actor=self.actor, owner=owner, **v)
        return Response(ApplicationOut(_application(application.pk)).data, status=status.HTTP_201_CREATED)


class ApplicationDetailApi(ActorMixin, APIView):
    @extend_schema(responses=ApplicationOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ApplicationOut(_application(pk)).data)


class ApplicationPublicityApi(ActorMixin, APIView):
    """Publish the application for comment (registry): the window runs the rule's working days."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=None, responses=ApplicationOut)
    def post(self, request: Request, pk: int) -> Response:
        opened = ccer_publicity_open(actor=self.actor, target=_application(pk))
        return Response(ApplicationOut(_application(opened.pk)).data)


def _comment(view: ActorMixin, request: Request, target: ProjectApplication | ReductionClaim) -> PublicComment:
    data = CommentIn(data=request.data)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    return ccer_comment_add(
        actor=view.actor, target=target, text=v["text"], author=v["author"], received_on=v.get("received_on")
    )


class ApplicationCommentApi(ActorMixin, APIView):
    """Comment on an application during its publicity window (any acting member)."""

    @idempotent_request
    @extend_schema(request=CommentIn, responses={201: CommentOut})
    def post(self, request: Request, pk: int) -> Response:
        self.actor.require_can_act()
        comment = _comment(self, request, _application(pk))
        return Response(CommentOut(comment).data, status=status.HTTP_201_CREATED)


class ApplicationDecisionApi(ActorMixin, APIView):
    """After the publicity window, register the project or refuse it with a reason (registry)."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=DecisionIn, responses=ApplicationOut)
    def post(self, request: Request, pk: int) -> Response:
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        decided = ccer_application_decide(
            actor=self.actor,
            application=_application(pk),
            register=data.validated_data["approve"],
            reason=data.validated_data["reason"],
        )
        return Response(ApplicationOut(_application(decided.pk)).data)


class ClaimOut(serializers.ModelSerializer):
    project = serializers.CharField(source="project.code")
    issuance = serializers.CharField(source="issuance.external_reference", allow_null=True, default=None)
    approval = serializers.IntegerField(
        source="approval_id",
        allow_null=True,
        help_text=_(
            "The four-eyes approval request a claim above the threshold waits on "
            "(POST /api/v1/approvals/{id}/approve or /reject by a second registry officer)."
        ),
    )
    comments = CommentOut(many=True, read_only=True)

    class Meta:
        model = ReductionClaim
        fields = [
            "id",
            "project",
            "vintage",
            "monitoring_start",
            "monitoring_end",
            "quantity",
            "verification_body",
            "verification_report_sha256",
            "status",
            "publicity_start",
            "publicity_end",
            "decided_at",
            "reason",
            "issuance",
            "approval",
            "comments",
        ]


class ClaimIn(serializers.Serializer):
    project = serializers.CharField(max_length=40, trim_whitespace=False)  # a blank code is not found, like any other
    vintage = serializers.IntegerField(min_value=2000, max_value=2100)
    monitoring_start = serializers.DateField()
    monitoring_end = serializers.DateField()
    quantity = QuantityField()
    verification_body = serializers.CharField(max_length=200)
    verification_report_sha256 = sha256_field()


def _claims() -> QuerySet[ReductionClaim]:
    return ReductionClaim.objects.select_related("project", "issuance").prefetch_related("comments")


def _claim(pk: int) -> ReductionClaim:
    found = _claims().filter(pk=pk).first()
    if found is None:
        raise ClaimNotFound(details={"claim": pk})
    return found


class ClaimListApi(ActorMixin, generics.ListAPIView):
    """Reduction claims (published for comment, so every member reads them); a project's owner claims."""

    serializer_class = ClaimOut

    def get_queryset(self) -> QuerySet[ReductionClaim]:
        return _claims().order_by("-id")

    @idempotent_request
    @extend_schema(request=ClaimIn, responses={201: ClaimOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        data = ClaimIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        project = Project.objects.select_related("owner").filter(code=v.pop("project").strip().upper()).first()
        if project is None:
            raise ProjectNotFound(details={"project": data.validated_data["project"]})
        claim = reduction_claim_submit(actor=self.actor, project=project, **v)
        return Response(ClaimOut(_claim(claim.pk)).data, status=status.HTTP_201_CREATED)


class ClaimDetailApi(ActorMixin, APIView):
    @extend_schema(responses=ClaimOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ClaimOut(_claim(pk)).data)


class ClaimPublicityApi(ActorMixin, APIView):
    """Publish the claim for comment (registry)."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=None, responses=ClaimOut)
    def post(self, request: Request, pk: int) -> Response:
        opened = ccer_publicity_open(actor=self.actor, target=_claim(pk))
        return Response(ClaimOut(_claim(opened.pk)).data)


class ClaimCommentApi(ActorMixin, APIView):
    """Comment on a claim during its publicity window (any acting member)."""

    @idempotent_request
    @extend_schema(request=CommentIn, responses={201: CommentOut})
    def post(self, request: Request, pk: int) -> Response:
        self.actor.require_can_act()
        comment = _comment(self, request, _claim(pk))
        return Response(CommentOut(comment).data, status=status.HTTP_201_CREATED)


class ClaimDecisionApi(ActorMixin, APIView):
    """After the publicity window, issue the reductions or refuse them with a reason (registry). A claim above
    the four-eyes threshold is not issued at once: the answer shows it still in publicity with its `approval`
    request, which a second registry officer approves (issuing it) or rejects (refusing it)."""

    permission_classes = [RegistryWrites]

    @idempotent_request
    @extend_schema(request=DecisionIn, responses=ClaimOut)
    def post(self, request: Request, pk: int) -> Response:
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        decided = reduction_claim_decide(
            actor=self.actor,
            claim=_claim(pk),
            issue=data.validated_data["approve"],
            reason=data.validated_data["reason"],
        )
        return Response(ClaimOut(_claim(decided.pk)).data)
