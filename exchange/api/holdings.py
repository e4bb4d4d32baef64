"""Accounts: list and open them, their holdings, serial blocks and statements (JSON or CSV)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Participant
from config.pagination import SerialOrderPagination
from exchange.api.base import ActorMixin, CsvRenderer, csv_response
from exchange.api.fields import AssetField, ChoiceFilter, IdField, IdFilter
from exchange.api.idempotency import idempotent_request
from exchange.api.representations import AccountOut, BlockOut, HoldingOut, StatementLineOut
from exchange.models import Account, AccountKind, Asset, Posting, SerialBlock
from exchange.selectors.accounts import account_visible, accounts_visible_to
from exchange.selectors.balances import blocks_for_account, holdings_visible, statement, statement_lines
from exchange.selectors.statements import trade_legs
from exchange.services.accounts import account_open


class AccountFilter(filters.FilterSet):
    participant = IdFilter(field_name="participant_id")
    kind = ChoiceFilter(choices=AccountKind.choices)

    class Meta:
        model = Account
        fields = ["participant", "kind"]


class AccountOpenIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    participant = IdField(
        required=False, help_text=_("Registry only: the participant to open it for. Default: your own.")
    )


class AccountListApi(ActorMixin, generics.ListAPIView):
    """Your participant's accounts (overseers: all accounts). An admin opens another holding account."""

    serializer_class = AccountOut
    filterset_class = AccountFilter

    def get_queryset(self) -> QuerySet[Account]:
        if getattr(self, "swagger_fake_view", False):
            return Account.objects.none()
        return accounts_visible_to(self.actor).order_by("-pk")

    @idempotent_request
    @extend_schema(request=AccountOpenIn, responses={201: AccountOut}, operation_id="accounts_open")
    def post(self, request: Request) -> Response:
        data = AccountOpenIn(data=request.data)
        data.is_valid(raise_exception=True)
        participant_id = data.validated_data.get("participant") or self.actor.member_participant_id
        participant = Participant.objects.filter(pk=participant_id).first()
        if participant is None:
            raise serializers.ValidationError({"participant": ["No such participant."]}, code="participant_not_found")
        account = account_open(actor=self.actor, participant=participant, name=data.validated_data["name"])
        return Response(AccountOut(account).data, status=status.HTTP_201_CREATED)


class AccountDetailApi(ActorMixin, APIView):
    @extend_schema(responses=AccountOut)
    def get(self, request: Request, number: str) -> Response:
        return Response(AccountOut(account_visible(self.actor, number)).data)


class HoldingsApi(ActorMixin, APIView):
    """What the account holds, per asset: total, held (orders, pledges, pending) and available."""

    @extend_schema(responses=HoldingOut(many=True))
    def get(self, request: Request, number: str) -> Response:
        return Response(holdings_visible(self.actor, number))


ASSET_PARAMETER = OpenApiParameter("asset", str, required=False, description="Only this asset, e.g. CEA-2024.")


def _asset_param(request: Request) -> Asset | None:
    code = request.query_params.get("asset")
    return AssetField().run_validation(code) if code else None


class BlocksApi(ActorMixin, generics.ListAPIView):
    """The serial blocks the account holds (available, held, and in sinks their final state)."""

    serializer_class = BlockOut
    pagination_class = SerialOrderPagination

    def get_queryset(self) -> QuerySet[SerialBlock]:
        if getattr(self, "swagger_fake_view", False):
            return SerialBlock.objects.none()
        account = account_visible(self.actor, self.kwargs["number"])
        return blocks_for_account(account, _asset_param(self.request))

    @extend_schema(parameters=[ASSET_PARAMETER])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


STATEMENT_CSV_HEADER = [
    "posting",
    "transaction",
    "time",
    "kind",
    "asset",
    "quantity",
    "balance_after",
    "memo",
    "trades",
]


class StatementApi(ActorMixin, generics.ListAPIView):
    """The account's postings, newest first, with the balance after each (cursor-paginated).

    ``?format=csv`` streams the whole statement, oldest first, as CSV.
    """

    serializer_class = StatementLineOut
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CsvRenderer]

    def get_queryset(self) -> QuerySet[Posting]:
        if getattr(self, "swagger_fake_view", False):
            return Posting.objects.none()
        account = account_visible(self.actor, self.kwargs["number"])
        return statement(account, _asset_param(self.request))

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        """A page of lines is serialised with the trades behind its settlement lines, read for the whole page."""
        if args and kwargs.get("many"):
            page = list(args[0])
            account = account_visible(self.actor, self.kwargs["number"], with_participant=False)
            kwargs.setdefault("context", self.get_serializer_context())["trade_legs"] = trade_legs(account.pk, page)
            args = (page, *args[1:])
        return super().get_serializer(*args, **kwargs)

    @extend_schema(parameters=[ASSET_PARAMETER])
    def get(  # type: ignore[override]  # DRF returns any HttpResponse a handler makes; the stubs say Response
        self, request: Request, *args: object, **kwargs: object
    ) -> Response | HttpResponseBase:
        if request.accepted_renderer.format == "csv":
            account = account_visible(self.actor, self.kwargs["number"])
            asset = _asset_param(request)
            lines = statement_lines(account, asset)
            rows = ([getattr(line, f) for f in STATEMENT_CSV_HEADER] for line in lines)
            return csv_response(f"statement-{account.number}.csv", STATEMENT_CSV_HEADER, rows)
        return super().get(request, *args, **kwargs)
