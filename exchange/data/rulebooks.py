"""The first rulebook of each market greenledger ships with, and where each value comes from.

Plain data, read by migration 0120 (historical models) and by ``exchange.services.markets.markets_install``
(the demo and tests after a flush). docs/market.md states the same rules with their sources; a change of rules
after this first version is a new rulebook version (``rulebook_publish``), never an edit here.

Values marked "greenledger default" are not taken from a published rule: the exchange sets them by notice
(fees, large-holder thresholds) and an operator configures them as a new version.
"""

from __future__ import annotations

from typing import Any

TRADING_SESSIONS = "09:30-11:30,13:00-15:00"
BLOCK_SESSION = "13:00-15:00"
BLOCK_MINIMUM_T = 100_000
NATIONAL_BARRED = ["registry", "exchange", "verifier", "auditor"]

CEA_SOURCES = (
    "MEE Order No. 19, Measures for the Administration of Carbon Emission Trading (Trial), 2020-12-31: trading by "
    "listing agreement, block agreement and one-way auction; key emitting units trade. "
    "MEE Announcement 2021 No. 21, Rules for the Administration of Carbon Emission Trading (Trial): listing "
    "agreement within +/-10 % and block agreement within +/-30 % of the previous close; position limits, "
    "large-holder reporting, abnormal-trading monitoring; Rules for the Administration of Carbon Emission "
    "Settlement (Trial): the registry settles, units bought are usable from the next trading day. "
    "SEEE notice on national carbon emission trading matters, 2021-06-22: listing agreement 09:30-11:30 and "
    "13:00-15:00 below 100,000 t, block agreement 13:00-15:00 from 100,000 t, price step 0.01 yuan. "
    "State Council Decree No. 775, Interim Regulations on the Administration of Carbon Emission Trading, 2024, "
    "art. 5: the registry registers and settles, the exchange organises trading."
)
CCER_SOURCES = (
    "MEE and SAMR Order No. 31, Measures for the Administration of Voluntary Greenhouse Gas Emission Reduction "
    "Trading (Trial), 2023-10-19: CCER trade on the national voluntary market, by legal persons and other "
    "organisations. CBEEX Rules for Voluntary Greenhouse Gas Emission Reduction Trading and Settlement (Trial), "
    "2023-11-16: listing agreement (+/-10 %, below 100,000 t), block agreement (+/-30 %, from 100,000 t, "
    "13:00-15:00), one-way auction; sessions 09:30-11:30 and 13:00-15:00; units bought usable from T+1. "
    "The market opened on 2024-01-22."
)
BEA_SOURCES = (
    "Beijing Municipal People's Government, Measures for the Administration of Carbon Emission Trading in Beijing; "
    "CBEEX (Beijing Green Exchange) carbon emission allowance trading rules: public trading (continuous) within "
    "+/-20 % of the previous close, agreement transfer for large trades (from 10,000 t); a key emitting unit may "
    "hold at most its allocation plus 1,000,000 t. Fees and the large-holder threshold: greenledger defaults."
)


def _mode(mode: str, sessions: str, band_bp: int | None, min_q: int, max_q: int | None, fee_bp: int) -> dict[str, Any]:
    return {
        "mode": mode,
        "sessions": sessions,
        "band_bp": band_bp,
        "min_quantity": min_q,
        "max_quantity": max_q,
        "buyer_fee_bp": fee_bp,
        "seller_fee_bp": fee_bp,
    }


# Fees: greenledger default of 0.6 % of turnover from each side (the exchanges publish theirs by notice).
DEFAULT_FEE_BP = 60

