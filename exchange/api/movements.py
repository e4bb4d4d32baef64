"""Moving units: transfers, retirements and the registry's cancellations."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.fields import AssetField, QuantityField, SerialRangeField
from exchange.api.representations import TransactionOut, transaction_payload
from exchange.api.trust import PENDING_OUT, pending_response
from exchange.models import PendingTransfer, Retirement
from exchange.selectors.accounts import account_owned, holding_account
from exchange.selectors.transactions import TransactionNotFound
from exchange.services.retirement import retirement_create, units_cancel
from exchange.services.transfers import transfer_create


class TransferIn(serializers.Serializer):
    source = serializers.CharField(max_length=32, help_text="One of your holding accounts.")
    destination = serializers.CharField(max_length=32, help_text="Any participant's holding account.")
    asset = AssetField()
    quantity = QuantityField()
    memo = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    serials = SerialRangeField(required=False, help_text="Move exactly this range [first, last].")


class TransferCreateApi(ActorMixin, APIView):
    """Transfer units from one of your accounts to another participant's account."""

    @extend_schema(
        request=TransferIn, responses={201: TransactionOut, 202: PENDING_OUT}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def post(self, request: Request) -> Response:
        data = TransferIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        txn = transfer_create(
            actor=self.actor,
            source=account_owned(self.actor, v["source"]),
            destination=holding_account(v["destination"]),
            asset=v["asset"],
            quantity=v["quantity"],
            memo=v["memo"],
            serials=v.get("serials"),
            idempotency_key=self.idempotency_key(),
        )
        if isinstance(txn, PendingTransfer):
            return pending_response(txn)
        return Response(transaction_payload(txn, {"actor": self.actor}), status=status.HTTP_201_CREATED)



class RetirementIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    quantity = QuantityField()
    beneficiary = serializers.CharField(max_length=200)
    reason = serializers.CharField(max_length=500)
    serials = SerialRangeField(required=False)


class RetirementOut(serializers.ModelSerializer):
    account = serializers.CharField(source="account.number")
    asset = serializers.CharField(source="asset.code")
    transaction = serializers.SerializerMethodField()
    certificate_url = serializers.SerializerMethodField(help_text="The public certificate (no login needed).")

    class Meta:
        model = Retirement
        fields = [
            "id",
            "account",
            "asset",
            "quantity",
            "beneficiary",
            "reason",
            "created_at",
            "transaction",
            "certificate_url",
        ]

    def get_transaction(self, retirement: Retirement) -> dict:
        return transaction_payload(retirement.transaction, self.context)

    def get_certificate_url(self, retirement: Retirement) -> str:
        path = reverse("registry:certificate", args=[retirement.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class RetirementListApi(ActorMixin, generics.ListAPIView):
    """Your retirements (overseers: all); POST retires units for good on behalf of a beneficiary."""

    serializer_class = RetirementOut

    def get_queryset(self) -> QuerySet[Retirement]:
        if getattr(self, "swagger_fake_view", False):
            return Retirement.objects.none()
        queryset = Retirement.objects.select_related("account", "asset", "transaction").order_by("-pk")
        if self.actor.sees_everything:
            return queryset
        return queryset.filter(account__participant_id=self.actor.participant_id)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "actor": self.actor}

    @extend_schema(request=RetirementIn, responses={201: RetirementOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        data = RetirementIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        retirement = retirement_create(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            asset=v["asset"],
            quantity=v["quantity"],
            beneficiary=v["beneficiary"],
            reason=v["reason"],
            serials=v.get("serials"),
            idempotency_key=self.idempotency_key(),
        )
        body = RetirementOut(retirement, context={"actor": self.actor, "request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class RetirementDetailApi(ActorMixin, APIView):
    @extend_schema(responses=RetirementOut)
    def get(self, request: Request, pk: int) -> Response:
        queryset = Retirement.objects.select_related("account", "asset", "transaction").filter(pk=pk)
        if not self.actor.sees_everything:
            queryset = queryset.filter(account__participant_id=self.actor.participant_id)
        retirement = queryset.first()
        if retirement is None:
            raise TransactionNotFound("No such retirement, or not yours.", details={"retirement": pk})
        return Response(RetirementOut(retirement, context={"actor": self.actor, "request": request}).data)


class CancellationIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    quantity = QuantityField()
    reason = serializers.CharField(max_length=500)
    serials = SerialRangeField(required=False)


class CancellationCreateApi(ActorMixin, APIView):
    """Cancel units in any holding account as a correction (registry)."""

    permission_classes = [KindRequired(ParticipantKind.REGISTRY)]

    @extend_schema(request=CancellationIn, responses={201: TransactionOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        data = CancellationIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        txn = units_cancel(
            actor=self.actor,
            account=holding_account(v["account"]),
            asset=v["asset"],
            quantity=v["quantity"],
            reason=v["reason"],
            serials=v.get("serials"),
            idempotency_key=self.idempotency_key(),
        )
        return Response(transaction_payload(txn, {"actor": self.actor}), status=status.HTTP_201_CREATED)
