"""Cash on the API: the exchange operator books deposits participants paid in and pays withdrawals out."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api.base import ActorMixin, ExchangeOnly
from exchange.api.fields import MoneyField
from exchange.api.idempotency import idempotent_request
from exchange.api.representations import transaction_payload
from exchange.models import Transaction
from exchange.selectors.accounts import holding_account
from exchange.services.cash import cash_deposit, cash_withdraw


class CashIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    amount = MoneyField(min_fen=1)
    reference = serializers.CharField(
        max_length=100,
        help_text=_("The bank's reference, unique per booking: booking it again is 409 duplicate_bank_reference."),
    )


def _book(view: ActorMixin, booking: Callable[..., Transaction]) -> Response:
    """A cash booking (deposit or withdrawal) from its input: the journal entry, 201."""
    v = view.validated_input(CashIn)
    txn = booking(
        actor=view.actor, account=holding_account(v["account"]), amount_fen=v["amount"], reference=v["reference"]
    )
    return Response(transaction_payload(txn, {"actor": view.actor}), status=status.HTTP_201_CREATED)


class CashDepositApi(ActorMixin, APIView):
    """Book cash a participant paid in (exchange operator)."""

    permission_classes = [ExchangeOnly]

    @idempotent_request
    @extend_schema(request=CashIn, responses={201: dict})
    def post(self, request: Request) -> Response:
        return _book(self, cash_deposit)


class CashWithdrawApi(ActorMixin, APIView):
    """Pay a participant's available cash out to its bank (exchange operator)."""

    permission_classes = [ExchangeOnly]

    @idempotent_request
    @extend_schema(request=CashIn, responses={201: dict})
    def post(self, request: Request) -> Response:
        return _book(self, cash_withdraw)
