"""China's trading modes on the API: listing agreement (post, the best five levels, pick), block agreement
(offer, accept, decline, counter) and one-way auction (announce, sealed bids, close). Views are thin: each
parses its input, calls one service (``exchange.services.agreements`` / ``auctions``) and renders the result."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Participant
from exchange.api.base import ActorMixin
from exchange.api.fields import AssetField, MoneyField, QuantityField, fen_to_str
from exchange.api.idempotency import idempotent_request
from exchange.api.listings import listed_asset
from exchange.api.orders import OrderOut, PlacedOut, TradeOut, client_order_id_of
from exchange.models import Auction, Order, OrderStatus, Side, TradingMode
from exchange.selectors.accounts import account_owned
from exchange.selectors.agreements import listing_book
from exchange.services.agreements import (
    CounterpartyNotFound,
    ListingNotFound,
    NotYourOffer,
    block_accept,
    block_counter,
    block_decline,
    block_offer,
    listing_pick,
    listing_post,
)
from exchange.services.auctions import auction_announce, auction_bid, auction_close, auction_of


def _placed(placed: Any) -> dict[str, Any]:
    order = Order.objects.select_related("account", "asset", "hold").get(pk=placed.order.pk)
    return {"order": OrderOut(order).data, "trades": TradeOut(placed.trades, many=True).data}


def _order(pk: int) -> dict[str, Any]:
    return OrderOut(Order.objects.select_related("account", "asset", "hold").get(pk=pk)).data


# --- listing agreement -----------------------------------------------------------------------------------
class ListingIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    side = serializers.ChoiceField(choices=Side.choices)
    price = MoneyField(min_fen=1)
    quantity = QuantityField()
    partial_allowed = serializers.BooleanField(default=True)
    client_order_id = serializers.CharField(max_length=64, required=False)


class ListingPostApi(ActorMixin, APIView):
    """Post a listing (listing agreement): it rests until picked, cancelled (``/orders/{id}/cancel``) or the
    session's close."""

    @idempotent_request
    @extend_schema(request=ListingIn, responses={201: OrderOut}, operation_id="listings_post")
    def post(self, request: Request) -> Response:
        v = self.validated_input(ListingIn)
        listing = listing_post(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            asset=v["asset"],
            side=v["side"],
            price_fen=v["price"],
            quantity=v["quantity"],
            partial_allowed=v["partial_allowed"],
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_order(listing.pk), status=status.HTTP_201_CREATED)


class PickIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    quantity = QuantityField(required=False, help_text=_("Default: all that is left of the listing."))
    client_order_id = serializers.CharField(max_length=64, required=False)


class LevelPickIn(PickIn):
    asset = AssetField()
    side = serializers.ChoiceField(choices=Side.choices, help_text=_("The listings' side: sell to buy from the asks."))
    price = MoneyField(min_fen=1)
    quantity = QuantityField()


class ListingPickApi(ActorMixin, APIView):
    """Pick a listing (摘牌): all of it or a quantity (if it allows partial fills), at its price."""

    @idempotent_request
    @extend_schema(request=PickIn, responses={201: PlacedOut}, operation_id="listings_pick")
    def post(self, request: Request, pk: int) -> Response:
        v = self.validated_input(PickIn)
        listing = Order.objects.filter(pk=pk, trading_mode=TradingMode.LISTING).first()
        if listing is None:
            raise ListingNotFound(details={"listing": pk})
        placed = listing_pick(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            listing=listing,
            quantity=v.get("quantity"),
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_placed(placed), status=status.HTTP_201_CREATED)


class LevelPickApi(ActorMixin, APIView):
    """Pick a quantity at one price level: its listings fill in time order."""

    @idempotent_request
    @extend_schema(request=LevelPickIn, responses={201: PlacedOut}, operation_id="listings_pick_level")
    def post(self, request: Request) -> Response:
        v = self.validated_input(LevelPickIn)
        placed = listing_pick(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            asset=v["asset"],
            side=v["side"],
            price_fen=v["price"],
            quantity=v["quantity"],
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_placed(placed), status=status.HTTP_201_CREATED)


class ListingBookApi(ActorMixin, APIView):
    """The listing agreement's book: the best five price levels per side, each with its listings (id,
    quantity left, whole-only or not), oldest first."""

    @extend_schema(responses=OpenApiTypes.ANY)
    def get(self, request: Request, asset: str) -> Response:
        book = listing_book(listed_asset(asset))
        return Response(
            {
                side: [
                    {
                        "price": fen_to_str(level.price_fen),
                        "quantity": level.quantity,
                        "listings": [
                            {"id": pk, "quantity": q, "partial_allowed": partial} for pk, q, partial in level.listings
                        ],
                    }
                    for level in levels
                ]
                for side, levels in book.items()
            }
        )


# --- block agreement -------------------------------------------------------------------------------------
class BlockOfferIn(ListingIn):
    partial_allowed = None  # type: ignore[assignment]
    counterparty = serializers.IntegerField(
        required=False, allow_null=True, help_text=_("The named counterparty's participant id; none: a public block.")
    )


