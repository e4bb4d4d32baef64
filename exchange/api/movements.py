"""Moving units: transfers, retirements and the registry's cancellations."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.models import ParticipantKind
from accounts.permissions import KindRequired
from core.errors import InvalidInput
from core.i18n import lazy_text
from core.limits import MAX_QUANTITY, is_quantity
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.fields import AssetField, QuantityField, SerialRangeField
from exchange.api.idempotency import idempotent_request
from exchange.api.representations import TransactionOut, transaction_payload
from exchange.api.trust import PENDING_OUT, pending_response
from exchange.errors import AccountNotFound, UnknownAsset
from exchange.models import Account, AccountKind, Asset, PendingTransfer, Retirement
from exchange.selectors.accounts import account_owned, holding_account, transfer_accounts
from exchange.selectors.transactions import TransactionNotFound
from exchange.services.retirement import retirement_create, units_cancel
from exchange.services.transfers import MAX_BATCH, TransferOrder, at_index, transfer_create, transfers_batch_create


class TransferIn(serializers.Serializer):
    source = serializers.CharField(  # type: ignore[assignment]  # not Field.source (djangorestframework-stubs#158)
        max_length=32, help_text=_("One of your holding accounts.")
    )
    destination = serializers.CharField(max_length=32, help_text=_("Any participant's holding account."))
    asset = AssetField()
    quantity = QuantityField()
    memo = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    serials = SerialRangeField(required=False, help_text=_("Move exactly this range [first, last]."))


class TransferCreateApi(ActorMixin, APIView):
    """Transfer units from one of your accounts to another participant's account."""

    # The refusals it answers beyond those of every operation of its kind (OpenAPI x-error-codes).
    error_codes = [
        "insufficient_available",
        "same_account",
        "asset_not_transferable",
        "invalid_destination",
        "account_not_found",
        "unknown_asset",
        "invalid_quantity",
        "serials_not_available",
        "participant_suspended",
        "role_forbidden",
        "wrong_participant_kind",
    ]

    @idempotent_request
    @extend_schema(
        request=TransferIn, responses={201: TransactionOut, 202: PENDING_OUT}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def post(self, request: Request) -> Response:
        data = TransferIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        source, destination = transfer_accounts(self.actor, v["source"], v["destination"])
        txn = transfer_create(
            actor=self.actor,
            source=source,
            destination=destination,
            asset=v["asset"],
            quantity=v["quantity"],
            memo=v["memo"],
            serials=v.get("serials"),
        )
        if isinstance(txn, PendingTransfer):
            return pending_response(txn)
        return Response(transaction_payload(txn, {"actor": self.actor}), status=status.HTTP_201_CREATED)


class BatchItemIn(TransferIn):
    """One transfer of a batch: as a single transfer, without a memo of its own (the batch has one)."""

    memo = None  # type: ignore[assignment]


class BatchItemSchema(OpenApiSerializerExtension):
    """A batch item's keys are exactly these (``parse_batch`` refuses others): the schema says so."""

    target_class = BatchItemIn

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


class TransferBatchIn(serializers.Serializer):
    """The schema of a batch. The view checks the items itself (a thousand DRF serializers cost more than
    posting them) by the same rules as ``TransferIn``, and names the index of a bad one."""

    transfers = BatchItemIn(  # type: ignore[call-arg]  # many=True takes min/max_length; the stubs lack them
        many=True,
        min_length=1,
        max_length=MAX_BATCH,
        help_text=lazy_text(gettext_noop("1 to %(count)s transfers from your holding accounts."), {"count": MAX_BATCH}),
    )
    memo = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class BatchTransferOut(serializers.Serializer):
    index = serializers.IntegerField()
    source = serializers.CharField()  # type: ignore[assignment]  # not Field.source (djangorestframework-stubs#158)
    destination = serializers.CharField()
    asset = serializers.CharField()
    quantity = serializers.IntegerField()
    serial_ranges = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))


class TransferBatchOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    created_at = serializers.DateTimeField()
    memo = serializers.CharField()
    url = serializers.CharField()
    postings = serializers.IntegerField()
    transfers = BatchTransferOut(many=True)


_TRANSFER_KEYS = {"source", "destination", "asset", "quantity", "serials"}


def _refuse(index: int, field: str, message: str, error: type[InvalidInput] = InvalidInput) -> InvalidInput:
    return error(f"transfers[{index}].{field}: {message}", details={"index": index, "field": field, "reason": message})


