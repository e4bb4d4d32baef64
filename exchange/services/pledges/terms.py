"""A loan's terms and their arithmetic: limits, interest, LTV, basis points."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from accounts.models import Participant, ParticipantKind, ParticipantStatus
from core.errors import translatable as _
from core.limits import MAX_QUANTITY, is_quantity, is_whole
from exchange.models.pledges import BP, DAYS_IN_YEAR, PledgeLoan
from exchange.services.pledges.errors import (
    InvalidLender,
    InvalidPledgeTerms,
)

MAX_PRINCIPAL_FEN = 10**15
MAX_CURE_DAYS = 90
DEFAULT_CURE_DAYS = 3


# --- arithmetic --------------------------------------------------------------------------------------------
def simple_interest_fen(principal_fen: int, rate_bp: int, start: date, end: date, *, days_in_year: int = 365) -> int:
    """Simple interest for the actual days from ``start`` to ``end`` (none before start), a day being a
    ``days_in_year``-th of the annual rate (360: actual/360; 365: actual/365), rounded half up to the fen."""
    days = max((end - start).days, 0)
    numerator, denominator = principal_fen * rate_bp * days, BP * days_in_year
    return (2 * numerator + denominator) // (2 * denominator)


def loan_interest_fen(loan: PledgeLoan, day: date) -> int:
    """The loan's interest from its start to ``day``, by its day count (actual/360 or actual/365)."""
    return simple_interest_fen(
        loan.principal_fen, loan.annual_rate_bp, loan.start_date, day, days_in_year=DAYS_IN_YEAR[loan.day_count]
    )


def ltv_bp_of(principal_fen: int, value_fen: int) -> int:
    """Loan to value in basis points, rounded up (a breach is never rounded away)."""
    return -(-principal_fen * BP // value_fen)


def bp_to_percent(bp: int) -> str:
    return f"{bp // 100}.{bp % 100:02d}"


# --- request, registration, rejection, withdrawal ------------------------------------------------------------
def check_loan_parties(*, lender: Participant, borrower_id: int | None, maturity_date: date, today: date) -> None:
    """A loan asked for today (of units held or of future CCER): it matures after today, and its lender is an
    active financial institution other than the borrower."""
    if maturity_date <= today:
        raise InvalidPledgeTerms(_("The loan matures after today."), details={"maturity": maturity_date.isoformat()})
    if lender.kind != ParticipantKind.FINANCIAL_INSTITUTION or not lender.is_active or lender.pk == borrower_id:
        raise InvalidLender(details={"lender": lender.pk})


def eligible_lenders(borrower_id: int | None) -> QuerySet[Participant]:
    """The participants ``check_loan_parties`` accepts as a borrower's lender (the same rule, as a query): the
    active financial institutions other than the borrower, by name."""
    lenders = Participant.objects.filter(kind=ParticipantKind.FINANCIAL_INSTITUTION, status=ParticipantStatus.ACTIVE)
    if borrower_id is not None:
        lenders = lenders.exclude(pk=borrower_id)
    return lenders.order_by("name")


def check_terms(
    *,
    quantity: int,
    principal_fen: int,
    annual_rate_bp: int,
    start_date: date,
    maturity_date: date,
    ltv_limit_bp: int,
    margin_call_bp: int,
    liquidation_bp: int,
    cure_period_days: int,
    serials: tuple[int, int] | None,
) -> None:
    problems: dict[str, str] = {}
    if not is_quantity(quantity):
        problems["quantity"] = f"A whole number of tonnes from 1 to {MAX_QUANTITY}."
    if not is_whole(principal_fen) or not 0 < principal_fen <= MAX_PRINCIPAL_FEN:
        problems["principal"] = "A positive amount."
    if not is_whole(annual_rate_bp) or not 0 <= annual_rate_bp <= BP:
        problems["annual_rate_bp"] = "Basis points from 0 to 10000."
    if maturity_date <= start_date:
        problems["maturity"] = "The loan matures after it starts."
    levels = (ltv_limit_bp, margin_call_bp, liquidation_bp)
    if not all(is_whole(v) for v in levels) or not 0 < ltv_limit_bp < margin_call_bp < liquidation_bp <= BP:
        problems["levels"] = "0 < LTV limit < margin-call level < liquidation level <= 10000 bp."
    if not is_whole(cure_period_days) or not 0 <= cure_period_days <= MAX_CURE_DAYS:
        problems["cure_period_days"] = f"From 0 to {MAX_CURE_DAYS} days."
    if serials is not None and (serials[0] < 1 or serials[1] - serials[0] + 1 != quantity):
        problems["serials"] = "The range [first, last] holds exactly the quantity."
    if problems:
        raise InvalidPledgeTerms(next(iter(problems.values())), details=problems)
