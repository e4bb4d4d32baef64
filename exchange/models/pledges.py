"""Pledge loans (质押): a borrower's allowances or CCER frozen as collateral for a bank's loan.

A ``PledgeLoan`` moves through requested -> registered -> released, or registered -> defaulted ->
enforced; a request may also be withdrawn (by the borrower) or rejected (by the lender). Its units are
frozen by ``PLEDGE`` holds on exact serial blocks, one ``PledgeCollateral`` row per hold (the first at
registration, one per top-up). The money terms are integers: principal in fen, the annual rate and
the loan-to-value levels in basis points (1 bp = 0.01%).

``PledgeValuation`` (one per pledge per day, at the closing price) and ``MarginCall`` rows are
append-only records (a PostgreSQL trigger refuses UPDATE and DELETE); the loan keeps the latest
valuation and its open margin call, if any, so the loan book filters and sorts without joins.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Participant
from exchange.models.assets import Asset
from exchange.models.holds import Hold
from exchange.models.ledger import Account, Transaction
from exchange.models.trading import Order

BP = 10_000  # basis points in one


class PledgeStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPLIED = "applied", _("Applied for registration by both parties")
    REGISTERED = "registered", _("Registered")
    RELEASED = "released", _("Released")
    DEFAULTED = "defaulted", _("Defaulted")
    ENFORCED = "enforced", _("Enforced")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    REJECTED = "rejected", _("Rejected")


# States in which the registry has registered the pledge (and its reference exists).
REGISTERED_STATES = (PledgeStatus.REGISTERED, PledgeStatus.RELEASED, PledgeStatus.DEFAULTED, PledgeStatus.ENFORCED)


class PledgeKind(models.TextChoices):
    UNITS = "units", _("Units held")
    FUTURE = "future", _("Future CCER of a registered project (a pledge of the right to its issuance), not issued yet")


class DayCount(models.TextChoices):
    """How a day's interest is counted: a 360th (Chinese loan practice for CNY, the default) or a 365th of
    the annual rate, for the actual number of days."""

    ACT_360 = "act/360", _("Actual/360")
    ACT_365 = "act/365", _("Actual/365")


DAYS_IN_YEAR: dict[str, int] = {DayCount.ACT_360: 360, DayCount.ACT_365: 365}


class DefaultReason(models.TextChoices):
    MATURED = "matured", _("Not repaid at maturity")
    MARGIN_CALL_MISSED = "margin_call_missed", _("Margin call not met by its cure date")
    LIQUIDATION_LEVEL = "liquidation_level", _("LTV at or above the liquidation level")


class PledgeLoan(models.Model):
    borrower = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="pledges_given")
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="pledges",
        help_text=_("The borrower's account holding the units."),
    )
    lender = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="pledges_taken")
    lender_account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pledges_as_lender",
        help_text=_("The lender's account that receives enforced units and sale proceeds (set at registration)."),
    )
    asset = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pledges",
        help_text=_("The units pledged; for a pledge of future CCER, set when the registry issues them."),
    )
    kind = models.CharField(max_length=8, choices=PledgeKind.choices, default=PledgeKind.UNITS)
    project = models.ForeignKey(
        "exchange.Project",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="future_pledges",
        help_text=_("Pledge of future CCER: the registered project whose expected issuance is pledged."),
    )
    vintage = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Pledge of future CCER: the vintage of the expected issuance.")
    )
    quantity = models.BigIntegerField(help_text=_("Units pledged, top-ups included (tCO2e)."))
    serials = models.JSONField(
        null=True, blank=True, help_text=_("The exact range [first, last] the borrower asked to pledge, if any.")
    )
    principal_fen = models.BigIntegerField(help_text=_("The loan's principal in fen."))
    annual_rate_bp = models.PositiveIntegerField(
        help_text=_("Annual simple interest in basis points (385 = 3.85%), counted by the loan's day count.")
    )
    day_count = models.CharField(
        max_length=8,
        choices=DayCount.choices,
        default=DayCount.ACT_360,
        help_text=_("Actual/360 (the default for CNY loans) or actual/365."),
    )
    start_date = models.DateField(help_text=_("Interest accrues from this day."))
    maturity_date = models.DateField()
    ltv_limit_bp = models.PositiveIntegerField(help_text=_("Highest LTV at which the loan may be registered (bp)."))
    margin_call_bp = models.PositiveIntegerField(help_text=_("LTV at or above which a margin call is raised (bp)."))
    liquidation_bp = models.PositiveIntegerField(
        help_text=_("LTV at or above which the lender may declare default at once (bp).")
    )
    cure_period_days = models.PositiveSmallIntegerField(
        default=3, help_text=_("Days the borrower has to meet a margin call before the lender may declare default.")
    )
    registration_reference = models.CharField(
        max_length=32,
        null=True,
        blank=True,
        unique=True,
        help_text=_("The registration number the registry gave the pledge (CNPL-<year>-<id>)."),
    )
    terms_digest = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("SHA-256 of the terms the borrower applied with; the lender confirms the same digest."),
    )
    lender_confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the lender confirmed the same terms (the joint application).")
    )
    external_registration_reference = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("The lender's registration number in the movable-property financing registration system."),
    )
    external_registration_recorded_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=PledgeStatus.choices, default=PledgeStatus.REQUESTED)
    # The latest valuation (at request, registration, top-up and each daily close).
    price_fen = models.BigIntegerField(help_text=_("Price per tonne of the latest valuation (fen)."))
    collateral_value_fen = models.BigIntegerField()
    cash_collateral_fen = models.BigIntegerField(
        default=0,
        help_text=_("Cash of the borrower held under the pledge as substitute collateral (fen); part of the value."),
    )
    ltv_bp = models.PositiveIntegerField(help_text=_("principal / collateral value, basis points rounded up."))
    valued_on = models.DateField()
    margin_call = models.OneToOneField(
        "exchange.MarginCall",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="open_on",
        help_text=_("The margin call open now, if any (one per breach)."),
    )
    past_maturity_on = models.DateField(
        null=True, blank=True, help_text=_("When the daily job found it past maturity.")
    )
    defaulted_on = models.DateField(null=True, blank=True)
    default_reason = models.CharField(max_length=24, choices=DefaultReason.choices, blank=True)
    closed_on = models.DateField(null=True, blank=True, help_text=_("Released, enforced, withdrawn or rejected on."))
    interest_fen = models.BigIntegerField(
        null=True, blank=True, help_text=_("Interest due when the loan was repaid or enforced (fen).")
    )
    note = models.CharField(max_length=500, blank=True, help_text=_("The lender's reason for a rejection, etc."))
    requested_at = models.DateTimeField()
    registered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0, principal_fen__gt=0, annual_rate_bp__lte=BP),
                name="pledge_amounts_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(ltv_limit_bp__gt=0)
                & models.Q(margin_call_bp__gt=models.F("ltv_limit_bp"))
                & models.Q(liquidation_bp__gt=models.F("margin_call_bp"))
                & models.Q(liquidation_bp__lte=BP),
                name="pledge_levels_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(maturity_date__gt=models.F("start_date")), name="pledge_maturity_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(day_count__in=[DayCount.ACT_360, DayCount.ACT_365]), name="pledge_day_count_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(kind=PledgeKind.UNITS, asset__isnull=False)
                | models.Q(kind=PledgeKind.FUTURE, asset__isnull=True, project__isnull=False, vintage__isnull=False),
                name="pledge_kind_has_its_object",
            ),
            models.CheckConstraint(
                condition=models.Q(price_fen__gt=0, collateral_value_fen__gt=0), name="pledge_valuation_positive"
            ),
            models.CheckConstraint(condition=~models.Q(borrower=models.F("lender")), name="pledge_lender_not_borrower"),
            models.CheckConstraint(
                condition=models.Q(cash_collateral_fen__gte=0), name="pledge_cash_collateral_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=REGISTERED_STATES, registration_reference__isnull=False)
                | (~models.Q(status__in=REGISTERED_STATES) & models.Q(registration_reference__isnull=True)),
                name="pledge_registered_iff_reference",
            ),
        ]
        indexes = [
            models.Index(fields=["lender", "status", "maturity_date"], name="pledge_loan_book_idx"),
            models.Index(fields=["borrower", "-id"], name="pledge_borrower_idx"),
            models.Index(fields=["status", "id"], name="pledge_status_idx"),
        ]

    def __str__(self) -> str:
        return self.registration_reference or f"pledge request {self.pk}"

    @property
    def reference(self) -> str:
        return str(self)

    @property
    def enforcement(self) -> PledgeEnforcement | None:
        """The latest round of enforcement, if any (uses ``prefetch_related("enforcements")``)."""
        return max(self.enforcements.all(), key=lambda e: e.pk, default=None)


class CollateralKind(models.TextChoices):
    INITIAL = "initial", _("Pledged at registration")
    TOP_UP = "top_up", _("Top-up")
    UNSOLD = "unsold", _("Unsold in an enforcement sale, still pledged")
    SUBSTITUTE = "substitute", _("Substitute collateral for units released for compliance")
    ISSUED = "issued", _("Frozen at issuance (pledge of future CCER)")
    CASH = "cash", _("Cash held as substitute collateral for units released for compliance")


class PledgeCollateral(models.Model):
    """One hold of a pledge's units: the serial ranges it froze, recorded when it was placed."""

    loan = models.ForeignKey(PledgeLoan, on_delete=models.PROTECT, related_name="collateral")
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="pledge_collateral")
    kind = models.CharField(max_length=12, choices=CollateralKind.choices)
    quantity = models.BigIntegerField()
    serial_ranges = models.JSONField(help_text=_("[[first, last], ...] frozen by the hold."))
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = _("pledge collateral")
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="collateral_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} t for pledge {self.loan_id} ({self.kind})"


