"""Load the demo market, idempotently: running it again changes nothing and prints the same logins.

A registry, an exchange, two banks, five compliance entities, a forestry CCER project owner, a
verifier and an auditor; CEA-2024 and CEA-2025 allocated to the entities; a forestry CCER batch issued;
ten past trading days of each listed asset (trades, settlement and daily closes, placed with the clock
pinned to each day) so the charts have a history; an order book around today's reference; compliance
year 2025 open (deadline 2026-12-31) with the entities' verified emissions, one entity's obligation met
and one partly surrendered; a CEA pledge loan from Jingneng registered with the Bank of Beijing; and the
API tokens of the demo trader and of the two demo trading bots (``exchange.bots``).
Everything is made through the services, so the audit trail of the demo is as real as any.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext, gettext_lazy, gettext_noop, ngettext

from accounts.actors import Actor
from accounts.models import ApiToken, Membership, Participant, ParticipantKind, Role
from accounts.services import api_token_create, membership_create, participant_create
from accounts.validators import make_uscc
from core import clock
from core.i18n import TranslatedCommand
from exchange.models import (
    ApprovalOperation,
    ApprovalRequest,
    Asset,
    AuditEvent,
    ComplianceYear,
    CycleStatus,
    DailyPrice,
    Issuance,
    MarketRules,
    Obligation,
    Order,
    PledgeLoan,
    PledgeStatus,
    Project,
    ProjectApplication,
    ProjectType,
    Retirement,
    Trade,
)
from exchange.models import Market as MarketRow
from exchange.selectors.rulebooks import rulebooks_of
from exchange.services.agreements import block_accept, block_decline, block_offer, listing_pick, listing_post
from exchange.services.allocation import allocation_rule_set
from exchange.services.approval_summaries import demo_allocation_summary, demo_waiting_allocation_summary
from exchange.services.approvals import approval_approve, gated
from exchange.services.auctions import auction_announce, auction_bid, auction_close
from exchange.services.calendar import calendar_year_load
from exchange.services.cash import DuplicateBankReference, cash_deposit
from exchange.services.ccer import ccer_application_submit, ccer_publicity_open, ccer_reference_seed
from exchange.services.compliance import (
    SurrenderLine,
    compliance_year_create,
    emissions_record,
    entities_cover,
    surrender_create,
)
from exchange.services.compliance_rules import carryover_rule_set, official_price_set
from exchange.services.day_close import day_close
from exchange.services.issuance import (
    AllocationRow,
    ccer_issue,
    cea_allocate,
    cea_vintage_create,
    main_account,
    project_register,
)
from exchange.services.listings import asset_list
from exchange.services.markets import markets_install, rulebook_payload, rulebook_publish
from exchange.services.orders import order_place
from exchange.services.pledges import pledge_confirm, pledge_register, pledge_request
from exchange.services.retirement import retirement_create
from exchange.services.settlement import settlement_run

DEMO_PASSWORD = os.environ.get("DEMO_ADMIN_PASSWORD", "greenledger-demo")
DEMO_TOKEN = os.environ.get("DEMO_API_TOKEN", "gl_demo_jingneng-trader-demo-token")
# The demo trading bots' tokens (exchange.bots): a market maker for Shougang and a taker for Jinyu Cement.
BOT_TOKENS = {
    "maker": ("shougang_trader", "gl_demomaker_shougang-market-maker-demo-token"),
    "taker": ("cement_trader", "gl_demotaker_cement-taker-demo-token"),
}

# (key, name, kind, USCC body); the check character is computed.
PARTICIPANTS = [
    ("registry", "National Carbon Emission Registry", ParticipantKind.REGISTRY, "11100000MB0000001"),
    ("exchange", "Beijing Green Exchange", ParticipantKind.EXCHANGE, "91110000MA0000002"),
    ("bank_bj", "Bank of Beijing Tongzhou Branch", ParticipantKind.FINANCIAL_INSTITUTION, "91110112MA0000003"),
    ("bank_ccb", "China Construction Bank Beijing Branch", ParticipantKind.FINANCIAL_INSTITUTION, "91110000MA0000004"),
    ("jingneng", "Jingneng Thermal Power Co.", ParticipantKind.COMPLIANCE_ENTITY, "91110000MA0000005"),
    ("shougang", "Shougang Iron and Steel Co.", ParticipantKind.COMPLIANCE_ENTITY, "91110000MA0000006"),
    ("cement", "Jinyu Cement Co.", ParticipantKind.COMPLIANCE_ENTITY, "91110000MA0000007"),
    ("yanshan", "Yanshan Petrochemical Co.", ParticipantKind.COMPLIANCE_ENTITY, "91110000MA0000008"),
    ("airport", "Capital Airport Energy Co.", ParticipantKind.COMPLIANCE_ENTITY, "91110000MA0000009"),
    ("forestry", "Tongzhou Forestry Carbon Sink Co.", ParticipantKind.PROJECT_OWNER, "91110112MA0000010"),
    ("verifier", "China Quality Certification Centre", ParticipantKind.VERIFIER, "91110000MA0000011"),
    ("auditor", "Zhongheng Audit Partners", ParticipantKind.AUDITOR, "91110000MA0000012"),
]

# Verified emissions drive the demo allocations (tonnes CO2e).
ALLOCATIONS = {
    2024: {"jingneng": 1_200_000, "shougang": 2_400_000, "cement": 650_000, "yanshan": 1_800_000, "airport": 240_000},
    2025: {"jingneng": 1_150_000, "shougang": 2_300_000, "cement": 620_000, "yanshan": 1_750_000, "airport": 230_000},
}

# Beijing pilot allowances (BJ-BEA) of 2025 for the Beijing entities (tonnes).
BEA_ALLOCATIONS = {2025: {"jingneng": 300_000, "shougang": 450_000, "cement": 120_000, "airport": 80_000}}

# Listed assets and their reference prices (fen a tonne).
LISTINGS = [("CEA-2024", 8850), ("CEA-2025", 9120), ("CCER-BJ-TZ-FOREST-001-2023", 6500)]
# The Beijing pilot allowance, listed without a price history (its bands use the reference price).
BEA_LISTINGS = [("BEA-2025", 10200)]
DEPOSITS = {"jingneng": 50_000_000_00, "cement": 8_000_000_00, "airport": 3_000_000_00, "shougang": 5_000_000_00}
# (participant, asset, side, price fen, tonnes): a small book around the reference prices.
OPEN_ORDERS = [
    ("shougang", "CEA-2024", "sell", 8890, 12_000),
    ("yanshan", "CEA-2024", "sell", 8920, 25_000),
    ("shougang", "CEA-2024", "sell", 8975, 8_000),
    ("jingneng", "CEA-2024", "buy", 8830, 15_000),
    ("cement", "CEA-2024", "buy", 8800, 6_000),
    ("airport", "CEA-2024", "buy", 8760, 3_000),
    ("yanshan", "CEA-2025", "sell", 9180, 10_000),
    ("jingneng", "CEA-2025", "buy", 9090, 9_000),
    ("forestry", "CCER-BJ-TZ-FOREST-001-2023", "sell", 6580, 20_000),
    ("cement", "CCER-BJ-TZ-FOREST-001-2023", "buy", 6450, 5_000),
]
DEMO_REHEARSAL = " (demo rehearsal: all-day sessions every day)"
DEMO_BENEFICIARY = "Grand Canal Culture Festival 2026, Tongzhou"
# Past trading days recorded before the book opens: (asset, seller, buyer, tonnes a day at most).
HISTORY_DAYS = 10
HISTORY = [
    ("CEA-2024", "yanshan", "airport", 6_000),
    ("CEA-2025", "yanshan", "cement", 4_000),
    ("CCER-BJ-TZ-FOREST-001-2023", "forestry", "cement", 3_000),
]
HISTORY_DEPOSITS = {"airport": 6_000_000_00, "cement": 6_000_000_00}
# The last past day also trades under every other mode of the rulebooks, after its book trades (14:41), so
# that the admin and the public quotes of that day show each mode: a listing picked on the national CEA and
# CCER markets; a block offer accepted and one declined between named participants in the 13:00-15:00 block
# session; a one-way auction announced, bid and allocated; the Beijing pilot's continuous book.
# (asset, seller, picker, tonnes, fen over the day's level)
MODE_LISTINGS = [
    ("CEA-2024", "yanshan", "airport", 5_000, 10),
    ("CCER-BJ-TZ-FOREST-001-2023", "forestry", "cement", 2_000, 0),
]
# (asset, seller, named buyer, tonnes, accepted)
MODE_BLOCKS = [("CEA-2024", "shougang", "jingneng", 100_000, True), ("CEA-2025", "yanshan", "cement", 100_000, False)]
# The auction: the initiator sells, bidders bid (participant, fen under the day's level, tonnes) by price then time.
MODE_AUCTION = ("CEA-2025", "shougang", 30_000, [("jingneng", 0, 20_000), ("airport", 30, 15_000)])
# The Beijing pilot's continuous book: (seller, buyer, tonnes), at BEA-2025's reference price.
MODE_BEA = ("jingneng", "shougang", 5_000)
# The demo compliance year: verified emissions of 2025 (tCO2e) and what two entities surrender of CEA-2025.
COMPLIANCE_YEAR = 2025
VERIFIED = {
    "jingneng": 1_180_000,
    "shougang": 2_350_000,
    "cement": 610_000,
    "yanshan": 1_790_000,
    "airport": 236_000,
}
SURRENDERS = {"cement": 610_000, "jingneng": 800_000}
# Each demo entity's sector: it picks the allocation rule (exchange.services.allocation).
SECTORS = {"jingneng": "power", "shougang": "steel", "cement": "cement", "yanshan": "", "airport": ""}
PLAN_2023_2024 = "2023-2024 national power sector allocation plan (MEE, 2024)"
PLAN_2024_INDUSTRY = "2024 steel, cement and aluminium allocation plan (MEE, 2025)"
PLAN_2025 = "2025 allocation plans (MEE)"
# Power benchmarks and factors here are demo figures: enter the plan's own table before real use.
DEMO_POWER_BENCHMARK_PPM = 821_800  # 0.8218 tCO2/MWh
DEMO_HEAT_BENCHMARK_PPM = 110_500  # 0.1105 tCO2/GJ
POWER_FACTORS = ["cooling", "heat_supply", "load"]

FOREST_PROJECT = {
    "code": "BJ-TZ-FOREST-001",
    "name": "Tongzhou Grand Canal afforestation carbon sink",
    "project_type": ProjectType.FORESTRY,
    "methodology": "CCER-14-001-V01",
    "location": "Tongzhou District, Beijing",
    "crediting_start": date(2021, 1, 1),
    "crediting_end": date(2040, 12, 31),
}


# A CCER application under the 2023 Measures, published for comment in the demo.
FOREST_APPLICATION = {
    "code": "BJ-TZ-FOREST-002",
    "name": "Tongzhou Grand Canal afforestation, phase 2",
    "project_type": ProjectType.FORESTRY,
    "methodology": "CCER-14-001-V01",
    "location": "Tongzhou District, Beijing",
    "start_date": date(2022, 3, 12),
    "crediting_start": date(2022, 3, 12),
    "crediting_end": date(2052, 3, 11),
    "validation_body": "China Environmental United Certification Center",
    "validation_report_sha256": "3f1c9a4e5d2b7f8061a9c3e4d5b6a7f8091a2b3c4d5e6f708192a3b4c5d6e7f8",
}

# The demo's admin desks: which admin pages each role's staff may open (Django permissions); what they may
# do there is the services' business (the participant's kind and the member's role), as everywhere. The
# registry's, the exchange's and the auditors' staff open every page and see every participant's rows; a
# participant's staff (a bank's officers, a trader) open only the pages of their work in the README, and
# those pages hold only their own participant's rows (exchange.admin.base.ParticipantScopedAdmin).
# Each desk: (group name, actions on every model, {model: actions} besides).
DEMO_DESKS: dict[str, tuple[str, list[str], dict[str, list[str]]]] = {
    "registry": ("Registry officers", ["view", "add", "change"], {}),
    "exchange": ("Exchange operators", ["view", "add", "change"], {}),
    # accepts (and rejects, releases, ...) its pledges by the pledge list's actions; reads its margin calls;
    # confirms or rejects the amendments of its pledges (a top-up...) by the amendment list's actions
    "bank": (
        "Bank officers",
        [],
        {"pledgeloan": ["view", "change"], "margincall": ["view"], "pledgeamendment": ["view"]},
    ),
    "auditor": ("Auditors", ["view"], {}),
    # requests a pledge of its own units (Pledges -> Add) and follows it
    "trader": ("Traders", [], {"pledgeloan": ["view", "add", "change"]}),
}
# The logins seed_demo prints, by role: (username, what they do in the README).
DEMO_LOGINS = [
    ("admin", gettext_noop("registry officer (superuser): issue, allocate, settle now, request approvals")),
    ("registry_officer", gettext_noop("second registry officer: approve a request (four eyes)")),
    ("exchange_ops", gettext_noop("exchange operator: list assets, trading modes per market")),
    ("bank_bj_officer", gettext_noop("bank officer: accept and register a pledge")),
    ("auditor", gettext_noop("auditor: reads everything, changes nothing")),
    ("jingneng_trader", gettext_noop("trader of Jingneng Thermal Power: request a pledge")),
]


def demo_desk(desk: str) -> Group:
    name, actions, extra = DEMO_DESKS[desk]
    group, _created = Group.objects.get_or_create(name=name)
    codenames = [f"{action}_{model}" for model in _desk_models() for action in actions]
    codenames += [f"{action}_{model}" for model, more in extra.items() for action in more]
    group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=["exchange", "accounts"], codename__in=codenames)
    )
    return group


def _desk_models() -> list[str]:
    from django.apps import apps

    return [str(m._meta.model_name) for app in ("exchange", "accounts") for m in apps.get_app_config(app).get_models()]


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, datetime.min.time(), clock.MARKET_TZ).replace(hour=hour, minute=minute)


class Command(TranslatedCommand):
    help = gettext_lazy("Load the demo market (idempotent) and print the admin login and a demo API token.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help=gettext("Where the server will answer."))

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        if getattr(settings, "PRODUCTION", False):
            raise CommandError(
                gettext("seed_demo loads a demo market with published passwords; it refuses to run in production.")
            )
        steps: list[tuple[str, Callable[[], None]]] = [
            (gettext("participants and people"), self.people),
            (gettext("markets and their rulebooks (CN-CEA, CN-CCER, BJ-BEA)"), self.markets),
            (gettext("allowance vintages and allocations"), self.allowances),
            (gettext("forestry CCER project and issuance"), self.ccer),
            (gettext("exchange listings and cash"), self.market),
            (
                ngettext(
                    "%(days)s past trading day (trades, settlement, closes)",
                    "%(days)s past trading days (trades, settlement, closes)",
                    HISTORY_DAYS,
                )
                % {"days": HISTORY_DAYS},
                self.history,
            ),
            (gettext("open orders"), self.orders),
            (
                gettext("compliance rules: the 2023-2024 and 2025 plans, carryover, official price"),
                self.compliance_rules,
            ),
            (
                gettext("compliance year %(year)s: emissions and surrenders") % {"year": COMPLIANCE_YEAR},
                self.compliance,
            ),
            (gettext("demo API tokens (trader and two bots)"), self.token),
            (gettext("demo pledge loan"), self.pledge),
            (gettext("an allocation waiting for a second registry officer"), self.waiting_approval),
            (gettext("a retirement for the public registry"), self.retirement),
            (
                gettext("working-day calendar CN 2026"),
                partial(calendar_year_load, actor=Actor.system("seed_demo"), code="CN", year=2026),
            ),
            (
                gettext("CCER rule and methodologies (2023 Measures), an application published for comment"),
                self.ccer_cycle,
            ),
        ]
        self.p: dict[str, Participant] = {}
        self.notes: list[str] = []
        started = time.monotonic()
        events_before = AuditEvent.objects.count()
        # The journal reads in time order (reconcile checks it): what comes before the past trading days is
        # dated before them, at 08:00 on the first of them.
        self.before_history = _at(clock.trading_day() - timedelta(days=HISTORY_DAYS), 8, 0)
        for index, (label, step) in enumerate(steps, start=1):
            step_started = time.monotonic()
            self.stderr.write(f"[{index}/{len(steps)}] {label} ...", ending="")
            self.stderr.flush()
            early = step in (self.people, self.markets, self.allowances, self.ccer, self.market)
            with clock.pinned(self.before_history) if early else nullcontext(), transaction.atomic():
                step()
            self.stderr.write(f" {time.monotonic() - step_started:.1f}s")
        recorded = AuditEvent.objects.count() - events_before
        counts = Trade.objects.aggregate(trades=Count("id"))
        trades, closes = counts["trades"], DailyPrice.objects.count()
        orders = Order.objects.filter(status="open").count()
        self.stderr.write(
            gettext("seed_demo: done in %(seconds)ss: %(participants)s, %(trades)s, %(closes)s, %(orders)s; ")
            % {
                "seconds": f"{time.monotonic() - started:.1f}",
                "participants": ngettext("%(count)s participant", "%(count)s participants", len(self.p))
                % {"count": len(self.p)},
                "trades": ngettext("%(count)s trade", "%(count)s trades", trades) % {"count": trades},
                "closes": ngettext("%(count)s daily close", "%(count)s daily closes", closes) % {"count": closes},
                "orders": ngettext("%(count)s open order", "%(count)s open orders", orders) % {"count": orders},
            }
            + (
                ngettext("%(count)s audit event recorded", "%(count)s audit events recorded", recorded)
                % {"count": recorded}
                if recorded
                else gettext("nothing changed (already loaded)")
            )
            + "".join(f"; {note}" for note in self.notes)
        )
        certificate = Retirement.objects.filter(beneficiary=DEMO_BENEFICIARY).values_list("pk", flat=True).first()
        names = {"trader": self.p["jingneng"].name, "maker": self.p["shougang"].name, "taker": self.p["cement"].name}
        self.stdout.write(
            "\n".join(
                [
                    "",
                    gettext("greenledger demo market is ready."),
                    gettext("  Home:     %(url)s/") % {"url": url},
                    gettext("  Admin:    %(url)s/admin/   every login below has the password %(password)s")
                    % {"url": url, "password": DEMO_PASSWORD},
                    *(f"            {username:<18} {gettext(role)}" for username, role in DEMO_LOGINS),
                    gettext("  API:      %(url)s/api/v1/   (docs at %(url)s/api/docs/)") % {"url": url},
                    gettext("  Token:    %(token)s   (trader of %(trader)s)") % {"token": DEMO_TOKEN, **names},
                    gettext("  Bots:     market maker %(maker_token)s (%(maker)s),")
                    % {"maker_token": BOT_TOKENS["maker"][1], **names},
                    gettext("            taker %(taker_token)s (%(taker)s)")
                    % {"taker_token": BOT_TOKENS["taker"][1], **names},
                    gettext("  Try:      curl -H 'Authorization: Token %(token)s' %(url)s/api/v1/")
                    % {"token": DEMO_TOKEN, "url": url},
                    gettext("  Registry: %(url)s/registry/retirements/%(id)s   (a public retirement certificate)")
                    % {"url": url, "id": certificate},
                    "",
                ]
            )
        )

    # --- steps ------------------------------------------------------------------------------------
    def user(
        self, username: str, participant: Participant, role: str, *, superuser: bool = False, desk: str | None = None
    ) -> Any:
        """A demo person; ``desk`` makes them staff with that desk's admin permissions (DEMO_DESKS)."""
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            make = users.objects.create_superuser if superuser else users.objects.create_user
            user = make(username=username, email=f"{username}@demo.greenledger.cn", password=DEMO_PASSWORD)
        if desk is not None and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        if desk is not None:
            user.groups.add(demo_desk(desk))
        if not Membership.objects.filter(user=user).exists():
            membership_create(actor=self.registry_actor(), user=user, participant=participant, role=role)
        return user

    def second_registry_actor(self) -> Actor:
        return Actor.for_user(get_user_model().objects.get(username="registry_officer"))

    def registry_actor(self) -> Actor:
        admin = get_user_model().objects.filter(username="admin").first()
        if admin is not None and Membership.objects.filter(user=admin).exists():
            return Actor.for_user(admin)
        return Actor.system("seed_demo")

    def people(self) -> None:
        for key, name, kind, body in PARTICIPANTS:
            uscc = make_uscc(body)
            participant = Participant.objects.filter(uscc=uscc).first()
            if participant is None:
                participant = participant_create(
                    actor=self.registry_actor(), name=name, kind=kind, uscc=uscc, email=f"{key}@demo.greenledger.cn"
                )
            self.p[key] = participant
            if key == "registry":
                self.user("admin", participant, Role.ADMIN, superuser=True)
                # The second registry officer: approves what the first requests (four eyes).
                self.user("registry_officer", participant, Role.TRADER, desk="registry")
        self.user("exchange_ops", self.p["exchange"], Role.ADMIN, desk="exchange")
        for key in ("jingneng", "shougang", "cement", "yanshan", "airport", "forestry"):
            self.user(f"{key}_trader", self.p[key], Role.TRADER, desk="trader" if key == "jingneng" else None)
        for key in ("bank_bj", "bank_ccb"):
            self.user(f"{key}_officer", self.p[key], Role.ADMIN, desk="bank")
        self.user("verifier", self.p["verifier"], Role.ADMIN)
        self.user("auditor", self.p["auditor"], Role.VIEWER, desk="auditor")

    def markets(self) -> None:
        """The shipped markets and rulebooks, then a demo rehearsal version of each from the first demo day:
        the same rules, but every mode's sessions all day, every day, so a newcomer can trade at any hour.
        The national markets also run the continuous book in the rehearsal, for the demo's bots and history."""
        actor = Actor.system("seed_demo")
        markets_install(actor=actor)
        for market in MarketRow.objects.filter(code__in=["CN-CEA", "CN-CCER", "BJ-BEA"]).order_by("code"):
            latest = rulebooks_of(market)[0]
            if latest.title.endswith(DEMO_REHEARSAL):
                continue
            modes = [{**m, "sessions": "00:00-24:00"} for m in rulebook_payload(latest)["modes"]]
            if not any(m["mode"] == "continuous" for m in modes):
                listing = next(m for m in modes if m["mode"] == "listing")
                modes.append({**listing, "mode": "continuous"})
            rulebook_publish(
                actor=self.exchange_actor(),
                market=market,
                effective_from=clock.trading_day(),
                changes={"trading_days": "daily", "title": f"{latest.title}{DEMO_REHEARSAL}"},
                modes=modes,
            )

    def exchange_actor(self) -> Actor:
        return Actor.for_user(get_user_model().objects.get(username="exchange_ops"))

    def allowances(self) -> None:
        actor = self.registry_actor()
        allocations = [("CN-CEA", "CEA", v, a) for v, a in ALLOCATIONS.items()]
        allocations += [("BJ-BEA", "BEA", v, a) for v, a in BEA_ALLOCATIONS.items()]
        for market, prefix, vintage, amounts in allocations:
            asset = Asset.objects.filter(code=f"{prefix}-{vintage}").first() or cea_vintage_create(
                actor=actor, vintage=vintage, market=market
            )
            rows = [AllocationRow(account=main_account(self.p[key]), quantity=q) for key, q in amounts.items()]
            key = f"demo-allocation-{vintage}" if prefix == "CEA" else f"demo-allocation-{prefix}-{vintage}"
            # Above the four-eyes threshold: the admin requests, a second registry officer approves.
            pending = gated(
                actor=actor,
                operation=ApprovalOperation.CEA_ALLOCATE,
                params={
                    "asset": asset.code,
                    "rows": [[r.account.number, r.quantity] for r in rows],
                    "idempotency_key": key,
                    "memo": "",
                },
                summary=demo_allocation_summary(asset.code),
                call=partial(cea_allocate, actor=actor, asset=asset, rows=rows, idempotency_key=key),
            )
            if isinstance(pending, ApprovalRequest):
                approval_approve(actor=self.second_registry_actor(), approval=pending)

    def waiting_approval(self) -> None:
        """An allocation above the four-eyes threshold that ``admin`` requested and nobody has decided yet: the
        README's "approve a request" flow for ``registry_officer`` (approving it allocates 1,100,000 t of
        CEA-2025 to Yanshan Petrochemical)."""
        summary = demo_waiting_allocation_summary()
        if ApprovalRequest.objects.filter(summary=summary).exists():
            return
        actor = self.registry_actor()
        asset = Asset.objects.get(code="CEA-2025")
        rows = [AllocationRow(account=main_account(self.p["yanshan"]), quantity=1_100_000)]
        key = "demo-allocation-waiting"
        gated(
            actor=actor,
            operation=ApprovalOperation.CEA_ALLOCATE,
            params={
                "asset": asset.code,
                "rows": [[r.account.number, r.quantity] for r in rows],
                "idempotency_key": key,
                "memo": "",
            },
            summary=summary,
            call=partial(cea_allocate, actor=actor, asset=asset, rows=rows, idempotency_key=key),
        )

    def ccer(self) -> None:
        actor = self.registry_actor()
        project = Project.objects.filter(code=FOREST_PROJECT["code"]).first()
        if project is None:
            project = project_register(actor=actor, owner=self.p["forestry"], **FOREST_PROJECT)
        if not Issuance.objects.filter(external_reference="CCER-ISS-2024-0001").exists():
            ccer_issue(
                actor=actor,
                project=project,
                vintage=2023,
                monitoring_start=date(2021, 1, 1),
                monitoring_end=date(2023, 12, 31),
                quantity=400_000,
                external_reference="CCER-ISS-2024-0001",
            )

    def ccer_cycle(self) -> None:
        """The 2023 Measures' rule and first four methodologies, and a second Tongzhou afforestation project
        applied for and published for comment (its window counted in working days on the CN calendar)."""
        actor = self.registry_actor()
        ccer_reference_seed(actor=actor)
        application = ProjectApplication.objects.filter(code=FOREST_APPLICATION["code"]).first()
        if application is None:
            application = ccer_application_submit(actor=actor, owner=self.p["forestry"], **FOREST_APPLICATION)
        if application.status == CycleStatus.APPLIED:
            ccer_publicity_open(actor=actor, target=application)

    def market(self) -> None:
        operator = Actor.for_user(get_user_model().objects.get(username="exchange_ops"))
        for code, reference in LISTINGS + BEA_LISTINGS:
            asset = Asset.objects.get(code=code)
            if not MarketRules.objects.filter(asset=asset).exists():
                # The demo market is open all day, every day, so a newcomer can trade at any hour.
                # The demo rehearsal rulebooks (self.markets) open all day, every day.
                asset_list(actor=operator, asset=asset, reference_price_fen=reference)
        for key, amount_fen in DEPOSITS.items():
            with suppress(DuplicateBankReference):  # booked by an earlier run
                cash_deposit(
                    actor=operator,
                    account=main_account(self.p[key]),
                    amount_fen=amount_fen,
                    reference=f"DEMO-DEPOSIT-{key}",
                )

    def history(self) -> None:
        """Trade each listed asset on the past days with the clock pinned to each day, settle, and close.

        Recorded once, on a market that has neither orders nor closes yet: past orders placed into a live
        book would trade with it. Prices walk back from the reference price by at most 1.2% a day, so
        today's book sits inside the price band of the last close.
        """
        codes = [code for code, _, _, _ in HISTORY]
        if Order.objects.filter(asset__code__in=codes).exists() or DailyPrice.objects.exists():
            if not DailyPrice.objects.exists():
                self.notes.append(gettext("no price history: the market already had orders"))
            return
        operator = Actor.for_user(get_user_model().objects.get(username="exchange_ops"))
        today = clock.trading_day()
        with clock.pinned(self.before_history):
            for key, amount_fen in HISTORY_DEPOSITS.items():
                cash_deposit(
                    actor=operator,
                    account=main_account(self.p[key]),
                    amount_fen=amount_fen,
                    reference=f"DEMO-DEPOSIT-HISTORY-{key}",
                )
        days = [today - timedelta(days=n) for n in range(HISTORY_DAYS, 0, -1)]
        reference = dict(LISTINGS)
        levels: dict[str, list[int]] = {}
        for code, _, _, _ in HISTORY:
            rng = random.Random(code)  # the same history on every machine
            walk = [reference[code]]
            for _ in days[1:]:
                walk.append(max(1, round(walk[-1] * (1 + rng.uniform(-0.012, 0.012)))))
            levels[code] = walk[::-1]
        for index, day in enumerate(days):
            for code, seller, buyer, most in HISTORY:
                self._history_day(code, seller, buyer, most, day, levels[code][index])
            if day == days[-1]:
                self._modes_day(day, {code: walk[index] for code, walk in levels.items()})
            # After the day's close (the rehearsal's sessions end at midnight), as the registry does.
            with clock.pinned(_at(day + timedelta(days=1), 0, 1)):
                settlement_run(idempotency_key=f"demo-history-settlement-{day.isoformat()}")
                for code, _, _, _ in HISTORY:
                    day_close(asset=Asset.objects.get(code=code), day=day)
                if day == days[-1]:
                    day_close(asset=Asset.objects.get(code=BEA_LISTINGS[0][0]), day=day)

    def _history_day(self, code: str, seller: str, buyer: str, most: int, day: date, level: int) -> None:
        rng = random.Random(f"{code}-{day.isoformat()}")
        asset = Asset.objects.get(code=code)
        users = get_user_model().objects
        sides = (
            ("sell", seller, Actor.for_user(users.get(username=f"{seller}_trader"))),
            ("buy", buyer, Actor.for_user(users.get(username=f"{buyer}_trader"))),
        )
        for n in range(rng.randint(2, 4)):
            price = level + rng.randint(-40, 40)
            quantity = rng.randint(most // 10, most // 3) // 10 * 10
            with clock.pinned(_at(day, (9, 10, 13, 14)[n], 41)):
                for side, key, actor in sides:
                    order_place(
                        actor=actor,
                        account=main_account(self.p[key]),
                        asset=asset,
                        side=side,
                        mode="listing",
                        price_fen=price,
                        quantity=quantity,
                        client_order_id=f"demo-history-{code}-{day.isoformat()}-{n}-{side}",
                    )

    def _trader(self, key: str) -> Actor:
        return Actor.for_user(get_user_model().objects.get(username=f"{key}_trader"))

    def _modes_day(self, day: date, level: dict[str, int]) -> None:
        """Trade under every mode of the rulebooks on ``day``, from 14:42, after the day's book trades."""
        ref = f"demo-modes-{day.isoformat()}"
        for n, (code, seller, picker, quantity, over) in enumerate(MODE_LISTINGS):
            asset = Asset.objects.get(code=code)
            listing = listing_post(
                actor=self._trader(seller),
                account=main_account(self.p[seller]),
                asset=asset,
                side="sell",
                price_fen=level[code] + over,
                quantity=quantity,
                partial_allowed=False,
                client_order_id=f"{ref}-listing-{n}",
                at=_at(day, 14, 42),
            )
            listing_pick(
                actor=self._trader(picker),
                account=main_account(self.p[picker]),
                listing=listing,
                client_order_id=f"{ref}-pick-{n}",
                at=_at(day, 14, 43),
            )
        for n, (code, seller, buyer, quantity, accepted) in enumerate(MODE_BLOCKS):
            minute = 44 + 2 * n
            offer = block_offer(
                actor=self._trader(seller),
                account=main_account(self.p[seller]),
                asset=Asset.objects.get(code=code),
                side="sell",
                price_fen=level[code],
                quantity=quantity,
                counterparty=self.p[buyer],
                client_order_id=f"{ref}-block-{n}",
                at=_at(day, 14, minute),
            )
            if accepted:
                block_accept(
                    actor=self._trader(buyer),
                    account=main_account(self.p[buyer]),
                    offer=offer,
                    client_order_id=f"{ref}-block-accept-{n}",
                    at=_at(day, 14, minute + 1),
                )
            else:
                with clock.pinned(_at(day, 14, minute + 1)):
                    block_decline(actor=self._trader(buyer), offer=offer)
        code, seller, quantity, bids = MODE_AUCTION
        auction = auction_announce(
            actor=self._trader(seller),
            account=main_account(self.p[seller]),
            asset=Asset.objects.get(code=code),
            quantity=quantity,
            reserve_price_fen=level[code] - 100,
            opens_at=_at(day, 14, 49),
            closes_at=_at(day, 14, 54),
            client_order_id=f"{ref}-auction",
            at=_at(day, 14, 48),
        )
        for n, (bidder, under, tonnes) in enumerate(bids):
            auction_bid(
                actor=self._trader(bidder),
                account=main_account(self.p[bidder]),
                auction=auction,
                price_fen=level[code] - under,
                quantity=tonnes,
                client_order_id=f"{ref}-bid-{n}",
                at=_at(day, 14, 50 + n),
            )
        with clock.pinned(_at(day, 14, 55)):
            auction_close(auction=auction, actor=self.exchange_actor())
        (code, reference), (seller, buyer, tonnes) = BEA_LISTINGS[0], MODE_BEA
        for minute, (side, key) in enumerate((("sell", seller), ("buy", buyer)), start=56):
            order_place(
                actor=self._trader(key),
                account=main_account(self.p[key]),
                asset=Asset.objects.get(code=code),
                side=side,
                mode="listing",
                price_fen=reference,
                quantity=tonnes,
                client_order_id=f"{ref}-bea-{side}",
                at=_at(day, 14, minute),
            )

    def orders(self) -> None:
        for key, code, side, price_fen, quantity in OPEN_ORDERS:
            trader = get_user_model().objects.get(username=f"{key}_trader")
            client_order_id = f"demo-{code}-{side}-{price_fen}"
            if Order.objects.filter(participant=self.p[key], client_order_id=client_order_id).exists():
                continue
            order_place(
                actor=Actor.for_user(trader),
                account=main_account(self.p[key]),
                asset=Asset.objects.get(code=code),
                side=side,
                mode="listing",
                price_fen=price_fen,
                quantity=quantity,
                client_order_id=client_order_id,
            )

    def compliance(self) -> None:
        actor = self.registry_actor()
        year = ComplianceYear.objects.filter(pk=COMPLIANCE_YEAR).first() or compliance_year_create(
            actor=actor, year=COMPLIANCE_YEAR
        )
        entities = [self.p[key] for key in VERIFIED]
        if Obligation.objects.filter(year=year).count() < len(entities):
            for sector in sorted(set(SECTORS.values())):
                keys = [key for key in VERIFIED if SECTORS[key] == sector]
                entities_cover(actor=actor, year=year, entities=[self.p[key] for key in keys], sector=sector)
        obligations = {o.entity_id: o for o in Obligation.objects.filter(year=year)}
        verifier = Actor.for_user(get_user_model().objects.get(username="verifier"))
        for key, quantity in VERIFIED.items():
            obligation = obligations[self.p[key].pk]
            if not obligation.emissions.exists():
                emissions_record(
                    actor=verifier,
                    obligation=obligation,
                    quantity=quantity,
                    report_reference=f"CQC-{COMPLIANCE_YEAR}-{key}",
                )
        cea = Asset.objects.get(code=f"CEA-{COMPLIANCE_YEAR}")
        for key, quantity in SURRENDERS.items():
            trader = Actor.for_user(get_user_model().objects.get(username=f"{key}_trader"))
            surrender_create(
                actor=trader,
                account=main_account(self.p[key]),
                year=COMPLIANCE_YEAR,
                items=[SurrenderLine(asset=cea, quantity=quantity)],
                idempotency_key=f"demo-surrender-{COMPLIANCE_YEAR}-{key}",
            )

    def compliance_rules(self) -> None:
        """The allocation rules of the 2023-2024 power plan and of the 2025 plans, the 2024 plan's carryover
        limit and an official monthly price, as versioned rule data (entering them again changes nothing)."""
        actor = self.registry_actor()
        for year in (2023, 2024):
            allocation_rule_set(
                actor=actor,
                year=year,
                sector="power",
                stage="pre_allocation",
                method="previous_share",
                share_bp=7000,
                effective_from=date(2024, 10, 1),
                source=f"{PLAN_2023_2024}: pre-allocation from the previous year's verified emissions (demo share)",
            )
            allocation_rule_set(
                actor=actor,
                year=year,
                sector="power",
                stage="final",
                method="benchmark",
                benchmark_ppm=DEMO_POWER_BENCHMARK_PPM,
                heat_benchmark_ppm=DEMO_HEAT_BENCHMARK_PPM,
                output_unit="MWh",
                factors=POWER_FACTORS,
                effective_from=date(2024, 10, 1),
                source=f"{PLAN_2023_2024}: output x benchmark x correction factors (demo figures)",
            )
        for sector in ("steel", "cement", "aluminium"):
            allocation_rule_set(
                actor=actor,
                year=2024,
                sector=sector,
                stage="final",
                method="verified_emissions",
                share_bp=10000,
                effective_from=date(2025, 3, 1),
                source=f"{PLAN_2024_INDUSTRY}: the allocation equals the 2024 verified emissions",
            )
        allocation_rule_set(
            actor=actor,
            year=2025,
            sector="",
            stage="pre_allocation",
            method="previous_share",
            share_bp=7000,
            effective_from=date(2025, 9, 1),
            source=f"{PLAN_2025}: pre-allocation of 70% of the 2024 verified emissions",
        )
        allocation_rule_set(
            actor=actor,
            year=2025,
            sector="power",
            stage="final",
            method="benchmark",
            benchmark_ppm=DEMO_POWER_BENCHMARK_PPM,
            heat_benchmark_ppm=DEMO_HEAT_BENCHMARK_PPM,
            output_unit="MWh",
            factors=POWER_FACTORS,
            effective_from=date(2025, 9, 1),
            source=f"{PLAN_2025}: power, output x benchmark x correction factors (demo figures)",
        )
        carryover_rule_set(
            actor=actor,
            year=2024,
            first_vintage=2019,
            base_tonnes=10_000,
            net_sales_multiple_bp=15_000,
            sales_from=date(2024, 1, 1),
            sales_to=date(2025, 12, 31),
            enforced=True,
            timely_compliance_required=True,
            effective_from=date(2024, 10, 1),
            source=f"{PLAN_2023_2024}: carryover of 2019-2024 allowances, 10,000 t + 1.5 x net sales",
        )
        official_price_set(
            actor=actor,
            market="CN-ETS",
            month=date(2026, 11, 1),
            price_fen=7_650,
            source="Official monthly price of the national allowance market (demo figure)",
        )

    def retirement(self) -> None:
        """The forestry project owner retires CCER for a festival: its certificate is on the public registry."""
        owner = Actor.for_user(get_user_model().objects.get(username="forestry_trader"))
        retirement_create(
            actor=owner,
            account=main_account(self.p["forestry"]),
            asset=Asset.objects.get(code="CCER-BJ-TZ-FOREST-001-2023"),
            quantity=2_000,
            beneficiary=DEMO_BENEFICIARY,
            reason="Offsetting the festival's estimated emissions (travel, venues and power)",
            idempotency_key="demo-retirement-festival-2026",
        )

    def token(self) -> None:
        tokens = [("jingneng_trader", "demo", DEMO_TOKEN)]
        tokens += [(username, f"demo {role} bot", text) for role, (username, text) in BOT_TOKENS.items()]
        for username, name, text in tokens:
            user = get_user_model().objects.get(username=username)
            if not ApiToken.objects.filter(prefix=text.split("_")[1]).exists():
                api_token_create(actor=Actor.system("seed_demo"), user=user, name=name, token_text=text)

    def pledge(self) -> None:
        """Jingneng pledges 50,000 t of CEA-2024 to the Bank of Beijing for a one-year loan of 2.4 million yuan.

        A pledge is valued at the market's price, so CEA-2024 is listed first (at 80.00 yuan) unless the
        exchange has listed it already.
        """
        cea = Asset.objects.get(code="CEA-2024")
        if not MarketRules.objects.filter(asset=cea).exists():
            exchange = Actor.for_user(get_user_model().objects.get(username="exchange_ops"))
            asset_list(actor=exchange, asset=cea, reference_price_fen=8000)
        borrower = Actor.for_user(get_user_model().objects.get(username="jingneng_trader"))
        bank = Actor.for_user(get_user_model().objects.get(username="bank_bj_officer"))
        today = clock.trading_day()
        # Found by its parties, not replayed by a key: the terms name today's date, so a later run differs.
        loan = PledgeLoan.objects.filter(
            borrower=self.p["jingneng"], lender=self.p["bank_bj"]
        ).first() or pledge_request(
            actor=borrower,
            account=main_account(self.p["jingneng"]),
            lender=self.p["bank_bj"],
            asset=cea,
            quantity=50_000,
            principal_fen=240_000_000,  # 2,400,000.00 yuan: LTV 60% at 80.00 yuan a tonne
            annual_rate_bp=385,
            start_date=today,
            maturity_date=today.replace(year=today.year + 1, day=min(today.day, 28)),
            ltv_limit_bp=7000,
            margin_call_bp=8000,
            liquidation_bp=9000,
        )
        if loan.status == PledgeStatus.REQUESTED:
            loan = pledge_confirm(actor=bank, loan=loan, terms_digest=loan.terms_digest)
        if loan.status == PledgeStatus.APPLIED:
            pledge_register(actor=self.registry_actor(), loan=loan)