MARKETS: list[dict[str, Any]] = [
    {
        "code": "CN-CEA",
        "name": "National carbon emission allowance market",
        "name_zh": "全国碳排放权交易市场",
        "operator_name": "Shanghai Environment and Energy Exchange",
        "registry_name": "National carbon emission registry (Hubei)",
        "asset_prefix": "CEA-",
        "rulebook": {
            "version": 1,
            "effective_from": "2021-07-16",
            "title": "National carbon emission allowance trading rules (trial)",
            "sources": CEA_SOURCES,
            "tick_fen": 1,
            "lot": 1,
            "calendar_code": "CN",
            "trading_days": "calendar",
            "allowed_kinds": ["compliance_entity"],
            "barred_kinds": NATIONAL_BARRED,
            "legal_persons_only": True,
            "position_limit_rule": "none",
            "position_limit_t": None,
            "large_holder_threshold_t": 1_000_000,
            "auction_pricing": "pay_as_bid",
            "settlement_body": "registry",
            "units_sellable_after_days": 1,
            "cash_withdrawable_after_days": 1,
            "sale_cash_buys_same_day": True,
            "participant_transfers": "non_trade_only",
            "trusted_accounts": False,
            "transfer_delay_hours": 0,
            "pledge_valuation_band_bp": 1000,
            "modes": [
                _mode("listing", TRADING_SESSIONS, 1000, 1, BLOCK_MINIMUM_T - 1, DEFAULT_FEE_BP),
                _mode("block", BLOCK_SESSION, 3000, BLOCK_MINIMUM_T, None, DEFAULT_FEE_BP),
                _mode("auction", TRADING_SESSIONS, None, 1, None, DEFAULT_FEE_BP),
            ],
        },
    },
    {
        "code": "CN-CCER",
        "name": "National voluntary emission reduction (CCER) market",
        "name_zh": "全国温室气体自愿减排交易市场",
        "operator_name": "Beijing Green Exchange",
        "registry_name": "National voluntary emission reduction registry",
        "asset_prefix": "CCER-",
        "rulebook": {
            "version": 1,
            "effective_from": "2024-01-22",
            "title": "National voluntary emission reduction trading and settlement rules (trial)",
            "sources": CCER_SOURCES,
            "tick_fen": 1,
            "lot": 1,
            "calendar_code": "CN",
            "trading_days": "calendar",
            "allowed_kinds": ["compliance_entity", "project_owner", "investor", "financial_institution"],
            "barred_kinds": NATIONAL_BARRED,
            "legal_persons_only": True,
            "position_limit_rule": "none",
            "position_limit_t": None,
            "large_holder_threshold_t": 1_000_000,
            "auction_pricing": "pay_as_bid",
            "settlement_body": "registry",
            "units_sellable_after_days": 1,
            "cash_withdrawable_after_days": 1,
            "sale_cash_buys_same_day": True,
            "participant_transfers": "non_trade_only",
            "trusted_accounts": False,
            "transfer_delay_hours": 0,
            "pledge_valuation_band_bp": 1000,
            "modes": [
                _mode("listing", TRADING_SESSIONS, 1000, 1, BLOCK_MINIMUM_T - 1, DEFAULT_FEE_BP),
                _mode("block", BLOCK_SESSION, 3000, BLOCK_MINIMUM_T, None, DEFAULT_FEE_BP),
                _mode("auction", TRADING_SESSIONS, None, 1, None, DEFAULT_FEE_BP),
            ],
        },
    },
    {
        "code": "BJ-BEA",
        "name": "Beijing pilot carbon emission allowance market",
        "name_zh": "北京碳排放权交易试点市场",
        "operator_name": "Beijing Green Exchange",
        "registry_name": "Beijing carbon emission allowance registry",
        "asset_prefix": "BEA-",
        "rulebook": {
            "version": 1,
            "effective_from": "2024-01-01",
            "title": "Beijing pilot carbon emission allowance trading rules",
            "sources": BEA_SOURCES,
            "tick_fen": 1,
            "lot": 1,
            "calendar_code": "CN",
            "trading_days": "calendar",
            "allowed_kinds": ["compliance_entity", "project_owner", "investor", "financial_institution"],
            "barred_kinds": NATIONAL_BARRED,
            "legal_persons_only": False,
            "position_limit_rule": "allocation_plus",
            "position_limit_t": 1_000_000,
            "large_holder_threshold_t": 500_000,
            "auction_pricing": "clearing",
            "settlement_body": "registry",
            "units_sellable_after_days": 1,
            "cash_withdrawable_after_days": 1,
            "sale_cash_buys_same_day": True,
            "participant_transfers": "non_trade_only",
            "trusted_accounts": False,
            "transfer_delay_hours": 0,
            "pledge_valuation_band_bp": 1000,
            "modes": [
                _mode("continuous", TRADING_SESSIONS, 2000, 1, None, DEFAULT_FEE_BP),
                _mode("block", TRADING_SESSIONS, 3000, 10_000, None, DEFAULT_FEE_BP),
                _mode("auction", TRADING_SESSIONS, None, 1, None, DEFAULT_FEE_BP),
            ],
        },
    },
]


def market_code_for_asset(kind: str, code: str) -> str | None:
    """The market an instrument belongs to by its kind and code: BEA-* Beijing pilot, CEA-* national, CCER."""
    if kind == "cash":
        return None
    for market in MARKETS:
        if code.startswith(market["asset_prefix"]):
            return str(market["code"])
    return "CN-CCER" if kind == "ccer" else "CN-CEA"


def install(apps: Any, created_by: str) -> list[Any]:
    """Create the markets and their first rulebooks where missing, and give market-less instruments their market.

    ``apps`` is a migration's app registry or ``django.apps.apps``. Returns the rulebooks created.
    """
    from datetime import date

    market_model = apps.get_model("exchange", "Market")
    rulebook_model = apps.get_model("exchange", "Rulebook")
    mode_model = apps.get_model("exchange", "RulebookMode")
    asset_model = apps.get_model("exchange", "Asset")
    created = []
    for spec in MARKETS:
        market, _ = market_model.objects.get_or_create(
            code=spec["code"],
            defaults={
                "name": spec["name"],
                "name_zh": spec["name_zh"],
                "operator_name": spec["operator_name"],
                "registry_name": spec["registry_name"],
            },
        )
        book = dict(spec["rulebook"])
        modes = book.pop("modes")
        # A migration's historical model has the rules of its time: later rules come with their own migration.
        known = {f.name for f in rulebook_model._meta.get_fields()}
        book = {name: value for name, value in book.items() if name in known}
        if not rulebook_model.objects.filter(market=market).exists():
            book["effective_from"] = date.fromisoformat(book["effective_from"])
            rulebook = rulebook_model.objects.create(market=market, created_by=created_by, **book)
            mode_model.objects.bulk_create([mode_model(rulebook=rulebook, **m) for m in modes])
            created.append(rulebook)
    markets = {m.code: m for m in market_model.objects.all()}
    for asset in asset_model.objects.filter(market__isnull=True).exclude(kind="cash"):
        code = market_code_for_asset(asset.kind, asset.code)
        if code in markets:
            asset_model.objects.filter(pk=asset.pk).update(market=markets[code])
    return created
