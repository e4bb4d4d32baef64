"""Serial number lookup: the block holding a serial, and every transaction that moved it."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from exchange.models import Asset, SerialBlock, SerialMovement


@dataclass(frozen=True, slots=True)
class SerialInfo:
    asset: Asset
    serial: int
    block: SerialBlock | None
    movements: list[SerialMovement]


def block_containing(asset: Asset, serial: int) -> SerialBlock | None:
    # Blocks never overlap: the one that starts at or below the serial, highest first, holds it if any.
    block = (
        SerialBlock.objects.filter(asset=asset, first__lte=serial)
        .select_related("account__participant", "hold")
        .order_by("-first")
        .first()
    )
    return block if block is not None and block.last >= serial else None


def movements_of(asset: Asset, serial: int) -> QuerySet[SerialMovement]:
    queryset = SerialMovement.objects.filter(asset=asset).select_related("transaction", "source", "destination")
    # Uses the GiST index on int8range(first, last) (migration 0002).
    contains = RawSQL("int8range(first, last, '[]') @> %s::bigint", [serial], output_field=BooleanField())
    queryset = queryset.alias(contains=contains).filter(contains=True)
    return queryset.order_by("transaction_id", "id")


def serial_lookup(asset: Asset, serial: int) -> SerialInfo:
    return SerialInfo(
        asset=asset, serial=serial, block=block_containing(asset, serial), movements=list(movements_of(asset, serial))
    )
