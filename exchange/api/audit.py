"""The audit trail on the API: events (auditors and the registry), checkpoints, proofs, verification, and
the public checkpoint feed with the keys that sign it (anyone may keep a copy and compare it later)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from exchange.api.base import ActorMixin
from exchange.api.fields import IdFilter, IsoDateTimeFilter, int_parameter_schema, query_int
from exchange.audit_proof import SIGNATURE_ALGORITHM, ProofProblem
from exchange.audit_signing import SigningKeyMissing, current_key_id, trusted_public_keys
from exchange.models import AuditEvent, Checkpoint
from exchange.selectors.audit import EventNotFound, audit_proof, checkpoint_document
from exchange.services.sealing import audit_seal, audit_verify

AUDIT_READERS = (ParticipantKind.AUDITOR, ParticipantKind.REGISTRY)


class AuditEventOut(serializers.ModelSerializer):
    actor_user = serializers.IntegerField(source="actor_user_id", allow_null=True)
    actor_participant = serializers.IntegerField(source="actor_participant_id", allow_null=True)
    payload = serializers.JSONField(source="payload_json")

    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "created_at",
            "actor_user",
            "actor_participant",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "payload",
            "hash",
        ]


class AuditEventFilter(filters.FilterSet):
    actor = IdFilter(field_name="actor_participant_id", help_text=_("Participant id of the actor."))
    actor_user = IdFilter(field_name="actor_user_id")
    action = filters.CharFilter()
    action_prefix = filters.CharFilter(field_name="action", lookup_expr="startswith")
    object_type = filters.CharFilter()
    object_id = filters.CharFilter()
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "actor_user", "action", "object_type", "object_id"]


class AuditEventListApi(ActorMixin, generics.ListAPIView):
    """Every audit event, newest first, filterable (auditors and the registry only)."""

    serializer_class = AuditEventOut
    filterset_class = AuditEventFilter
    permission_classes = [KindRequired(*AUDIT_READERS, for_reads=True)]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.order_by("-seq")


class AuditEventDetailApi(ActorMixin, APIView):
    permission_classes = [KindRequired(*AUDIT_READERS, for_reads=True)]

    @extend_schema(responses=AuditEventOut)
    def get(self, request: Request, seq: int) -> Response:
        event = AuditEvent.objects.filter(seq=seq).first()
        if event is None:
            raise EventNotFound(details={"seq": seq})
        return Response(AuditEventOut(event).data)


PROOF_OUT = inline_serializer(
    "AuditProof",
    {
        "event": serializers.DictField(),
        "leaf_index": serializers.IntegerField(),
        "path": serializers.ListField(child=serializers.CharField()),
        "root": serializers.CharField(),
        "checkpoint": serializers.DictField(),
        "chain": serializers.ListField(child=serializers.DictField()),
    },
)


class AuditProofApi(ActorMixin, APIView):
    """An inclusion proof for an event: check it with ``exchange.audit_proof.verify_proof`` (docs/audit.md).

    Auditors and the registry get any event's proof; a participant gets proofs of its own actions.
    """

    @extend_schema(
        responses=PROOF_OUT,
        parameters=[
            OpenApiParameter(
                "to", int_parameter_schema(), required=False, description="End the chain at this checkpoint."
            )
        ],
    )
    def get(self, request: Request, seq: int) -> Response:
        event = AuditEvent.objects.filter(seq=seq).only("actor_participant_id").first()
        actor = self.actor
        if event is None or not (actor.is_kind(*AUDIT_READERS) or actor.owns(event.actor_participant_id)):
            raise EventNotFound(details={"seq": seq})
        return Response(audit_proof(seq, query_int(request, "to")))


class CheckpointOut(serializers.Serializer):
    number = serializers.CharField()
    first_seq = serializers.CharField()
    last_seq = serializers.CharField()
    count = serializers.CharField()
    gaps = serializers.ListField(child=serializers.CharField())
    root = serializers.CharField()  # type: ignore[assignment]  # not Field.root (djangorestframework-stubs#158)
    previous_hash = serializers.CharField()
    sealed_at = serializers.CharField()
    hash = serializers.CharField()
    key_id = serializers.CharField()
    signature = serializers.CharField()


class CheckpointListApi(ActorMixin, generics.ListAPIView):
    """Sealed checkpoints, newest first: pin a hash you trust and check proofs against it."""

    serializer_class = CheckpointOut

    def get_queryset(self) -> QuerySet[Checkpoint]:
        return Checkpoint.objects.order_by("-number")

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([checkpoint_document(c) for c in page or []])


VERIFY_OUT = inline_serializer(
    "AuditVerification",
    {
        "ok": serializers.BooleanField(),
        "events": serializers.IntegerField(),
        "checkpoints": serializers.IntegerField(),
        "unsealed": serializers.IntegerField(),
        "first_mismatch": serializers.DictField(allow_null=True),
    },
)


class AuditVerifyApi(ActorMixin, APIView):
    """Recompute every event hash, checkpoint and the chain; name the first mismatch (auditors, registry)."""

    permission_classes = [KindRequired(*AUDIT_READERS, for_reads=True)]

    @extend_schema(responses=VERIFY_OUT)
    def get(self, request: Request) -> Response:
        result = audit_verify(workers=1)  # in this process: a web worker forks no pool
        return Response(
            {
                "ok": result.ok,
                "events": result.events,
                "checkpoints": result.checkpoints,
                "unsealed": result.unsealed,
                "first_mismatch": _mismatch_shown(result.failure),
            }
        )


def _mismatch_shown(failure: dict[str, Any] | None) -> dict[str, Any] | None:
    """The first mismatch with its reason in the reader's language and its stable code beside it."""
    if failure is None:
        return None
    reason = failure["reason"]
    if not isinstance(reason, ProofProblem):
        return failure
    return {**failure, "reason": reason.text(gettext), "code": reason.code}


