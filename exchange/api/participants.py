"""Who am I, and the participant register (the registry registers, suspends and reactivates).

The participants are the accounts app's; their API lives here, with the exchange's, because it answers with the
holding accounts and keys its writes like every other POST (accounts imports no exchange module).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import ParticipantNotFound, TokenNotFound
from accounts.models import ApiToken, Participant, ParticipantKind, ParticipantStatus
from accounts.permissions import KindRequired, actor_of
from accounts.services import (
    api_token_revoke,
    participant_create,
    participant_reactivate,
    participant_suspend,
)
from exchange.api.fields import ChoiceFilter
from exchange.api.idempotency import idempotent_request
from exchange.models import Account

RegistryOnly = KindRequired(ParticipantKind.REGISTRY)


class ParticipantOut(serializers.ModelSerializer):
    class Meta:
        model = Participant
        fields = ["id", "name", "kind", "uscc", "status", "email", "created_at"]


class ParticipantIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=ParticipantKind.choices)
    uscc = serializers.CharField(max_length=32, help_text=_("Unified social credit code, 18 characters."))
    email = serializers.EmailField(required=False, default="", allow_blank=True)


ME_OUT = inline_serializer(
    "Me",
    {
        "user": serializers.CharField(),
        "role": serializers.CharField(),
        "participant": ParticipantOut(),
        "accounts": serializers.ListField(child=serializers.CharField()),
        "links": serializers.DictField(child=serializers.CharField()),
    },
)


class ApiRootApi(APIView):
    """Who you are, the accounts you hold, and where to go next."""

    @extend_schema(responses=ME_OUT, operation_id="me")
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        participant = Participant.objects.get(pk=actor.member_participant_id)
        accounts = list(
            Account.objects.filter(participant=participant).order_by("number").values_list("number", flat=True)
        )
        return Response(
            {
                "user": request.user.get_username(),
                "role": actor.role,
                "participant": ParticipantOut(participant).data,
                "accounts": accounts,
                "links": {
                    "accounts": "/api/v1/accounts",
                    "assets": "/api/v1/assets",
                    "projects": "/api/v1/projects",
                    "transfers": "/api/v1/transfers",
                    "retirements": "/api/v1/retirements",
                    "schema": "/api/schema/",
                    "docs": "/api/docs/",
                },
            }
        )


class ParticipantFilter(filters.FilterSet):
    kind = ChoiceFilter(choices=ParticipantKind.choices)
    status = ChoiceFilter(choices=ParticipantStatus.choices)

    class Meta:
        model = Participant
        fields = ["kind", "status"]


class ParticipantListApi(generics.ListAPIView):
    """Participants (overseers see all, others themselves); the registry registers new ones."""

    serializer_class = ParticipantOut
    filterset_class = ParticipantFilter
    permission_classes = [RegistryOnly]

    def get_queryset(self) -> QuerySet[Participant]:
        if getattr(self, "swagger_fake_view", False):
            return Participant.objects.none()
        actor = actor_of(self.request)
        queryset = Participant.objects.order_by("-pk")
        return queryset if actor.sees_everything else queryset.filter(pk=actor.member_participant_id)

    @idempotent_request
    @extend_schema(request=ParticipantIn, responses={201: ParticipantOut}, operation_id="participants_register")
    def post(self, request: Request) -> Response:
        data = ParticipantIn(data=request.data)
        data.is_valid(raise_exception=True)
        participant = participant_create(actor=actor_of(request), **data.validated_data)
        return Response(ParticipantOut(participant).data, status=status.HTTP_201_CREATED)


def _visible_participant(request: Request, pk: int) -> Participant:
    actor = actor_of(request)
    participant = Participant.objects.filter(pk=pk).first()
    if participant is None or not (actor.sees_everything or actor.owns(pk)):
        raise ParticipantNotFound(details={"participant": pk})
    return participant


class ParticipantDetailApi(APIView):
    @extend_schema(responses=ParticipantOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ParticipantOut(_visible_participant(request, pk)).data)


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class ParticipantSuspendApi(APIView):
    """Suspend a participant: it can still read, but nothing of it moves (registry)."""

    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=ReasonIn, responses=ParticipantOut)
    def post(self, request: Request, pk: int) -> Response:
        data = ReasonIn(data=request.data)
        data.is_valid(raise_exception=True)
        participant = participant_suspend(
            actor=actor_of(request), participant=_visible_participant(request, pk), reason=data.validated_data["reason"]
        )
        return Response(ParticipantOut(participant).data)


class ParticipantReactivateApi(APIView):
    permission_classes = [RegistryOnly]

    @idempotent_request
    @extend_schema(request=ReasonIn, responses=ParticipantOut)
    def post(self, request: Request, pk: int) -> Response:
        data = ReasonIn(data=request.data)
        data.is_valid(raise_exception=True)
        participant = participant_reactivate(
            actor=actor_of(request), participant=_visible_participant(request, pk), reason=data.validated_data["reason"]
        )
        return Response(ParticipantOut(participant).data)


class ApiTokenOut(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    participant = serializers.IntegerField(source="user.membership.participant_id", allow_null=True)

    class Meta:
        model = ApiToken
        fields = ["prefix", "name", "user", "participant", "created_at", "expires_at", "last_used_at", "revoked_at"]


class RevokeIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ApiTokenRevokeApi(APIView):
    """Revoke an API token by its public prefix (the ``<prefix>`` of ``gl_<prefix>_...``): your own, a
    member's of your participant (its admins), or anyone's (the registry's admins, e.g. for a leaked token).
    A token you may not manage answers 404, as an unknown one does. Recorded in the audit trail."""

    @idempotent_request
    @extend_schema(request=RevokeIn, responses=ApiTokenOut, operation_id="tokens_revoke")
    def post(self, request: Request, prefix: str) -> Response:
        data = RevokeIn(data=request.data)
        data.is_valid(raise_exception=True)
        actor = actor_of(request)
        token = ApiToken.objects.select_related("user__membership").filter(prefix=prefix).first()
        if token is None or not _may_see_token(actor, token):
            raise TokenNotFound(details={"prefix": prefix})
        token = api_token_revoke(actor=actor, token=token, reason=data.validated_data["reason"])
        return Response(ApiTokenOut(token).data)


def _may_see_token(actor: Any, token: ApiToken) -> bool:
    if actor.is_kind(ParticipantKind.REGISTRY) or actor.user_id == token.user_id:
        return True
    membership = getattr(token.user, "membership", None)
    return membership is not None and actor.owns(membership.participant_id)
