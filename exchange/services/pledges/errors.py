"""The refusals of the pledge services, each with its stable code (catalogued by ``core.errors.catalogue``)."""

from __future__ import annotations

from core.errors import Forbidden, InvalidInput
from core.errors import translatable as _
from exchange.errors import (
    InvalidState,
    RuleViolation,
)


# --- refusals --------------------------------------------------------------------------------------------
class InvalidPledgeTransition(InvalidState):
    code = "invalid_pledge_transition"
    default_message = _("The pledge is not in a state that allows this.")


class NotTheLender(Forbidden):
    code = "pledge_lender_only"
    default_message = _("Only the pledge's lender may do this.")


class NotTheBorrower(Forbidden):
    code = "pledge_borrower_only"
    default_message = _("Only the pledge's borrower may do this.")


class InvalidPledgeTerms(InvalidInput):
    code = "invalid_pledge_terms"
    default_message = _("The loan's terms are invalid.")


class InvalidLender(InvalidInput):
    code = "invalid_lender"
    default_message = _("The lender must be an active financial institution other than the borrower.")


class AssetNotPledgeable(InvalidInput):
    code = "asset_not_pledgeable"
    default_message = _("Only allowances and CCER can be pledged.")


class CollateralNotPriced(RuleViolation):
    code = "collateral_not_priced"
    default_message = _("The asset has no closing or reference price, so the pledge can't be valued.")


class LtvLimitExceeded(RuleViolation):
    code = "ltv_limit_exceeded"
    default_message = _("The principal is more than the loan-to-value limit allows against the collateral.")


class DefaultNotDue(RuleViolation):
    code = "pledge_default_not_due"
    default_message = _(
        "No ground for default: the loan has not matured, no margin call is past its cure date, "
        "and LTV is below the liquidation level."
    )


class EnforcementInProgress(InvalidState):
    code = "pledge_enforcement_in_progress"
    default_message = _("The pledge is being enforced by a sale on the exchange.")


class ValuationOutOfBand(RuleViolation):
    code = "pledge_valuation_out_of_band"
    default_message = _("The agreed price lies outside the band around the reference price.")


class EnforcementExceedsDebt(RuleViolation):
    code = "pledge_enforcement_exceeds_debt"
    default_message = _("The units named are worth more than the debt; the surplus belongs to the borrower.")


class DebtCoveredByCash(RuleViolation):
    """An enforcement sale of a pledge whose cash collateral already covers the whole debt: the cash is taken
    first, so no unit would need selling (Civil Code art. 438: the surplus is the borrower's)."""

    code = "pledge_debt_covered_by_cash"
    default_message = _("The cash held under the pledge covers the debt: no unit needs to be sold.")
    remedy = (
        "Enforce by agreement (the cash goes to the lender first and every unit is released), or ask the registry "
        "to execute a court order."
    )


class NoValuationProposed(InvalidState):
    code = "pledge_no_valuation_proposed"
    default_message = _("The lender has proposed no valuation for this pledge.")


class InvalidCourtOrder(InvalidInput):
    code = "invalid_court_order"
    default_message = _("A court order names its reference, the SHA-256 of its document and what it orders.")


class TermsMismatch(InvalidState):
    code = "pledge_terms_mismatch"
    default_message = _("The terms confirmed are not the terms applied for; confirm the pledge's terms_digest.")


class MarginCallOpen(RuleViolation):
    code = "pledge_margin_call_open"
    default_message = _("The loan has an open margin call: meet it before releasing collateral.")


class ComplianceReleaseNotPending(InvalidState):
    code = "pledge_compliance_release_not_pending"
    default_message = _("The pledge has no release for compliance waiting for the lender.")


class AmendmentOpen(InvalidState):
    code = "pledge_amendment_open"
    default_message = _("An amendment of this pledge is already open: register, reject or withdraw it first.")
