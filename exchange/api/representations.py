"""Output serializers: how ledger objects look on the API (shared by several areas)."""

from __future__ import annotations

from typing import Any, cast

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.money import amount
from exchange.models import (
    Account,
    Asset,
    AuditEvent,
    Balance,
    Posting,
    Project,
    SerialBlock,
    SerialMovement,
    Transaction,
    TransactionKind,
)
from exchange.selectors.audit import NotSealed, audit_proof
from exchange.selectors.transactions import entry_totals


class ParticipantRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()


class AccountOut(serializers.ModelSerializer):
    participant = ParticipantRefOut(allow_null=True)

    class Meta:
        model = Account
        fields = ["number", "kind", "name", "participant", "created_at"]


class AssetOut(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )
    issued = serializers.SerializerMethodField(help_text=_("Units issued so far (serialised assets)."))

    class Meta:
        model = Asset
        fields = ["code", "kind", "name", "vintage", "project", "serialised", "transferable", "issued"]

    def get_issued(self, asset: Asset) -> int | None:
        return asset.next_serial - 1 if asset.serialised else None


AMOUNT_SCHEMA = {"oneOf": [{"type": "integer"}, {"type": "string", "example": "12.34"}]}


@extend_schema_field(AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """Units as an integer, cash as a decimal string (``asset`` comes from the parent object)."""

    def __init__(self, attr: str, **kwargs: Any) -> None:
        self.attr = attr
        kwargs["source"] = "*"
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, obj: Any) -> int | str:
        return amount(obj.asset, getattr(obj, self.attr))


