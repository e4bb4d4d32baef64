"""The journal and the balances it keeps.

A ``Transaction`` with its ``Posting`` rows is immutable once written (a PostgreSQL trigger refuses
UPDATE and DELETE); per transaction and asset the postings sum to zero (a deferred constraint trigger
checks it at commit). ``Balance`` is the materialised sum of an account's postings in one asset,
updated in the same database transaction under a row lock, so reads never sum history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.assets import Asset


class AccountKind(models.TextChoices):
    HOLDING = "holding", _("Holding account")
    ISSUANCE = "issuance", _("Issuance (system)")
    RETIREMENT = "retirement", _("Retirement sink (system)")
    CANCELLATION = "cancellation", _("Cancellation sink (system)")
    SURRENDER = "surrender", _("Surrender sink (system)")
    FEE = "fee", _("Fee income (system)")
    CLEARING = "clearing", _("Settlement clearing (system)")


SYSTEM_ACCOUNT_KINDS = frozenset(k for k in AccountKind.values if k != AccountKind.HOLDING)


class Account(models.Model):
    number = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=16, choices=AccountKind.choices, default=AccountKind.HOLDING)
    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts"
    )
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind=AccountKind.HOLDING) | models.Q(participant__isnull=False),
                name="account_holding_has_participant",
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=~models.Q(kind=AccountKind.HOLDING), name="account_one_system_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_system(self) -> bool:
        return self.kind != AccountKind.HOLDING


class TransactionKind(models.TextChoices):
    ISSUANCE = "issuance", _("CCER issuance")
    ALLOCATION = "allocation", _("CEA allocation")
    TRANSFER = "transfer", _("Transfer")
    RETIREMENT = "retirement", _("Retirement")
    CANCELLATION = "cancellation", _("Cancellation (correction)")
    TAKEBACK = "takeback", _("Take-back of over-allocation")
    SURRENDER = "surrender", _("Surrender for compliance")
    SETTLEMENT = "settlement", _("Trade settlement")
    DEPOSIT = "deposit", _("Cash deposit")
    WITHDRAWAL = "withdrawal", _("Cash withdrawal")
    PLEDGE_ENFORCEMENT = "pledge_enforcement", _("Pledge enforcement")


class Transaction(models.Model):
    """A journal entry. Immutable; a correction is a new transaction."""

    kind = models.CharField(max_length=32, choices=TransactionKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    # Kept as data: posted rows are never rewritten. Clients' Idempotency-Keys live in IdempotentRequest
    # (exchange.services.idempotency); older entries keep the keys they were posted with, and new ones
    # hold only a natural reference that must be unique in its scope (deposit:, withdrawal:, issuance:,
    # pending:<id>), refused with its own 409 by the service that writes it.
    idempotency_scope = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=160, null=True, blank=True)  # noqa: DJ001 - NULL: no key (partial unique index)
    request_hash = models.CharField(max_length=64)
    memo = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_scope", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="transaction_idempotency_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["kind", "-id"], name="transaction_kind_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}"


class Posting(models.Model):
    """One side of a movement: a signed quantity of an asset on an account. Immutable."""

    # The references are checked once per INSERT statement by a trigger, not per row by foreign keys
    # (greenledger_posting_references, migration 0081; see docs/architecture.md, The ledger).
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="postings", db_constraint=False)
    # Indexed together with the asset by posting_statement_idx, not one by one.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="postings", db_index=False, db_constraint=False
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    quantity = models.BigIntegerField(help_text=_("Units, or fen for cash; negative leaves the account."))
    balance_after = models.BigIntegerField(help_text=_("The account's total in this asset after this posting."))

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(quantity=0), name="posting_quantity_nonzero"),
        ]
        indexes = [
            models.Index(fields=["account", "asset", "id"], name="posting_statement_idx"),
            # A statement of every asset, newest first, keyset-paginated: no scan of the account's history.
            models.Index(fields=["account", "id"], name="posting_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.quantity:+d} {self.asset_id}"


class Balance(models.Model):
    """``total`` and ``held`` of one account in one asset; ``available = total - held``."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="balances", db_index=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="balances")
    total = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    allow_negative = models.BooleanField(
        default=False, help_text=_("Only the issuance account: its negative total is the issued supply.")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="balance_account_asset_unique"),
            models.CheckConstraint(
                condition=models.Q(allow_negative=True)
                | (models.Q(held__gte=0) & models.Q(held__lte=models.F("total"))),
                name="balance_held_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.asset_id}: {self.total} ({self.held} held)"

    @property
    def available(self) -> int:
        return self.total - self.held


class Retirement(models.Model):
    """Units cancelled for offsetting (注销), for good: who benefits and why. Backs the certificate."""

    transaction = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="retirement")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="retirements")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="retirements")
    quantity = models.BigIntegerField()
    beneficiary = models.CharField(max_length=200)
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="retirement_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} t of {self.asset_id} for {self.beneficiary}"


SINK_STATE = {
    AccountKind.RETIREMENT: "retired",
    AccountKind.CANCELLATION: "cancelled",
    AccountKind.SURRENDER: "surrendered",
}