class PriceSource(models.TextChoices):
    CLOSE = "close", _("Daily close")
    REFERENCE = "reference", _("Listing reference price (no close yet)")


class PledgeValuation(models.Model):
    """A pledge marked to market at a day's close. Append-only; one per pledge per day."""

    loan = models.ForeignKey(PledgeLoan, on_delete=models.PROTECT, related_name="valuations")
    day = models.DateField()
    price_fen = models.BigIntegerField()
    price_day = models.DateField(
        null=True, blank=True, help_text=_("The day of the close used (None: reference price).")
    )
    price_source = models.CharField(max_length=16, choices=PriceSource.choices)
    quantity = models.BigIntegerField()
    value_fen = models.BigIntegerField()
    principal_fen = models.BigIntegerField()
    ltv_bp = models.PositiveIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["loan", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["loan", "day"], name="valuation_one_per_day"),
            models.CheckConstraint(
                condition=models.Q(price_fen__gt=0, quantity__gt=0, principal_fen__gt=0)
                & models.Q(value_fen=models.F("price_fen") * models.F("quantity")),
                name="valuation_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"pledge {self.loan_id} on {self.day}: LTV {self.ltv_bp} bp"


class MarginCall(models.Model):
    """A breach of the margin-call level, raised once per breach. Append-only.

    The loan's ``margin_call`` points at the call while it is open; a valuation or top-up that brings
    LTV back under the level clears it (the borrower met the call), and a later breach raises a new one.
    """

    loan = models.ForeignKey(PledgeLoan, on_delete=models.PROTECT, related_name="margin_calls")
    valuation = models.OneToOneField(PledgeValuation, on_delete=models.PROTECT, related_name="margin_call")
    raised_on = models.DateField()
    ltv_bp = models.PositiveIntegerField()
    level_bp = models.PositiveIntegerField(help_text=_("The loan's margin-call level when it was raised."))
    cure_by = models.DateField(help_text=_("After this day the lender may declare default."))
    notified = models.JSONField(
        default=list,
        help_text=_(
            "Empty: each party's notice and its delivery are Notice rows. Calls raised before notices "
            "had their own rows list the addresses they were addressed to."
        ),
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ltv_bp__gte=models.F("level_bp"), cure_by__gte=models.F("raised_on")),
                name="margin_call_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"margin call on pledge {self.loan_id} ({self.raised_on}, LTV {self.ltv_bp} bp)"


class EnforcementMethod(models.TextChoices):
    AGREEMENT = "agreement", _("Taken at a valuation agreed with the borrower")
    SALE = "sale", _("Units sold on the exchange")
    COURT = "court", _("Executed on a court order")
    # Before lawful enforcement: every pledged unit taken whole. Kept so the records of that time stay
    # readable; no service enforces this way any more (Civil Code art. 428 forbids pre-agreed forfeiture).
    TRANSFER = "transfer", _("Taken whole (no longer used)")


class EnforcementStatus(models.TextChoices):
    PROPOSED = "proposed", _("Valuation proposed, awaiting the borrower's agreement")
    SELLING = "selling", _("Selling on the exchange")
    COMPLETED = "completed", _("Completed")
    DECLINED = "declined", _("Valuation declined by the borrower")


OPEN_ENFORCEMENT = (EnforcementStatus.PROPOSED, EnforcementStatus.SELLING)


class PledgeEnforcement(models.Model):
    """One round of enforcement of a defaulted pledge, and to the fen what each party got.

    The debt (``amount_due_fen``) is principal, interest to ``day`` by the loan's day count and the
    lender's enforcement costs, less what earlier rounds gave the lender. No round gives the lender more
    value than that (a constraint says it for every method):

    - by agreement: units move to the lender at the agreed price, as many whole tonnes as the debt covers
      (``value_fen`` = units x price <= debt); the rest are released to the borrower;
    - by sale: the order offers only the units the debt needs (the rest stay pledged); each settlement of
      its trades pays the lender from the net proceeds (turnover less the seller's fee, which the borrower
      bears) until it is paid; the rest is the borrower's cash. Units left unsold while the lender is owed
      stay pledged (``units_unsold``), with the units not offered, for another round, never handed to the
      lender; once the debt is paid they are released (``units_released``);
    - by court order: the registry executes what the order names (``court_reference`` and the SHA-256 of
      the order's document): units to the lender at the value it states, the rest released.
    """

    loan = models.ForeignKey(PledgeLoan, on_delete=models.PROTECT, related_name="enforcements")
    method = models.CharField(max_length=9, choices=EnforcementMethod.choices)
    status = models.CharField(max_length=16, choices=EnforcementStatus.choices)
    day = models.DateField(help_text=_("The day enforcement began; interest runs to it."))
    interest_fen = models.BigIntegerField()
    costs_fen = models.BigIntegerField(default=0, help_text=_("The lender's costs of enforcement (fen)."))
    amount_due_fen = models.BigIntegerField(
        help_text=_("The debt this round secures: principal, interest to the day and costs, less earlier rounds.")
    )
    price_fen = models.BigIntegerField(
        null=True, blank=True, help_text=_("Sale: the order's limit price. Agreement, court: the value per tonne.")
    )
    value_fen = models.BigIntegerField(
        default=0, help_text=_("Agreement, court: the value of the units the lender took (units x price).")
    )
    order = models.OneToOneField(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="pledge_enforcement"
    )
    sale_hold = models.OneToOneField(
        Hold,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="pledge_sale",
        help_text=_("The order's hold."),
    )
    units_sold = models.BigIntegerField(default=0)
    proceeds_fen = models.BigIntegerField(default=0, help_text=_("Turnover of settled sales less the seller's fees."))
    fees_fen = models.BigIntegerField(default=0, help_text=_("Seller's fees on the sale (borne by the borrower)."))
    paid_to_lender_fen = models.BigIntegerField(default=0)
    cash_to_lender_fen = models.BigIntegerField(
        default=0, help_text=_("Cash held as collateral that the lender took first, up to the debt (fen).")
    )
    units_to_lender = models.BigIntegerField(default=0)
    units_released = models.BigIntegerField(default=0, help_text=_("Units given back to the borrower."))
    units_unsold = models.BigIntegerField(default=0, help_text=_("Sale: units unsold that stay pledged."))
    court_reference = models.CharField(max_length=100, blank=True, help_text=_("The court order's reference."))
    court_document_sha256 = models.CharField(
        max_length=64, blank=True, help_text=_("SHA-256 of the court order's document, hex.")
    )
    transaction = models.ForeignKey(
        Transaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The journal entry that moved units to the lender, if any."),
    )
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    interest_fen__gte=0,
                    costs_fen__gte=0,
                    value_fen__gte=0,
                    units_sold__gte=0,
                    proceeds_fen__gte=0,
                    fees_fen__gte=0,
                    paid_to_lender_fen__gte=0,
                    units_to_lender__gte=0,
                    units_released__gte=0,
                    units_unsold__gte=0,
                )
                & models.Q(paid_to_lender_fen__lte=models.F("amount_due_fen"))
                & models.Q(paid_to_lender_fen__lte=models.F("proceeds_fen"))
                & models.Q(value_fen__lte=models.F("amount_due_fen")),
                name="enforcement_amounts_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(cash_to_lender_fen__gte=0)
                & models.Q(
                    cash_to_lender_fen__lte=models.F("amount_due_fen")
                    - models.F("paid_to_lender_fen")
                    - models.F("value_fen")
                ),
                name="enforcement_cash_within_debt",
            ),
            models.CheckConstraint(
                condition=models.Q(method__in=[EnforcementMethod.TRANSFER])
                | (
                    models.Q(method=EnforcementMethod.SALE, order__isnull=False, sale_hold__isnull=False)
                    & models.Q(price_fen__gt=0)
                )
                | models.Q(method__in=[EnforcementMethod.AGREEMENT, EnforcementMethod.COURT], price_fen__gt=0),
                name="enforcement_sale_has_order",
            ),
            models.CheckConstraint(
                condition=~models.Q(method=EnforcementMethod.COURT)
                | (~models.Q(court_reference="") & models.Q(court_document_sha256__regex=r"^[0-9a-f]{64}$")),
                name="enforcement_court_order_named",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=[EnforcementStatus.COMPLETED, EnforcementStatus.DECLINED], completed_at__isnull=False
                )
                | models.Q(status=EnforcementStatus.SELLING, completed_at__isnull=True, method=EnforcementMethod.SALE)
                | models.Q(
                    status=EnforcementStatus.PROPOSED, completed_at__isnull=True, method=EnforcementMethod.AGREEMENT
                ),
                name="enforcement_status_valid",
            ),
            models.UniqueConstraint(
                fields=["loan"],
                condition=models.Q(status__in=OPEN_ENFORCEMENT),
                name="enforcement_one_open_per_loan",
            ),
        ]

    def __str__(self) -> str:
        return f"enforcement of pledge {self.loan_id} by {self.method} ({self.status})"

    @property
    def received_by_lender_fen(self) -> int:
        """What the lender got against the debt: the cash collateral taken first, then the sale proceeds paid
        or the value of the units taken."""
        return self.cash_to_lender_fen + (
            self.paid_to_lender_fen if self.method == EnforcementMethod.SALE else self.value_fen
        )

    @property
    def surplus_fen(self) -> int:
        """Net sale proceeds left with the borrower."""
        return self.proceeds_fen - self.paid_to_lender_fen

    @property
    def shortfall_fen(self) -> int:
        """What the lender is still owed after this round (for a sale, counted once it has completed)."""
        if self.method == EnforcementMethod.TRANSFER:
            return 0
        return max(self.amount_due_fen - self.received_by_lender_fen, 0)


