"""Pledge loans (质押): application, registration, amendments, release, default, lawful enforcement, valuation.

Key invariant: while a pledge is registered or defaulted, exactly its units are frozen by ``pledge``
holds on exact serial blocks (its ``PledgeCollateral`` rows), so they can't be transferred, sold,
surrendered, retired or pledged again. They leave the freeze only by release (back to the borrower's
available units: repayment, a registered partial release, release for compliance) or by enforcement
(Civil Code arts. 436-438; never more value to the lender than the debt): taken at an agreed value, sold
on the exchange through an ordinary order that takes over the holds (in the continuous book, or as a
sell listing under the listing agreement on markets without one), or on a court order.

Lifecycle (every other move is refused with ``invalid_pledge_transition``, 409; docs/pledges.md):

    requested --confirm--> applied --register--> registered --release--> released
    requested|applied --reject/withdraw--> rejected|withdrawn
    registered --default--> defaulted --enforce--> enforced      registered|defaulted --court--> enforced
    registered --an amendment registered by the registry (top-up, partial release, extension)--> registered

Money is integer fen; the annual rate and the LTV levels are basis points (385 bp = 3.85%).
Interest is simple, by the loan's day count (actual/360 by default, actual/365 where agreed), from the
start date to the day of repayment or enforcement, rounded half up to the fen. LTV = principal /
(pledged units x price), in basis points rounded up, so rounding never hides a breach. The price is the
latest daily close, else the listing's reference price.

Enforcement by sale: in the same database transaction as each settlement of the order's trades,
``sale_fills_settled`` pays the lender from the net proceeds until the debt is paid; the rest is the
borrower's. Units left unsold stay pledged for another round while the lender is owed (never handed to
the lender), and are released once the debt is paid.

Locks are taken in the order ``exchange.locks`` gives: enforcement rows, the loan row (then an amendment's
or a release's row), then the book, balance rows and hold rows.
"""

from exchange.services.pledges.common import TRANSITIONS
from exchange.services.pledges.enforcement import (
    SaleFills,
    default_grounds,
    pledge_default,
    pledge_enforce,
    pledge_enforce_court_order,
    pledge_enforcement_agree,
    pledge_enforcement_decline,
    pledge_sales_complete,
    sale_fills_settled,
)
from exchange.services.pledges.errors import (
    AssetNotPledgeable,
    CollateralNotPriced,
    DebtCoveredByCash,
    DefaultNotDue,
    EnforcementExceedsDebt,
    EnforcementInProgress,
    InvalidCourtOrder,
    InvalidLender,
    InvalidPledgeTerms,
    InvalidPledgeTransition,
    LtvLimitExceeded,
    NotTheBorrower,
    NotTheLender,
    NoValuationProposed,
    ValuationOutOfBand,
)
from exchange.services.pledges.registration import (
    pledge_confirm,
    pledge_external_reference_record,
    pledge_register,
    pledge_reject,
    pledge_request,
    pledge_withdraw,
)
from exchange.services.pledges.release import pledge_release
from exchange.services.pledges.terms import (
    DEFAULT_CURE_DAYS,
    MAX_CURE_DAYS,
    MAX_PRINCIPAL_FEN,
    bp_to_percent,
    loan_interest_fen,
    ltv_bp_of,
    simple_interest_fen,
)
from exchange.services.pledges.valuation import pledges_value

__all__ = [
    "DEFAULT_CURE_DAYS",
    "MAX_CURE_DAYS",
    "MAX_PRINCIPAL_FEN",
    "TRANSITIONS",
    "AssetNotPledgeable",
    "CollateralNotPriced",
    "DebtCoveredByCash",
    "DefaultNotDue",
    "EnforcementExceedsDebt",
    "EnforcementInProgress",
    "InvalidCourtOrder",
    "InvalidLender",
    "InvalidPledgeTerms",
    "InvalidPledgeTransition",
    "LtvLimitExceeded",
    "NoValuationProposed",
    "NotTheBorrower",
    "NotTheLender",
    "SaleFills",
    "TermsMismatch",
    "ValuationOutOfBand",
    "bp_to_percent",
    "default_grounds",
    "loan_interest_fen",
    "ltv_bp_of",
    "pledge_confirm",
    "pledge_default",
    "pledge_enforce",
    "pledge_enforce_court_order",
    "pledge_enforcement_agree",
    "pledge_enforcement_decline",
    "pledge_external_reference_record",
    "pledge_register",
    "pledge_reject",
    "pledge_release",
    "pledge_request",
    "pledge_sales_complete",
    "pledge_withdraw",
    "pledges_value",
    "sale_fills_settled",
    "simple_interest_fen",
]