class AuditSealApi(ActorMixin, APIView):
    """Seal now instead of waiting for the schedule (registry)."""

    permission_classes = [KindRequired(ParticipantKind.REGISTRY)]

    @extend_schema(request=None, responses=CheckpointOut(many=True))
    def post(self, request: Request) -> Response:
        return Response([checkpoint_document(c) for c in audit_seal()])


def public_keys_document() -> dict[str, object]:
    try:
        current: str | None = current_key_id()
    except SigningKeyMissing:
        current = None
    return {"algorithm": SIGNATURE_ALGORITHM, "current": current, "keys": trusted_public_keys()}


PUBLIC_KEYS_OUT = inline_serializer(
    "AuditPublicKeys",
    {
        "algorithm": serializers.CharField(),
        "current": serializers.CharField(allow_null=True),
        "keys": serializers.DictField(child=serializers.CharField(), help_text=_("Key id -> base64 raw public key.")),
    },
)


class AuditPublicKeysApi(APIView):
    """The Ed25519 public keys that sign checkpoints (public): the current one and earlier ones still trusted."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=PUBLIC_KEYS_OUT)
    def get(self, request: Request) -> Response:
        return Response(public_keys_document())


FEED_LIMIT, FEED_MAX = 500, 1000


class CheckpointFeedApi(APIView):
    """Every signed checkpoint, oldest first, from ``after`` on (public). Keep the pages you fetch: a copy
    kept anywhere catches a trail rewritten or cut later (``manage.py verify_audit --against FILE``,
    ``greenledger proof feed --against FILE``)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "CheckpointFeed",
            {
                "checkpoints": CheckpointOut(many=True),
                "next": serializers.CharField(allow_null=True),
                "public_keys": PUBLIC_KEYS_OUT,
            },
        ),
        parameters=[
            OpenApiParameter(
                "after",
                int_parameter_schema(),
                required=False,
                description="Checkpoints after this number, 0 by default.",
            ),
            OpenApiParameter(
                "limit",
                int_parameter_schema(1, FEED_MAX),
                required=False,
                description=f"At most this many (default {FEED_LIMIT}).",
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        values: dict[str, int | None] = {}
        errors: dict[str, Any] = {}
        for name, bounds in (("after", {}), ("limit", {"minimum": 1, "maximum": FEED_MAX})):
            try:
                values[name] = query_int(request, name, **bounds)
            except serializers.ValidationError as exc:  # every bad parameter named at once
                errors.update(exc.detail)  # type: ignore[arg-type]
        if errors:
            raise serializers.ValidationError(errors)
        after = values["after"] or 0
        limit = values["limit"] or FEED_LIMIT
        page = list(Checkpoint.objects.filter(number__gt=after).order_by("number")[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        next_url = None
        if more:
            next_url = request.build_absolute_uri(f"{request.path}?after={page[-1].number}&limit={limit}")
        return Response(
            {
                "checkpoints": [checkpoint_document(c) for c in page],
                "next": next_url,
                "public_keys": public_keys_document(),
            }
        )
