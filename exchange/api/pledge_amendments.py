"""Amendments of a registered pledge on the API (top-up, partial release, extension), registered like the
pledge: the borrower applies, the lender confirms the amendment's ``terms_digest``, the registry registers
it (202 with an approval request above the four-eyes threshold). See ``exchange.services.pledges.amendments``.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api.approvals import PENDING_OUT, pending_response
from exchange.api.base import IDEMPOTENCY_PARAMETER, ActorMixin
from exchange.api.fields import SerialRangeField
from exchange.api.idempotency import idempotent_request
from exchange.models import AmendmentKind, ApprovalRequest, PledgeAmendment
from exchange.selectors.pledges import PledgeNotFound, pledge_visible
from exchange.services.approvals import pledge_amendment_register_or_file
from exchange.services.pledges.amendments import (
    pledge_amendment_confirm,
    pledge_amendment_reject,
    pledge_amendment_request,
)


class AmendmentOut(serializers.ModelSerializer):
    pledge = serializers.IntegerField(source="loan_id")

    class Meta:
        model = PledgeAmendment
        fields = [
            "id",
            "pledge",
            "kind",
            "status",
            "quantity",
            "serials",
            "maturity_date",
            "previous_maturity_date",
            "terms_digest",
            "number",
            "reference",
            "serial_ranges",
            "ltv_bp_after",
            "reason",
            "requested_at",
            "confirmed_at",
            "registered_at",
            "closed_at",
        ]


class AmendmentIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AmendmentKind.choices)
    quantity = serializers.IntegerField(min_value=0, required=False, default=0)
    serials = SerialRangeField(required=False, help_text=_("A top-up of exactly this range [first, last]."))
    maturity_date = serializers.DateField(required=False, help_text=_("The new maturity of an extension."))


class AmendmentConfirmIn(serializers.Serializer):
    terms_digest = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", help_text=_("The amendment's terms_digest: you confirm exactly the change applied for.")
    )


class AmendmentRejectIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


def _amendment(actor: Any, pk: int, number: int) -> PledgeAmendment:
    loan = pledge_visible(actor, pk)
    amendment = PledgeAmendment.objects.filter(loan=loan, pk=number).select_related("loan").first()
    if amendment is None:
        raise PledgeNotFound(details={"pledge": pk, "amendment": number})
    return amendment


class PledgeAmendmentListApi(ActorMixin, APIView):
    """GET the amendments of a pledge you may see; POST (the borrower) an application to amend it."""

    error_codes = ["pledge_borrower_only", "invalid_pledge_transition", "pledge_amendment_open", "invalid_pledge_terms"]

    @extend_schema(responses=AmendmentOut(many=True), operation_id="pledges_amendments_list")
    def get(self, request: Request, pk: int) -> Response:
        loan = pledge_visible(self.actor, pk)
        return Response(AmendmentOut(PledgeAmendment.objects.filter(loan=loan).order_by("id"), many=True).data)

    @idempotent_request
    @extend_schema(
        request=AmendmentIn,
        responses={201: AmendmentOut},
        parameters=[IDEMPOTENCY_PARAMETER],
        operation_id="pledges_amendments_create",
    )
    def post(self, request: Request, pk: int) -> Response:
        loan = pledge_visible(self.actor, pk)
        parsed = AmendmentIn(data=request.data)
        parsed.is_valid(raise_exception=True)
        data = parsed.validated_data
        amendment = pledge_amendment_request(
            actor=self.actor,
            loan=loan,
            kind=data["kind"],
            quantity=data["quantity"],
            serials=data.get("serials"),
            maturity_date=data.get("maturity_date"),
        )
        return Response(AmendmentOut(amendment).data, status=status.HTTP_201_CREATED)


class PledgeAmendmentConfirmApi(ActorMixin, APIView):
    """The lender confirms the amendment's terms: the joint application goes to the registry."""

    error_codes = ["pledge_lender_only", "invalid_pledge_transition", "pledge_terms_mismatch"]

    @idempotent_request
    @extend_schema(request=AmendmentConfirmIn, responses=AmendmentOut, operation_id="pledges_amendments_confirm")
    def post(self, request: Request, pk: int, number: int) -> Response:
        amendment = _amendment(self.actor, pk, number)
        parsed = AmendmentConfirmIn(data=request.data)
        parsed.is_valid(raise_exception=True)
        done = pledge_amendment_confirm(
            actor=self.actor, amendment=amendment, terms_digest=parsed.validated_data["terms_digest"]
        )
        return Response(AmendmentOut(done).data)


class PledgeAmendmentRegisterApi(ActorMixin, APIView):
    """The registry registers the amendment (it takes effect now, with its amendment number); above the
    four-eyes threshold the answer is 202 with an approval request for a second registry user."""

    error_codes = [
        "wrong_participant_kind",
        "invalid_pledge_transition",
        "pledge_margin_call_open",
        "ltv_limit_exceeded",
        "insufficient_available",
        "serials_not_available",
    ]

    @idempotent_request
    @extend_schema(
        request=None, responses={200: AmendmentOut, 202: PENDING_OUT}, operation_id="pledges_amendments_register"
    )
    def post(self, request: Request, pk: int, number: int) -> Response:
        amendment = _amendment(self.actor, pk, number)
        result = pledge_amendment_register_or_file(actor=self.actor, amendment=amendment)
        if isinstance(result, ApprovalRequest):
            return pending_response(result)
        return Response(AmendmentOut(result).data)


class PledgeAmendmentRejectApi(ActorMixin, APIView):
    """The lender turns a requested amendment down, the borrower withdraws it, or the registry refuses to
    register an applied one."""

    error_codes = ["invalid_pledge_transition", "pledge_lender_only"]

    @idempotent_request
    @extend_schema(request=AmendmentRejectIn, responses=AmendmentOut, operation_id="pledges_amendments_reject")
    def post(self, request: Request, pk: int, number: int) -> Response:
        amendment = _amendment(self.actor, pk, number)
        parsed = AmendmentRejectIn(data=request.data)
        parsed.is_valid(raise_exception=True)
        done = pledge_amendment_reject(actor=self.actor, amendment=amendment, reason=parsed.validated_data["reason"])
        return Response(AmendmentOut(done).data)
