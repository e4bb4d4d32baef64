"""Reading the journal: a transaction's page, and the history of any serial number."""

from __future__ import annotations

from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import clock
from core.errors import NotFound
from exchange.api.base import ActorMixin
from exchange.api.representations import TransactionOut, transaction_payload
from exchange.models import Asset, BlockState
from exchange.selectors.serials import serial_lookup
from exchange.selectors.transactions import transaction_for


class TransactionDetailApi(ActorMixin, APIView):
    """A transaction with its postings and the serial ranges it moved (parties and overseers)."""

    @extend_schema(responses=TransactionOut)
    def get(self, request: Request, pk: int) -> Response:
        txn, postings, movements, totals = transaction_for(self.actor, pk)
        txn._postings, txn._movements, txn._totals = postings, movements, totals  # type: ignore[attr-defined]
        return Response(transaction_payload(txn, {"actor": self.actor}))


SERIAL_OUT = inline_serializer(
    "SerialLookup",
    {
        "asset": serializers.CharField(),
        "serial": serializers.IntegerField(),
        "issued": serializers.BooleanField(),
        "block": serializers.DictField(allow_null=True),
        "movements": serializers.ListField(child=serializers.DictField()),
    },
)


class SerialLookupApi(ActorMixin, APIView):
    """Where a serial number is: its block, holder and state, and every transaction that moved it."""

    @extend_schema(responses=SERIAL_OUT)
    def get(self, request: Request, asset: str, serial: int) -> Response:
        found = Asset.objects.filter(code=asset).first()
        if found is None:
            raise NotFound(gettext("No such asset."), details={"asset": asset})
        info = serial_lookup(found, serial)
        block = None
        if info.block is not None:
            holder = info.block.account
            # A frozen block names neither the court nor the holder, except to the holder and overseers.
            hidden = info.block.state == BlockState.FROZEN and not (
                self.actor.sees_everything or self.actor.owns(holder.participant_id)
            )
            block = {
                "first": info.block.first,
                "last": info.block.last,
                "state": info.block.state,
                "account": None if hidden else holder.number,
                "account_kind": holder.kind,
                "holder": None if hidden else (holder.participant.name if holder.participant else holder.name),
                "hold": info.block.hold_id
                if self.actor.sees_everything or self.actor.owns(holder.participant_id)
                else None,
            }
        return Response(
            {
                "asset": found.code,
                "serial": serial,
                "issued": block is not None,
                "block": block,
                "movements": [
                    {
                        "transaction": m.transaction_id,
                        "kind": m.transaction.kind,
                        "time": clock.local_iso(m.transaction.created_at),
                        "first": m.first,
                        "last": m.last,
                        "source": m.source.number,
                        "destination": m.destination.number,
                        "state": m.state,
                    }
                    for m in info.movements
                ],
            }
        )