def parse_batch(actor: Actor, data: object) -> tuple[list[TransferOrder], str]:
    """The batch body as transfer orders: every item checked, accounts and assets read in two queries."""
    if not isinstance(data, dict) or not isinstance(data.get("transfers"), list):
        raise InvalidInput(gettext('The body is {"transfers": [...], "memo": "..."}.'), details={"field": "transfers"})
    items, memo = data["transfers"], data.get("memo", "")
    if not isinstance(memo, str) or len(memo) > 500:
        raise InvalidInput(gettext("memo: at most 500 characters."), details={"field": "memo"})
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(
            gettext("A batch holds 1 to %(max)s transfers.") % {"max": MAX_BATCH},
            details={"transfers": len(items), "max": MAX_BATCH},
        )
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _refuse(i, "transfer", "an object with source, destination, asset and quantity")
        unknown = set(item) - _TRANSFER_KEYS
        if unknown:
            raise _refuse(i, sorted(unknown)[0], "unknown field")
        for name in ("source", "destination", "asset"):
            value = item.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > (64 if name == "asset" else 32):
                raise _refuse(i, name, "required, a non-empty string")
        quantity = item.get("quantity")
        if not is_quantity(quantity):
            raise _refuse(i, "quantity", f"a whole number of tonnes from 1 to {MAX_QUANTITY}")
        serials = item.get("serials")
        if serials is not None:
            if (
                not isinstance(serials, list)
                or len(serials) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in serials)
                or serials[1] < serials[0]
            ):
                raise _refuse(i, "serials", "a range [first, last] of serial numbers")
            serials = (serials[0], serials[1])
        parsed.append((item["source"].strip(), item["destination"].strip(), item["asset"].strip(), quantity, serials))
    numbers = {p[0] for p in parsed} | {p[1] for p in parsed}
    accounts = {
        a.number: a
        for a in Account.objects.select_related("participant").filter(number__in=numbers, kind=AccountKind.HOLDING)
    }
    assets = Asset.objects.in_bulk({p[2] for p in parsed}, field_name="code")
    orders = []
    for i, (source, destination, code, quantity, serials) in enumerate(parsed):
        if code not in assets:
            raise _refuse(i, "asset", f"no asset {code!r}", UnknownAsset)
        src = accounts.get(source)
        if src is None or src.participant_id != actor.participant_id or actor.participant_id is None:
            raise at_index(i, AccountNotFound(details={"account": source}))
        dst = accounts.get(destination)
        if dst is None:
            raise at_index(i, AccountNotFound.destination(destination))
        orders.append(TransferOrder(src, dst, assets[code], quantity, serials))
    return orders, memo


class TransferBatchCreateApi(ActorMixin, APIView):
    """Up to 1,000 transfers from your accounts at once: all of them or none, one journal transaction.

    The Idempotency-Key covers the whole batch. A refusal names the transfer it is about in
    ``details.index`` (counting from 0).
    """

    @idempotent_request
    @extend_schema(request=TransferBatchIn, responses={201: TransferBatchOut}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request: Request) -> Response:
        orders, memo = parse_batch(self.actor, request.data)
        result = transfers_batch_create(actor=self.actor, transfers=orders, memo=memo)
        txn = result.transaction
        body = {
            "id": txn.pk,
            "kind": txn.kind,
            "created_at": serializers.DateTimeField().to_representation(txn.created_at),
            "memo": txn.memo,
            "url": f"/api/v1/transactions/{txn.pk}",
            "postings": 2 * len(orders),
            "transfers": [
                {
                    "index": i,
                    "source": o.source.number,
                    "destination": o.destination.number,
                    "asset": o.asset.code,
                    "quantity": o.quantity,
                    "serial_ranges": [[first, last] for first, last in ranges],
                }
                for i, (o, ranges) in enumerate(zip(orders, result.ranges, strict=False))
            ],
        }
        return Response(body, status=status.HTTP_201_CREATED)


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
    certificate_url = serializers.SerializerMethodField(help_text=_("The public certificate (no login needed)."))

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

    # The refusals it answers beyond those of every operation of its kind (OpenAPI x-error-codes).
    error_codes = {
        "post": [
            "insufficient_available",
            "account_not_found",
            "unknown_asset",
            "invalid_quantity",
            "serials_not_available",
            "asset_not_transferable",
            "participant_suspended",
            "role_forbidden",
            "wrong_participant_kind",
        ]
    }

    serializer_class = RetirementOut

    def get_queryset(self) -> QuerySet[Retirement]:
        if getattr(self, "swagger_fake_view", False):
            return Retirement.objects.none()
        queryset = Retirement.objects.select_related("account", "asset", "transaction").order_by("-pk")
        if self.actor.sees_everything:
            return queryset
        return queryset.filter(account__participant_id=self.actor.member_participant_id)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "actor": self.actor}

    @idempotent_request
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
        )
        body = RetirementOut(retirement, context={"actor": self.actor, "request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class RetirementDetailApi(ActorMixin, APIView):
    @extend_schema(responses=RetirementOut)
    def get(self, request: Request, pk: int) -> Response:
        queryset = Retirement.objects.select_related("account", "asset", "transaction").filter(pk=pk)
        if not self.actor.sees_everything:
            queryset = queryset.filter(account__participant_id=self.actor.member_participant_id)
        retirement = queryset.first()
        if retirement is None:
            raise TransactionNotFound(gettext("No such retirement, or not yours."), details={"retirement": pk})
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

    @idempotent_request
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
        )
        return Response(transaction_payload(txn, {"actor": self.actor}), status=status.HTTP_201_CREATED)