class HoldingOut(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    asset_kind = serializers.CharField(source="asset.kind")
    total = AmountField("total")
    held = AmountField("held")
    available = AmountField("available")

    class Meta:
        model = Balance


class TradeLegOut(serializers.Serializer):
    trade = serializers.IntegerField()
    asset = serializers.CharField()
    side = serializers.CharField(help_text=_("This account's side: buy or sell."))
    quantity = serializers.IntegerField()
    price = serializers.CharField()
    turnover = serializers.CharField()
    units = serializers.IntegerField(help_text=_("Units leg: tonnes this entry moved for the trade (signed)."))
    cash = serializers.CharField(help_text=_("Cash leg: yuan this entry moved to (+) or from (-) this account."))
    fee = serializers.CharField(help_text=_("This account's fee for the trade in this entry."))


class StatementLineOut(serializers.Serializer):
    id = serializers.IntegerField()
    transaction = serializers.IntegerField(source="transaction_id")
    time = serializers.DateTimeField(source="transaction.created_at")
    kind = serializers.CharField(source="transaction.kind")
    asset = serializers.CharField(source="asset.code")
    quantity = AmountField("quantity")
    balance_after = AmountField("balance_after")
    memo = serializers.CharField(source="transaction.memo")
    trades = serializers.SerializerMethodField(
        help_text=_(
            "Settlement lines: the trades behind the line, each with its units leg (signed tonnes), cash leg "
            "(signed yuan to or from this account in this entry) and this account's fee."
        )
    )

    class Meta:
        model = Posting

    @extend_schema_field(TradeLegOut(many=True))
    def get_trades(self, posting: Posting) -> list[dict[str, Any]]:
        return cast(dict[int, list[dict[str, Any]]], self.context.get("trade_legs", {})).get(posting.pk, [])


class BlockOut(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    first = serializers.IntegerField()
    last = serializers.IntegerField()
    quantity = serializers.IntegerField(source="size")
    state = serializers.CharField()
    hold = serializers.IntegerField(source="hold_id", allow_null=True)

    class Meta:
        model = SerialBlock


class PostingOut(serializers.Serializer):
    account = serializers.CharField(source="account.number")
    asset = serializers.CharField(source="asset.code")
    quantity = AmountField("quantity")
    balance_after = serializers.SerializerMethodField(help_text=_("Shown for your own accounts only."))

    @extend_schema_field(AMOUNT_SCHEMA | {"nullable": True})
    def get_balance_after(self, posting: Posting) -> int | str | None:
        actor = self.context.get("actor")
        if actor is None or actor.sees_everything or actor.owns(posting.account.participant_id):
            return amount(posting.asset, posting.balance_after)
        return None


class MovementOut(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    first = serializers.IntegerField()
    last = serializers.IntegerField()
    source = serializers.CharField(  # type: ignore[assignment]  # not Field.source (djangorestframework-stubs#158)
        source="source.number", allow_null=True, help_text=_("Null where it is another participant's account.")
    )
    destination = serializers.CharField(
        source="destination.number", allow_null=True, help_text=_("Null where it is another participant's account.")
    )
    state = serializers.CharField()

    class Meta:
        model = SerialMovement


class EntryTotalOut(serializers.Serializer):
    asset = serializers.CharField(source="asset.code")
    quantity = AmountField("quantity", help_text=_("What the entry moved of the asset: the sum of its credits."))
    postings = serializers.IntegerField(help_text=_("The entry's postings in the asset, yours and others'."))


class TransactionOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    created_at = serializers.DateTimeField()
    memo = serializers.CharField()
    metadata = serializers.DictField()
    postings = PostingOut(
        many=True,
        source="_postings",
        help_text=_(
            "Every posting for the registry, the exchange and auditors, and for a party to an entry that books "
            "one other participant at most; of an entry booking several (a settlement batch, a bulk "
            "allocation), a participant's own postings only."
        ),
    )
    serial_ranges = MovementOut(many=True, source="_movements")
    totals = EntryTotalOut(many=True, source="_totals", help_text=_("The whole entry's totals per asset."))
    url = serializers.SerializerMethodField()
    audit = serializers.SerializerMethodField(
        help_text=_("Retirements: the audit event and, once sealed, its inclusion proof (null before).")
    )

    class Meta:
        model = Transaction

    def get_url(self, txn: Transaction) -> str:
        return f"/api/v1/transactions/{txn.pk}"

    @extend_schema_field({"type": "object", "nullable": True})
    def get_audit(self, txn: Transaction) -> dict[str, Any] | None:
        if txn.kind != TransactionKind.RETIREMENT:
            return None
        event = (
            AuditEvent.objects.filter(object_type="transaction", object_id=str(txn.pk), action="retirement.create")
            .only("seq")
            .first()
        )
        if event is None:
            return None
        try:
            proof: dict[str, Any] | None = audit_proof(event.seq)
        except NotSealed:
            proof = None
        return {"event": event.seq, "sealed": proof is not None, "proof": proof}


def transaction_payload(txn: Transaction, context: dict[str, Any]) -> dict[str, Any]:
    """A transaction with its postings and serial ranges (loaded here unless already attached)."""
    if not hasattr(txn, "_postings"):
        txn._postings = list(  # type: ignore[attr-defined]
            Posting.objects.filter(transaction=txn).select_related("account", "asset").order_by("id")
        )
    if not hasattr(txn, "_movements"):
        txn._movements = list(  # type: ignore[attr-defined]
            SerialMovement.objects.filter(transaction=txn)
            .select_related("asset", "source", "destination")
            .order_by("id")
        )
    if not hasattr(txn, "_totals"):  # else the selector's, of every posting, where it shows some only
        txn._totals = entry_totals(txn._postings)  # type: ignore[attr-defined]
    if txn.kind == TransactionKind.RETIREMENT:
        return TransactionOut(txn, context=context).data
    return _transaction_dict(txn, context.get("actor"))


_TIME = serializers.DateTimeField()


def _transaction_dict(txn: Transaction, actor: Any) -> dict[str, Any]:
    """What ``TransactionOut`` renders, key for key, built directly: the transfer API answers with it on
    every request, and the serializer machinery cost more than the transfer. Retirements (which carry an
    audit proof) go through the serializer."""

    def balance_after(p: Any) -> int | str | None:
        if actor is None or actor.sees_everything or actor.owns(p.account.participant_id):
            return amount(p.asset, p.balance_after)
        return None

    return {
        "id": txn.pk,
        "kind": txn.kind,
        "created_at": _TIME.to_representation(txn.created_at),
        "memo": txn.memo,
        "metadata": dict(txn.metadata),
        "postings": [
            {
                "account": p.account.number,
                "asset": p.asset.code,
                "quantity": amount(p.asset, p.quantity),
                "balance_after": balance_after(p),
            }
            for p in txn._postings  # type: ignore[attr-defined]
        ],
        "serial_ranges": [
            {
                "asset": m.asset.code,
                "first": m.first,
                "last": m.last,
                "source": None if "source" in getattr(m, "hidden_sides", ()) else m.source.number,
                "destination": None if "destination" in getattr(m, "hidden_sides", ()) else m.destination.number,
                "state": m.state,
            }
            for m in txn._movements  # type: ignore[attr-defined]
        ],
        "totals": [
            {"asset": t.asset.code, "quantity": amount(t.asset, t.quantity), "postings": t.postings}
            for t in txn._totals  # type: ignore[attr-defined]
        ],
        "url": f"/api/v1/transactions/{txn.pk}",
        "audit": None,
    }


class ProjectOut(serializers.ModelSerializer):
    owner = ParticipantRefOut()

    class Meta:
        model = Project
        fields = [
            "code",
            "name",
            "project_type",
            "methodology",
            "location",
            "owner",
            "crediting_start",
            "crediting_end",
            "ets_covered",
            "status",
            "registered_at",
        ]