class BlockListApi(ActorMixin, generics.ListAPIView):
    """Open block offers you made, addressed to you, or public; POST makes an offer."""

    serializer_class = OrderOut

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        mine = self.actor.member_participant_id
        offers = Order.objects.select_related("account", "asset", "hold").filter(
            trading_mode=TradingMode.BLOCK, status=OrderStatus.OPEN
        )
        if self.actor.sees_everything:
            return offers.order_by("-id")
        return offers.filter(Q(participant_id=mine) | Q(counterparty_id=mine) | Q(counterparty__isnull=True)).order_by(
            "-id"
        )

    @idempotent_request
    @extend_schema(request=BlockOfferIn, responses={201: OrderOut}, operation_id="blocks_offer")
    def post(self, request: Request) -> Response:
        v = self.validated_input(BlockOfferIn)
        counterparty = None
        if v.get("counterparty") is not None:
            counterparty = Participant.objects.filter(pk=v["counterparty"]).first()
            if counterparty is None:
                raise CounterpartyNotFound(details={"counterparty": v["counterparty"]})
        offer = block_offer(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            asset=v["asset"],
            side=v["side"],
            price_fen=v["price"],
            quantity=v["quantity"],
            counterparty=counterparty,
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_order(offer.pk), status=status.HTTP_201_CREATED)


def _offer(pk: int) -> Order:
    offer = Order.objects.select_related("asset").filter(pk=pk, trading_mode=TradingMode.BLOCK).first()
    if offer is None:
        raise NotYourOffer(details={"offer": pk})
    return offer


class AcceptIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    client_order_id = serializers.CharField(max_length=64, required=False)


class CounterIn(AcceptIn):
    price = MoneyField(min_fen=1)
    quantity = QuantityField(required=False)


class BlockAcceptApi(ActorMixin, APIView):
    @idempotent_request
    @extend_schema(request=AcceptIn, responses={201: PlacedOut}, operation_id="blocks_accept")
    def post(self, request: Request, pk: int) -> Response:
        v = self.validated_input(AcceptIn)
        placed = block_accept(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            offer=_offer(pk),
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_placed(placed), status=status.HTTP_201_CREATED)


class BlockDeclineApi(ActorMixin, APIView):
    @idempotent_request
    @extend_schema(request=None, responses=OrderOut, operation_id="blocks_decline")
    def post(self, request: Request, pk: int) -> Response:
        declined = block_decline(actor=self.actor, offer=_offer(pk))
        return Response(_order(declined.pk))


class BlockCounterApi(ActorMixin, APIView):
    @idempotent_request
    @extend_schema(request=CounterIn, responses={201: OrderOut}, operation_id="blocks_counter")
    def post(self, request: Request, pk: int) -> Response:
        v = self.validated_input(CounterIn)
        counter = block_counter(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            offer=_offer(pk),
            price_fen=v["price"],
            quantity=v.get("quantity"),
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_order(counter.pk), status=status.HTTP_201_CREATED)


# --- one-way auction -------------------------------------------------------------------------------------
class AuctionOut(serializers.ModelSerializer):
    asset = serializers.CharField(source="asset.code")
    reserve_price = MoneyField(source="reserve_price_fen")
    clearing_price = serializers.SerializerMethodField()

    class Meta:
        model = Auction
        fields = [
            "id",
            "asset",
            "initiator",
            "quantity",
            "reserve_price",
            "opens_at",
            "closes_at",
            "pricing",
            "status",
            "sold",
            "clearing_price",
            "closed_at",
        ]

    def get_clearing_price(self, auction: Auction) -> str | None:
        return fen_to_str(auction.clearing_price_fen) if auction.clearing_price_fen else None


class AuctionIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    asset = AssetField()
    quantity = QuantityField()
    reserve_price = MoneyField(min_fen=1)
    opens_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    client_order_id = serializers.CharField(max_length=64, required=False)


class BidIn(serializers.Serializer):
    account = serializers.CharField(max_length=32)
    price = MoneyField(min_fen=1)
    quantity = QuantityField()
    client_order_id = serializers.CharField(max_length=64, required=False)


class AuctionListApi(ActorMixin, generics.ListAPIView):
    """One-way auctions, newest first (bids stay sealed); POST announces one."""

    serializer_class = AuctionOut
    queryset = Auction.objects.select_related("asset").order_by("-id")

    @idempotent_request
    @extend_schema(request=AuctionIn, responses={201: AuctionOut}, operation_id="auctions_announce")
    def post(self, request: Request) -> Response:
        v = self.validated_input(AuctionIn)
        auction = auction_announce(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            asset=v["asset"],
            quantity=v["quantity"],
            reserve_price_fen=v["reserve_price"],
            opens_at=v["opens_at"],
            closes_at=v["closes_at"],
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(AuctionOut(auction).data, status=status.HTTP_201_CREATED)


class AuctionBidApi(ActorMixin, APIView):
    """Place a sealed bid; its cash is held until the close."""

    @idempotent_request
    @extend_schema(request=BidIn, responses={201: OrderOut}, operation_id="auctions_bid")
    def post(self, request: Request, pk: int) -> Response:
        v = self.validated_input(BidIn)
        bid = auction_bid(
            actor=self.actor,
            account=account_owned(self.actor, v["account"]),
            auction=auction_of(pk),
            price_fen=v["price"],
            quantity=v["quantity"],
            client_order_id=client_order_id_of(self, v.get("client_order_id")),
        )
        return Response(_order(bid.pk), status=status.HTTP_201_CREATED)


class AuctionCloseApi(ActorMixin, APIView):
    """Close an auction whose window has ended (its initiator or exchange staff): allocate and release."""

    @idempotent_request
    @extend_schema(request=None, responses=AuctionOut, operation_id="auctions_close")
    def post(self, request: Request, pk: int) -> Response:
        return Response(AuctionOut(auction_close(actor=self.actor, auction=auction_of(pk))).data)