class AmendmentKind(models.TextChoices):
    TOP_UP = "top_up", _("Top-up: more units pledged")
    PARTIAL_RELEASE = "partial_release", _("Partial release: units leave the pledge")
    EXTENSION = "extension", _("Extension: a later maturity")


class AmendmentStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested by the borrower")
    APPLIED = "applied", _("Applied for registration by both parties")
    REGISTERED = "registered", _("Registered")
    REJECTED = "rejected", _("Rejected")


OPEN_AMENDMENT = (AmendmentStatus.REQUESTED, AmendmentStatus.APPLIED)


class PledgeAmendment(models.Model):
    """A change to a registered pledge (top-up, partial release, extension), registered like the pledge
    itself: the borrower applies, the lender confirms the same terms (``terms_digest``), the registry
    registers it (four eyes above the threshold) with an amendment number ``<registration number>-A<n>``.
    It takes effect at registration. One amendment of a pledge is open at a time."""

    loan = models.ForeignKey(PledgeLoan, on_delete=models.PROTECT, related_name="amendments")
    kind = models.CharField(max_length=16, choices=AmendmentKind.choices)
    quantity = models.BigIntegerField(default=0, help_text=_("Tonnes added or released (0 for an extension)."))
    serials = models.JSONField(null=True, blank=True, help_text=_("[first, last] of a top-up, if named."))
    maturity_date = models.DateField(null=True, blank=True, help_text=_("The new maturity of an extension."))
    previous_maturity_date = models.DateField(null=True, blank=True)
    terms_digest = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=AmendmentStatus.choices, default=AmendmentStatus.REQUESTED)
    number = models.PositiveSmallIntegerField(null=True, blank=True)
    reference = models.CharField(max_length=40, null=True, blank=True, unique=True)
    collateral = models.OneToOneField(
        PledgeCollateral, on_delete=models.PROTECT, null=True, blank=True, related_name="amendment"
    )
    serial_ranges = models.JSONField(default=list, blank=True, help_text=_("[[first, last], ...] added or released."))
    ltv_bp_after = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    requested_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind=AmendmentKind.EXTENSION, quantity=0, maturity_date__isnull=False)
                    | (~models.Q(kind=AmendmentKind.EXTENSION) & models.Q(quantity__gt=0, maturity_date__isnull=True))
                ),
                name="pledge_amendment_terms_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=AmendmentStatus.REGISTERED)
                | models.Q(number__isnull=False, reference__isnull=False, registered_at__isnull=False),
                name="pledge_amendment_registered_numbered",
            ),
            models.UniqueConstraint(fields=["loan", "number"], name="pledge_amendment_number_unique"),
            models.UniqueConstraint(
                fields=["loan"],
                condition=models.Q(status__in=["requested", "applied"]),
                name="pledge_amendment_one_open",
            ),
        ]

    def __str__(self) -> str:
        return self.reference or f"amendment {self.pk} of pledge {self.loan_id} ({self.kind}, {self.status})"


class ComplianceReleaseStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested by the borrower")
    RELEASED = "released", _("Consented by the lender: released into the surrender")
    REFUSED = "refused", _("Refused by the lender")


class PledgeComplianceRelease(models.Model):
    """The borrower asks to surrender pledged units for its compliance obligation; with the lender's consent
    the units leave the pledge and are surrendered in one transaction (optionally against substitute
    collateral of the same asset), and the loan's collateral and LTV are updated."""

    loan = models.ForeignKey(PledgeLoan, on_delete=models.PROTECT, related_name="compliance_releases")
    quantity = models.BigIntegerField(help_text=_("Pledged units to release into the surrender."))
    year = models.PositiveSmallIntegerField(help_text=_("The compliance year the units are surrendered for."))
    substitute_quantity = models.BigIntegerField(
        default=0, help_text=_("Other units of the same asset the borrower pledges in their place.")
    )
    substitute_cash_fen = models.BigIntegerField(
        default=0, help_text=_("Cash of the borrower held under the pledge in their place (fen).")
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    status = models.CharField(
        max_length=12, choices=ComplianceReleaseStatus.choices, default=ComplianceReleaseStatus.REQUESTED
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    surrender = models.ForeignKey(
        "exchange.Surrender", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ltv_bp_after = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0, substitute_quantity__gte=0), name="compliance_release_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ComplianceReleaseStatus.RELEASED) | models.Q(surrender__isnull=False),
                name="compliance_release_has_surrender",
            ),
            models.CheckConstraint(
                condition=models.Q(substitute_cash_fen__gte=0), name="compliance_release_cash_positive"
            ),
            models.UniqueConstraint(
                fields=["loan"],
                condition=models.Q(status=ComplianceReleaseStatus.REQUESTED),
                name="compliance_release_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"release of {self.quantity} t of pledge {self.loan_id} for {self.year} ({self.status})"
