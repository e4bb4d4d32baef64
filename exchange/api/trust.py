"""Trusted accounts and pending transfers on the API."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api.base import ActorMixin
from exchange.api.fields import ChoiceFilter
from exchange.api.idempotency import idempotent_request
from exchange.models import PendingStatus, PendingTransfer, TrustedAccount, TrustStatus
from exchange.selectors.accounts import holding_account
from exchange.services.trust import (
    PendingTransferNotFound,
    TrustNotFound,
    pending_transfer_cancel,
    trusted_account_approve,
    trusted_account_propose,
    trusted_account_remove,
)


class PendingTransferOut(serializers.ModelSerializer):
    source = serializers.CharField(source="source.number")  # type: ignore[assignment]  # not Field.source (djangorestframework-stubs#158)
    destination = serializers.CharField(source="destination.number")
    asset = serializers.CharField(source="asset.code")
    transaction = serializers.IntegerField(source="transaction_id", allow_null=True)

    class Meta:
        model = PendingTransfer
        fields = [
            "id",
            "source",
            "destination",
            "asset",
            "quantity",
            "memo",
            "status",
            "created_at",
            "execute_after",
            "ended_at",
            "transaction",
        ]


PENDING_OUT = inline_serializer(
    "TransferPending", {"pending_transfer": PendingTransferOut(), "message": serializers.CharField()}
)


def pending_response(pending: PendingTransfer) -> Response:
    """202: the destination is not trusted, so the units are held and the transfer waits."""
    return Response(
        {
            "pending_transfer": PendingTransferOut(pending).data,
            "message": "The destination is not on your trusted list: the units are held and the transfer is "
            "carried out after the delay unless you cancel it.",
        },
        status=status.HTTP_202_ACCEPTED,
    )


class PendingFilter(filters.FilterSet):
    status = ChoiceFilter(choices=PendingStatus.choices)

    class Meta:
        model = PendingTransfer
        fields = ["status"]


class PendingTransferListApi(ActorMixin, generics.ListAPIView):
    """Your transfers waiting for their delay (overseers: all)."""

    serializer_class = PendingTransferOut
    filterset_class = PendingFilter

    def get_queryset(self) -> QuerySet[PendingTransfer]:
        if getattr(self, "swagger_fake_view", False):
            return PendingTransfer.objects.none()
        queryset = PendingTransfer.objects.select_related("source", "destination", "asset").order_by("-id")
        return (
            queryset if self.actor.sees_everything else queryset.filter(participant_id=self.actor.member_participant_id)
        )


class PendingTransferCancelApi(ActorMixin, APIView):
    """Cancel one of your pending transfers; the units are available again at once."""

    @idempotent_request
    @extend_schema(request=None, responses=PendingTransferOut)
    def post(self, request: Request, pk: int) -> Response:
        pending = PendingTransfer.objects.filter(pk=pk, participant_id=self.actor.member_participant_id).first()
        if pending is None:
            raise PendingTransferNotFound(details={"pending_transfer": pk})
        return Response(PendingTransferOut(pending_transfer_cancel(actor=self.actor, pending=pending)).data)


class TrustedAccountOut(serializers.ModelSerializer):
    account = serializers.CharField(source="account.number")
    holder = serializers.CharField(source="account.participant.name")
    proposed_by = serializers.CharField(source="proposed_by.username")
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)

    class Meta:
        model = TrustedAccount
        fields = [
            "id",
            "account",
            "holder",
            "label",
            "status",
            "proposed_by",
            "proposed_at",
            "approved_by",
            "approved_at",
            "effective_at",
            "removed_at",
        ]


class TrustProposeIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    label = serializers.CharField(  # type: ignore[assignment]  # not Field.label (djangorestframework-stubs#158)
        max_length=200, required=False, default="", allow_blank=True
    )


class TrustFilter(filters.FilterSet):
    status = ChoiceFilter(choices=TrustStatus.choices)

    class Meta:
        model = TrustedAccount
        fields = ["status"]


class TrustedAccountListApi(ActorMixin, generics.ListAPIView):
    """Your participant's trusted accounts; an admin proposes one, a second admin approves it."""

    serializer_class = TrustedAccountOut
    filterset_class = TrustFilter

    def get_queryset(self) -> QuerySet[TrustedAccount]:
        if getattr(self, "swagger_fake_view", False):
            return TrustedAccount.objects.none()
        return (
            TrustedAccount.objects.filter(participant_id=self.actor.member_participant_id)
            .select_related("account__participant", "proposed_by", "approved_by")
            .order_by("-id")
        )

    @idempotent_request
    @extend_schema(request=TrustProposeIn, responses={201: TrustedAccountOut}, operation_id="trusted_accounts_propose")
    def post(self, request: Request) -> Response:
        data = TrustProposeIn(data=request.data)
        data.is_valid(raise_exception=True)
        entry = trusted_account_propose(
            actor=self.actor,
            account=holding_account(data.validated_data["account"]),
            label=data.validated_data["label"],
        )
        return Response(TrustedAccountOut(_entry(self, entry.pk)).data, status=status.HTTP_201_CREATED)


def _entry(view: ActorMixin, pk: int) -> TrustedAccount:
    entry = (
        TrustedAccount.objects.select_related("account__participant", "proposed_by", "approved_by")
        .filter(pk=pk, participant_id=view.actor.member_participant_id)
        .first()
    )
    if entry is None:
        raise TrustNotFound(details={"trusted_account": pk})
    return entry


class TrustedAccountApproveApi(ActorMixin, APIView):
    """Approve a proposed trusted account (a second admin); transfers to it are immediate after the delay."""

    @idempotent_request
    @extend_schema(request=None, responses=TrustedAccountOut)
    def post(self, request: Request, pk: int) -> Response:
        entry = trusted_account_approve(actor=self.actor, entry=_entry(self, pk))
        return Response(TrustedAccountOut(_entry(self, entry.pk)).data)


class TrustedAccountRemoveApi(ActorMixin, APIView):
    """Take an account off the trusted list at once (an admin)."""

    @idempotent_request
    @extend_schema(request=None, responses=TrustedAccountOut)
    def post(self, request: Request, pk: int) -> Response:
        entry = trusted_account_remove(actor=self.actor, entry=_entry(self, pk))
        return Response(TrustedAccountOut(_entry(self, entry.pk)).data)
