"""Markets and their rulebook versions on the API: read by any signed-in participant, published by staff.

A version is published by ``exchange.services.markets.rulebook_publish`` (exchange or registry staff): the latest
version with the changes given, effective from a day not yet over. A version is never edited; each publication
is audited with every changed value. See docs/market.md.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ParticipantKind
from exchange.api.base import ActorMixin
from exchange.api.idempotency import idempotent_request
from exchange.errors import RulebookNotFound
from exchange.models import Market, Rulebook
from exchange.selectors.rulebooks import market_of, rulebook_for, rulebooks_of
from exchange.services.markets import MarketNotFound, rulebook_payload, rulebook_publish


class RulebookModeIn(serializers.Serializer):
    mode = serializers.CharField(help_text=_("listing, block, auction or continuous."))
    sessions = serializers.CharField(required=False, help_text=_("China time, e.g. 09:30-11:30,13:00-15:00."))
    band_bp = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    min_quantity = serializers.IntegerField(required=False, min_value=1)
    max_quantity = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    buyer_fee_bp = serializers.IntegerField(required=False, min_value=0)
    seller_fee_bp = serializers.IntegerField(required=False, min_value=0)


class RulebookPublishIn(serializers.Serializer):
    effective_from = serializers.DateField(
        help_text=_("The first day (China time) of the new version: today or later.")
    )
    changes = serializers.DictField(
        required=False,
        default=dict,
        help_text=_("Rules that change, by name (e.g. position_limit_t); the rest carry over."),
    )
    modes = RulebookModeIn(many=True, required=False, help_text=_("The new version's modes; omitted: the latest's."))


def _market(code: str) -> Market:
    market = market_of(code)
    if market is None:
        raise MarketNotFound(details={"market": code})
    return market


def rulebook_out(book: Rulebook, in_effect: int | None = None) -> dict[str, Any]:
    return {
        "market": book.market.code,
        "version": book.version,
        "effective_from": book.effective_from.isoformat(),
        "in_effect": book.pk == in_effect,
        "created_at": book.created_at.isoformat() if book.created_at else None,
        "created_by": book.created_by,
        **rulebook_payload(book),
    }


def _in_effect(market: Market) -> int | None:
    try:
        return rulebook_for(market).pk
    except RulebookNotFound:
        return None


class RulebookListApi(ActorMixin, APIView):
    """A market's rulebook versions, newest first (``in_effect`` marks today's); exchange or registry staff publish
    a new version. Refusals: 404 ``market_not_found``; 400 ``invalid`` (unknown rule, a start before today or
    not after the latest version's, invalid modes); 403 ``wrong_participant_kind`` (not exchange or registry staff).
    """

    @extend_schema(responses=OpenApiTypes.ANY, operation_id="market_rulebooks")
    def get(self, request: Request, market: str) -> Response:
        found = _market(market)
        current = _in_effect(found)
        return Response([rulebook_out(book, current) for book in rulebooks_of(found)])

    @idempotent_request
    @extend_schema(request=RulebookPublishIn, responses={201: OpenApiTypes.ANY}, operation_id="market_rulebook_publish")
    def post(self, request: Request, market: str) -> Response:
        self.actor.require_kind(ParticipantKind.EXCHANGE, ParticipantKind.REGISTRY, allow_system=False)
        found = _market(market)
        v = self.validated_input(RulebookPublishIn)
        book = rulebook_publish(
            actor=self.actor,
            market=found,
            effective_from=v["effective_from"],
            changes=v.get("changes") or {},
            modes=[dict(m) for m in v["modes"]] if "modes" in v else None,
        )
        book = Rulebook.objects.select_related("market").prefetch_related("modes").get(pk=book.pk)
        return Response(rulebook_out(book, _in_effect(found)), status=status.HTTP_201_CREATED)
