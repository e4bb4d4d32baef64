"""``greenledger``: the trading client on the command line.

    export GREENLEDGER_URL=http://127.0.0.1:8000 GREENLEDGER_TOKEN=gl_demo_jingneng-trader-demo-token
    greenledger holdings
    greenledger order place buy CEA-2024 100 88.30
    greenledger book CEA-2024
    greenledger watch --types order.filled,trade.settled
    greenledger proof verify 42
    greenledger proof feed --save kept-feed.jsonl      # later: greenledger proof feed --against kept-feed.jsonl

Prints aligned tables (``--json`` prints the API's JSON instead). Exit status: 0 done, 1 refused by the
server or a proof that does not hold (the error code and message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import gettext
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from exchange.audit_proof import ProofError, ProofProblem, gettext_noop, kept_checkpoints
from exchange.client import DEFAULT_URL, Client, ClientError

# --- language -------------------------------------------------------------------------------------------
# The CLI speaks Chinese when the locale is Chinese (LANG=zh_CN.UTF-8...) or GREENLEDGER_LANGUAGE says so, and
# asks the server for its error messages in the same language. The words are the server's catalogue
# (locale/zh_Hans, compiled by make install), read with the standard library's gettext.
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
_translation: gettext.NullTranslations = gettext.NullTranslations()


def cli_language(environ: Mapping[str, str] | None = None) -> str:
    """``zh-hans`` or ``en``: GREENLEDGER_LANGUAGE, else the locale as gettext reads it, else English."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("GREENLEDGER_LANGUAGE", "").strip().lower()
    if not chosen:
        for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
            if environ.get(name):
                chosen = environ[name].split(":")[0].lower()
                break
    return "zh-hans" if chosen.startswith("zh") else "en"


def activate(language: str) -> None:
    global _translation
    if language == "zh-hans":
        _translation = gettext.translation("django", localedir=LOCALE_DIR, languages=["zh_Hans"], fallback=True)
    else:
        _translation = gettext.NullTranslations()


def _(message: str) -> str:
    return _translation.gettext(message)


def side_name(side: str) -> str:
    """``buy`` or ``sell`` as the reader says it (the words the statement CSV uses too)."""
    return _translation.pgettext("a trade leg's side", side)


# --- output ---------------------------------------------------------------------------------------------
def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    text = str(value)
    digits = text.lstrip("-").replace(".", "", 1)
    return bool(text) and digits.isascii() and digits.isdigit()


MONEY = re.compile(r"(-?)(\d+)\.(\d{2})")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int):
        return f"{value:,}"
    money = MONEY.fullmatch(str(value))
    if money:  # yuan as the API writes them ("2400000.00"), grouped for reading
        sign, whole, cents = money.groups()
        return f"{sign}{int(whole):,}.{cents}"
    return str(value)


def _width(text: str) -> int:
    """Columns a terminal gives the text: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * (width - _width(text))
    return space + text if right else text + space


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO) -> None:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned. Headers are translated
    here (a header marked with ``gettext_noop`` in a constant, or one given translated already)."""
    headers = [_(h) for h in headers]
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(_is_number(row[i]) for row in rows if row[i] is not None) and bool(rows) for i in range(len(headers))
    ]
    widths = [max([_width(h), *(_width(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [_pad(v, w, num) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(list(headers)) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    if not rows:
        out.write(_("(none)") + "\n")


def print_rows(
    result: Any,
    args: argparse.Namespace,
    out: TextIO,
    headers: Sequence[str],
    row: Callable[[Any], Sequence[object]],
) -> Any:
    """The one way a command prints what it got: with ``--json`` the answer as it came (the command returns it),
    else a table with one row (``result`` a single object) or a row per item (``result`` a list)."""
    if args.json:
        return result
    items = [result] if isinstance(result, Mapping) else result
    table(headers, [row(item) for item in items], out)
    return None


# --- commands -------------------------------------------------------------------------------------------
def cmd_me(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    me = gl.me()
    if args.json:
        return me
    p = me["participant"]
    out.write(
        _("%(user)s (%(role)s) for %(name)s [%(kind)s]")
        % {"user": me["user"], "role": me["role"], "name": p["name"], "kind": p["kind"]}
        + "\n"
    )
    out.write(_("accounts: %(accounts)s") % {"accounts": ", ".join(me["accounts"]) or "-"} + "\n")
    return None


def cmd_holdings(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    account = args.account or gl.default_account()
    rows = gl.holdings(account)
    if args.json:
        return rows
    out.write(_("Holdings of %(account)s") % {"account": account} + "\n")
    table(
        [_("asset"), _("kind"), _("total"), _("held"), _("available")],
        [[h["asset"], h["asset_kind"], h["total"], h["held"], h["available"]] for h in rows],
        out,
    )
    return None


def cmd_transfer(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    txn = gl.transfer(
        source=args.source,
        destination=args.destination,
        asset=args.asset,
        quantity=args.quantity,
        memo=args.memo,
        idempotency_key=args.key,
    )
    if args.json:
        return txn
    pending = txn.get("pending_transfer")
    if pending is not None:
        # Not on the trusted list: the units are held now and move after the delay unless cancelled.
        out.write(
            _(
                "Pending transfer %(id)s: %(quantity)s t of %(asset)s to %(destination)s, carried out after "
                "%(after)s unless cancelled."
            )
            % {
                "id": pending["id"],
                "quantity": f"{pending['quantity']:,}",
                "asset": pending["asset"],
                "destination": pending["destination"],
                "after": pending["execute_after"],
            }
            + f"\n{txn.get('message', '')}\n"
        )
        return None
    out.write(
        _("Transaction %(id)s (%(kind)s) at %(time)s")
        % {"id": txn["id"], "kind": txn["kind"], "time": txn["created_at"]}
        + "\n"
    )
    table(
        [_("asset"), _("first serial"), _("last serial"), _("from"), _("to")],
        [[m["asset"], m["first"], m["last"], m["source"], m["destination"]] for m in txn.get("serial_ranges", [])],
        out,
    )
    return None


ORDER_HEADERS = [
    gettext_noop("id"),
    gettext_noop("side"),
    gettext_noop("asset"),
    gettext_noop("mode"),
    gettext_noop("price"),
    gettext_noop("quantity"),
    gettext_noop("filled"),
    gettext_noop("status"),
    gettext_noop("day"),
]


def cmd_non_trade(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    applied = gl.non_trade_transfer(
        destination=args.destination,
        asset=args.asset,
        quantity=args.quantity,
        legal_basis=args.legal_basis,
        legal_basis_text=args.legal_basis_text,
        document_sha256=args.document_sha256,
        source=args.source,
        memo=args.memo,
        idempotency_key=args.key,
    )
    if args.json:
        return applied
    out.write(
        _(
            "Non-trade transfer %(id)s %(status)s: %(quantity)s t of %(asset)s held in %(source)s until two "
            "registry officers decide"
        )
        % {
            "id": applied["id"],
            "status": applied["status"],
            "quantity": f"{applied['quantity']:,}",
            "asset": applied["asset"],
            "source": applied["source"],
        }
        + "\n"
    )
    return None


def cmd_non_trade_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.non_trade_transfers(limit=args.limit),
        args,
        out,
        [
            _("id"),
            _("status"),
            _("source account"),
            _("destination account"),
            _("asset"),
            _("quantity (t)"),
            _("legal basis"),
        ],
        lambda t: [
            str(t["id"]),
            t["status"],
            t["source"],
            t["destination"],
            t["asset"],
            t["quantity"],
            t["legal_basis"],
        ],
    )


def cmd_ccer_claims(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.ccer_claims(limit=args.limit),
        args,
        out,
        [_("id"), _("project"), _("vintage"), _("quantity (t)"), _("status")],
        lambda c: [str(c["id"]), c["project"], str(c["vintage"]), c["quantity"], c["status"]],
    )


def cmd_ccer_comment(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    comment = gl.ccer_comment(application=args.application, claim=args.claim, text=args.text)
    if args.json:
        return comment
    out.write(_("Comment %(id)s recorded (%(day)s)") % {"id": comment["id"], "day": comment["received_on"]} + "\n")
    return None


def cmd_ccer_apply(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    fields = {
        name: getattr(args, name)
        for name in (
            "code",
            "name",
            "project_type",
            "methodology",
            "location",
            "start_date",
            "crediting_start",
            "crediting_end",
            "validation_body",
            "validation_report_sha256",
        )
    }
    applied = gl.ccer_apply(idempotency_key=args.key, **fields)
    if args.json:
        return applied
    out.write(
        _("Application %(id)s for %(code)s: %(status)s")
        % {"id": applied["id"], "code": applied["code"], "status": applied["status"]}
        + "\n"
    )
    return None


def cmd_ccer_claim(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    claim = gl.ccer_claim(
        idempotency_key=args.key,
        project=args.project,
        vintage=args.vintage,
        monitoring_start=args.monitoring_start,
        monitoring_end=args.monitoring_end,
        quantity=args.quantity,
        verification_body=args.verification_body,
        verification_report_sha256=args.verification_report_sha256,
    )
    if args.json:
        return claim
    out.write(
        _("Claim %(id)s of %(quantity)s t for %(project)s: %(status)s")
        % {
            "id": claim["id"],
            "quantity": f"{claim['quantity']:,}",
            "project": claim["project"],
            "status": claim["status"],
        }
        + "\n"
    )
    return None


def _order_row(o: Mapping[str, Any]) -> list[object]:
    status = (
        o["status"]
        if not o.get("end_reason") or o["end_reason"] == o["status"]
        else f"{o['status']} ({o['end_reason']})"
    )
    # Ids print as they are typed back (no thousands separators).
    return [
        str(o["id"]),
        side_name(o["side"]),
        o["asset"],
        o["mode"],
        o["price"],
        o["quantity"],
        o["filled"],
        status,
        o["trading_day"],
    ]


def cmd_order_place(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    placed = gl.place_order(
        account=args.account,
        asset=args.asset,
        side=args.side,
        price=args.price,
        quantity=args.quantity,
        mode=args.mode,
        client_order_id=args.client_order_id,
    )
    if args.json:
        return placed
    _show_placed(placed, out)
    return None


def cmd_order_cancel(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    order = gl.cancel_order(args.order)
    if args.json:
        return order
    out.write(
        _("Order %(id)s %(status)s: %(filled)s t filled, %(remaining)s t not")
        % {"id": order["id"], "status": order["status"], "filled": order["filled"], "remaining": order["remaining"]}
        + "\n"
    )
    return None


def cmd_order_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.orders(status=args.status, asset=args.asset, limit=args.limit), args, out, ORDER_HEADERS, _order_row
    )


def cmd_book(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    book = gl.book(args.asset, mode=args.mode)
    if args.json:
        return book
    out.write(
        _("%(asset)s %(mode)s book, previous close %(close)s")
        % {"asset": book["asset"], "mode": book["mode"], "close": book["previous_close"] or "-"}
        + "\n"
    )
    depth = max(len(book["bids"]), len(book["asks"]))
    rows: list[list[object]] = []
    for i in range(depth):
        bid = book["bids"][i] if i < len(book["bids"]) else None
        ask = book["asks"][i] if i < len(book["asks"]) else None
        rows.append(
            [
                bid["orders"] if bid else None,
                bid["quantity"] if bid else None,
                bid["price"] if bid else None,
                ask["price"] if ask else None,
                ask["quantity"] if ask else None,
                ask["orders"] if ask else None,
            ]
        )
    table([_("orders"), _("bid qty"), _("bid"), _("ask"), _("ask qty"), _("orders")], rows, out)
    return None


def cmd_trades(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    if args.market:
        if not args.asset:
            raise SystemExit(_("greenledger trades --market needs --asset"))
        return print_rows(
            gl.market_trades(args.asset, limit=args.limit),
            args,
            out,
            [_("trade"), _("time"), _("asset"), _("price"), _("quantity"), _("aggressor"), _("settled")],
            lambda t: [
                str(t["id"]),
                t["created_at"],
                t["asset"],
                t["price"],
                t["quantity"],
                t["aggressor"],
                t["settled"],
            ],
        )
    return print_rows(
        gl.trades(asset=args.asset, limit=args.limit),
        args,
        out,
        [_("trade"), _("day"), _("side"), _("asset"), _("price"), _("quantity"), _("fee"), _("order"), _("settled")],
        lambda t: [
            str(t["id"]),
            t["trading_day"],
            side_name(t["side"]),
            t["asset"],
            t["price"],
            t["quantity"],
            t["fee"],
            str(t["order"]),
            t["settled"],
        ],
    )


def _show_placed(placed: Mapping[str, Any], out: TextIO) -> None:
    order = placed["order"]
    out.write(
        _("Order %(id)s %(status)s: %(filled)s of %(quantity)s t filled")
        % {"id": order["id"], "status": order["status"], "filled": order["filled"], "quantity": order["quantity"]}
        + "\n"
    )
    if placed["trades"]:
        table(
            [_("trade"), _("price"), _("quantity"), _("turnover")],
            [[str(t["id"]), t["price"], t["quantity"], t["turnover"]] for t in placed["trades"]],
            out,
        )


def cmd_listing_post(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    listing = gl.post_listing(
        asset=args.asset,
        side=args.side,
        price=args.price,
        quantity=args.quantity,
        partial_allowed=not args.whole,
        account=args.account,
        idempotency_key=args.key,
    )
    return print_rows(listing, args, out, ORDER_HEADERS, _order_row)


def cmd_listing_book(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    book = gl.listing_book(args.asset)
    if args.json:
        return book
    rows = [
        [side, level["price"], level["quantity"], " ".join(f"#{x['id']}:{x['quantity']}" for x in level["listings"])]
        for side in ("asks", "bids")
        for level in book[side]
    ]
    table([_("side"), _("price"), _("quantity"), _("listings (id:quantity, oldest first)")], rows, out)
    return None


def cmd_listing_pick(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    if args.listing is not None:
        placed = gl.pick(args.listing, quantity=args.quantity, account=args.account, idempotency_key=args.key)
    else:
        if not (args.asset and args.side and args.price and args.quantity):
            raise ClientError("invalid", _("Pick a listing id, or --asset, --side, --price and --quantity of a level."))
        placed = gl.pick_level(
            asset=args.asset,
            side=args.side,
            price=args.price,
            quantity=args.quantity,
            account=args.account,
            idempotency_key=args.key,
        )
    if args.json:
        return placed
    _show_placed(placed, out)
    return None


def cmd_block_offer(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    offer = gl.block_offer(
        asset=args.asset,
        side=args.side,
        price=args.price,
        quantity=args.quantity,
        counterparty=args.to,
        account=args.account,
        idempotency_key=args.key,
    )
    return print_rows(offer, args, out, ORDER_HEADERS, _order_row)


def cmd_block_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(gl.blocks(), args, out, ORDER_HEADERS, _order_row)


def cmd_block_accept(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    placed = gl.block_accept(args.offer, account=args.account, idempotency_key=args.key)
    if args.json:
        return placed
    _show_placed(placed, out)
    return None


def cmd_block_decline(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    offer = gl.block_decline(args.offer, idempotency_key=args.key)
    return print_rows(offer, args, out, ORDER_HEADERS, _order_row)


def cmd_block_counter(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    offer = gl.block_counter(
        args.offer, price=args.price, quantity=args.quantity, account=args.account, idempotency_key=args.key
    )
    return print_rows(offer, args, out, ORDER_HEADERS, _order_row)


AUCTION_HEADERS = [
    gettext_noop("auction"),
    gettext_noop("asset"),
    gettext_noop("quantity"),
    gettext_noop("reserve"),
    gettext_noop("opens"),
    gettext_noop("closes"),
    gettext_noop("status"),
    gettext_noop("sold"),
    gettext_noop("clearing"),
]


def _auction_row(a: Mapping[str, Any]) -> list[object]:
    return [
        str(a["id"]),
        a["asset"],
        a["quantity"],
        a["reserve_price"],
        a["opens_at"],
        a["closes_at"],
        a["status"],
        a["sold"],
        a["clearing_price"] or "",
    ]


def cmd_auction_announce(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    auction = gl.auction_announce(
        asset=args.asset,
        quantity=args.quantity,
        reserve_price=args.reserve,
        opens_at=args.opens,
        closes_at=args.closes,
        account=args.account,
        idempotency_key=args.key,
    )
    return print_rows(auction, args, out, AUCTION_HEADERS, _auction_row)


def cmd_auction_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(gl.auctions(), args, out, AUCTION_HEADERS, _auction_row)


def cmd_auction_bid(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    bid = gl.auction_bid(
        args.auction, price=args.price, quantity=args.quantity, account=args.account, idempotency_key=args.key
    )
    return print_rows(bid, args, out, ORDER_HEADERS, _order_row)


def cmd_auction_close(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    auction = gl.auction_close(args.auction, idempotency_key=args.key)
    return print_rows(auction, args, out, AUCTION_HEADERS, _auction_row)


RULEBOOK_HEADERS = [
    gettext_noop("version"),
    gettext_noop("effective from"),
    gettext_noop("in effect"),
    gettext_noop("modes"),
    gettext_noop("position limit"),
    gettext_noop("large holder"),
    gettext_noop("title"),
]


def _rulebook_row(book: Mapping[str, Any]) -> list[object]:
    return [
        book["version"],
        book["effective_from"],
        "*" if book["in_effect"] else "",
        ",".join(m["mode"] for m in book["modes"]),
        book["position_limit_t"] if book["position_limit_rule"] != "none" else "-",
        book["large_holder_threshold_t"],
        book["title"],
    ]


def cmd_rulebook_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(gl.rulebooks(args.market), args, out, RULEBOOK_HEADERS, _rulebook_row)


def cmd_rulebook_publish(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    changes: dict[str, Any] = {}
    for pair in args.set or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ClientError("invalid", _("Each --set is NAME=VALUE (VALUE as JSON, or text)."))
        try:
            changes[name] = json.loads(value)
        except ValueError:
            changes[name] = value
    modes = json.loads(args.modes) if args.modes else None
    book = gl.rulebook_publish(
        args.market, effective_from=args.effective_from, changes=changes, modes=modes, idempotency_key=args.key
    )
    return print_rows(book, args, out, RULEBOOK_HEADERS, _rulebook_row)


def cmd_pledge_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.pledges(status=args.status, limit=args.limit),
        args,
        out,
        [
            _("id"),
            _("status"),
            _("borrower"),
            _("lender"),
            _("asset"),
            _("quantity"),
            _("principal"),
            _("LTV %"),
            _("maturity"),
        ],
        lambda p: [
            str(p["id"]),
            p["status"],
            p["borrower"]["name"],
            p["lender"]["name"],
            p["asset"],
            p["quantity"],
            p["principal"],
            p["ltv_percent"],
            p["maturity"],
        ],
    )


def _surrender_item(text: str) -> tuple[str, int]:
    asset, _sep, quantity = text.partition(":")
    if not asset or not quantity.isdigit():
        raise argparse.ArgumentTypeError(_("an item is ASSET:TONNES, e.g. CEA-2024:1000"))
    return asset, int(quantity)


def cmd_compliance_status(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.obligations(year=args.year),
        args,
        out,
        [
            _("year"),
            _("status"),
            _("verified"),
            _("surrendered"),
            _("remaining"),
            _("shortfall"),
            _("deducted next year"),
            _("penalty"),
        ],
        lambda o: [
            str(o["year"]),
            o["status"],
            o["verified"],
            o["surrendered"],
            o["remaining"],
            o["shortfall"],
            o.get("deduction"),
            _("%(low)s to %(high)s") % {"low": o["penalty_min"], "high": o["penalty_max"]}
            if o.get("penalty_min")
            else "",
        ],
    )


def cmd_compliance_surrender(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    surrender = gl.surrender(year=args.year, items=args.items, account=args.account, idempotency_key=args.key)
    if args.json:
        return surrender
    out.write(
        _("Surrendered %(quantity)s t for %(year)s (surrender %(id)s).")
        % {"quantity": f"{surrender['quantity']:,}", "year": surrender["year"], "id": surrender["id"]}
        + "\n"
    )
    return None


def cmd_compliance_carryover(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    limit = gl.carryover(args.year)
    if args.json:
        return limit
    rule = limit["rule"]
    out.write(
        _(
            "Carryover of %(first)s-%(year)s allowances: limit %(limit)s t (%(base)s t + %(multiple)s x net sales "
            "%(sales)s t from %(sales_from)s to %(sales_to)s); used %(used)s t, %(left)s t left"
        )
        % {
            "first": rule["first_vintage"],
            "year": rule["year"],
            "limit": f"{limit['limit']:,}",
            "base": f"{rule['base_tonnes']:,}",
            "multiple": f"{rule['net_sales_multiple_bp'] / 10000:g}",
            "sales": f"{limit['net_sales']:,}",
            "sales_from": rule["sales_from"],
            "sales_to": rule["sales_to"],
            "used": f"{limit['used']:,}",
            "left": f"{limit['remaining']:,}",
        }
        + ("" if limit["eligible"] else _(" (not eligible: a year was not completed on time)"))
        + ".\n"
    )
    return None


def _pledge_line(p: dict[str, Any], out: TextIO) -> None:
    enforcement = p.get("enforcement") or {}
    line = _(
        "Pledge %(id)s %(reference)s: %(status)s, %(quantity)s t of %(asset)s, principal %(principal)s, LTV %(ltv)s%%"
    ) % {
        "id": p["id"],
        "reference": p.get("registration_reference") or "",
        "status": p["status"],
        "quantity": f"{p['quantity']:,}",
        "asset": p["asset"],
        "principal": p["principal"],
        "ltv": p["ltv_percent"],
    }
    if enforcement:
        line += _(
            "; enforcement by %(method)s (%(status)s): debt %(due)s, lender received %(received)s, "
            "%(released)s t released"
        ) % {
            "method": enforcement["method"],
            "status": enforcement["status"],
            "due": enforcement["amount_due"],
            "received": enforcement["received_by_lender"],
            "released": f"{enforcement['units_released']:,}",
        }
    out.write(line + "\n")


def _waiting(result: Mapping[str, Any]) -> str:
    return _("Waiting for a second registry user: approval request %(id)s") % {"id": result["approval"]["id"]} + "\n"


def _pledge_result(result: dict[str, Any], args: argparse.Namespace, out: TextIO) -> Any:
    if args.json:
        return result
    if "approval" in result:
        out.write(_waiting(result))
    else:
        _pledge_line(result, out)
    return None


def cmd_pledge_show(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(gl.pledge(args.id), args, out)


def cmd_pledge_confirm(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(gl.pledge_confirm(args.id, lender_account=args.lender_account), args, out)


def cmd_pledge_register(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(gl.pledge_register(args.id), args, out)


def cmd_pledge_enforce(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(gl.pledge_enforce(args.id, method=args.method, price=args.price, costs=args.costs), args, out)


def cmd_pledge_agree(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(gl.pledge_step(args.id, "enforce/decline" if args.decline else "enforce/agree"), args, out)


def cmd_pledge_court_order(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(
        gl.pledge_court_order(
            args.id,
            court_reference=args.reference,
            document_sha256=args.sha256,
            units_to_lender=args.units,
            price=args.price,
        ),
        args,
        out,
    )


def cmd_pledge_compliance_release(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(
        gl.pledge_compliance_release(
            args.id,
            quantity=args.quantity,
            year=args.year,
            substitute_quantity=args.substitute,
            substitute_cash=args.substitute_cash,
        ),
        args,
        out,
    )


def cmd_pledge_consent(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    body = {"consent": not args.refuse, "reason": args.reason}
    return _pledge_result(gl.pledge_step(args.id, "compliance-release/decide", body), args, out)


def cmd_pledge_external_ref(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _pledge_result(gl.pledge_step(args.id, "external-registration", {"reference": args.reference}), args, out)


def _amendment_result(result: dict[str, Any], args: argparse.Namespace, out: TextIO) -> Any:
    if args.json:
        return result
    if "approval" in result:
        out.write(_waiting(result))
    else:
        out.write(
            _("Amendment %(id)s %(reference)s of pledge %(pledge)s: %(kind)s, %(status)s")
            % {
                "id": result["id"],
                "reference": result.get("reference") or "",
                "pledge": result["pledge"],
                "kind": result["kind"],
                "status": result["status"],
            }
            + (_(", %(quantity)s t") % {"quantity": f"{result['quantity']:,}"} if result["quantity"] else "")
            + (_(", matures %(day)s") % {"day": result["maturity_date"]} if result.get("maturity_date") else "")
            + "\n"
        )
    return None


def _serial_range(text: str) -> tuple[int, int]:
    first, _sep, last = text.partition("-")
    try:
        return int(first), int(last)
    except ValueError:
        raise argparse.ArgumentTypeError(_("a range FIRST-LAST")) from None


def cmd_pledge_amend(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _amendment_result(
        gl.pledge_amend(
            args.id,
            kind=args.kind,
            quantity=args.quantity,
            serials=args.serials,
            maturity_date=args.maturity,
            idempotency_key=args.key,
        ),
        args,
        out,
    )


def cmd_pledge_amendments(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.pledge_amendments(args.id),
        args,
        out,
        [_("id"), _("reference"), _("kind"), _("status"), _("tonnes"), _("matures"), _("registered")],
        lambda a: [
            a["id"],
            a["reference"] or "",
            a["kind"],
            a["status"],
            a["quantity"],
            a["maturity_date"] or "",
            a["registered_at"] or "",
        ],
    )


def cmd_pledge_amendment_confirm(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _amendment_result(gl.pledge_amendment_confirm(args.id, args.number), args, out)


def cmd_pledge_amendment_register(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _amendment_result(gl.pledge_amendment_step(args.id, args.number, "register"), args, out)


def cmd_pledge_amendment_reject(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return _amendment_result(
        gl.pledge_amendment_step(args.id, args.number, "reject", {"reason": args.reason}), args, out
    )


def cmd_pledge_exposure(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.pledge_exposure(),
        args,
        out,
        [
            _("lender"),
            _("loans"),
            _("principal"),
            _("collateral value"),
            _("LTV %"),
            _("margin calls"),
            _("in default"),
            _("received"),
        ],
        lambda r: [
            r["lender"],
            r["loans"],
            r["principal"],
            r["collateral_value"],
            "" if r["ltv_bp"] is None else f"{r['ltv_bp'] / 100:.2f}",
            r["margin_calls_open"],
            r["defaulted"],
            r["received_on_enforcement"],
        ],
    )


def cmd_retire(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    retired = gl.retire(
        asset=args.asset,
        quantity=args.quantity,
        beneficiary=args.beneficiary,
        reason=args.reason,
        account=args.account,
        idempotency_key=args.key,
    )
    if args.json:
        return retired
    out.write(
        _("Retirement %(id)s: %(quantity)s t of %(asset)s retired for %(beneficiary)s.")
        % {
            "id": retired["id"],
            "quantity": f"{retired['quantity']:,}",
            "asset": retired["asset"],
            "beneficiary": retired["beneficiary"],
        }
        + "\n"
    )
    if retired.get("certificate_url"):
        out.write(_("Certificate: %(url)s") % {"url": retired["certificate_url"]} + "\n")
    return None


def cmd_pending_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    pending = gl.pending_transfers(limit=args.limit)
    if args.json:
        return pending
    table(
        [
            _("id"),
            _("status"),
            _("source account"),
            _("destination account"),
            _("asset"),
            _("quantity (t)"),
            _("carried out after"),
        ],
        [
            [str(t["id"]), t["status"], t["source"], t["destination"], t["asset"], t["quantity"], t["execute_after"]]
            for t in pending
        ],
        out,
    )
    return None


def cmd_pending_cancel(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    cancelled = gl.cancel_pending_transfer(args.pending)
    if args.json:
        return cancelled
    out.write(
        _("Pending transfer %(id)s: %(status)s; its units are released.")
        % {"id": cancelled["id"], "status": cancelled["status"]}
        + "\n"
    )
    return None


def cmd_statement(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    account = args.account or gl.default_account()
    lines = gl.statement(account, asset=args.asset, limit=args.limit)
    if args.json:
        return lines
    out.write(_("Statement of %(account)s, newest first") % {"account": account} + "\n")
    table(
        [_("time"), _("journal entry"), _("kind"), _("asset"), _("amount"), _("balance after"), _("memo")],
        [
            [
                str(line["time"]).replace("T", " ")[:19],
                str(line["transaction"]),
                line["kind"],
                line["asset"],
                line["quantity"],
                line["balance_after"],
                line["memo"],
            ]
            for line in lines
        ],
        out,
    )
    legs = [(line, leg) for line in lines for leg in line.get("trades") or []]
    if legs:
        out.write("\n" + _("Trades behind the settlement lines") + "\n")
        table(
            [
                _("journal entry"),
                _("trade"),
                _("side"),
                _("asset"),
                _("quantity"),
                _("price"),
                _("units leg"),
                _("cash leg"),
                _("fee"),
            ],
            [
                [
                    str(line["transaction"]),
                    str(leg["trade"]),
                    side_name(leg["side"]),
                    leg["asset"],
                    leg["quantity"],
                    leg["price"],
                    leg["units"],
                    leg["cash"],
                    leg["fee"],
                ]
                for line, leg in legs
            ],
            out,
        )
    return None


def cmd_approval_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    return print_rows(
        gl.approvals(status=args.status, limit=args.limit),
        args,
        out,
        [_("id"), _("status"), _("operation"), _("quantity (t)"), _("summary"), _("requested by"), _("requested at")],
        lambda a: [
            str(a["id"]),
            a["status"],
            a["operation"],
            a["quantity"],
            a["summary"],
            a["requested_by"],
            str(a["requested_at"]).replace("T", " ")[:16],
        ],
    )


def cmd_approval_approve(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    approved = gl.approve(args.approval, idempotency_key=args.key)
    if args.json:
        return approved
    out.write(
        _("Approval request %(id)s: %(status)s (%(result)s).")
        % {"id": approved["id"], "status": approved["status"], "result": approved.get("result") or "-"}
        + "\n"
    )
    return None


def cmd_approval_reject(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    rejected = gl.reject(args.approval, reason=args.reason, idempotency_key=args.key)
    if args.json:
        return rejected
    out.write(_("Approval request %(id)s: %(status)s.") % {"id": rejected["id"], "status": rejected["status"]} + "\n")
    return None


def _public_keys(args: argparse.Namespace) -> dict[str, str] | None:
    """Keys pinned on the command line (``--public-key``), by key id; None to use the server's."""
    if not args.public_key:
        return None
    import base64
    import hashlib

    return {hashlib.sha256(base64.b64decode(k)).hexdigest()[:16]: k for k in args.public_key}


def cmd_proof_verify(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    result = gl.verify_proof(args.seq, trusted_checkpoint_hash=args.trusted, public_keys=_public_keys(args))
    if args.json:
        return {"ok": True, **result}
    out.write(
        _("OK: event %(seq)s is in checkpoint %(checkpoint)s, and the chain holds up to checkpoint %(latest)s")
        % {"seq": result["seq"], "checkpoint": result["checkpoint"], "latest": result["latest"]}
        + (_(" (the trusted hash)") if args.trusted else "")
        + (
            _(", every checkpoint signed by a trusted key")
            if result.get("signed")
            else _(" (signatures NOT checked: install the 'cryptography' package)")
        )
        + "\n"
    )
    return None


def cmd_proof_feed(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    """Fetch the checkpoint feed; compare it with a kept copy, and/or save it as the copy to keep."""
    problems: list[tuple[int, ProofProblem]] = []
    if args.against:
        with open(args.against, encoding="utf-8") as kept_file:
            kept = kept_checkpoints(kept_file.read())
        problems = gl.compare_feed(kept, public_keys=_public_keys(args))
    docs = gl.checkpoint_feed()
    if args.save:
        with open(args.save, "w", encoding="utf-8") as saved:
            for doc in docs:
                saved.write(json.dumps(doc, sort_keys=True) + "\n")
    if problems:
        raise ProofError(
            "feed",
            problems=[ProofProblem("checkpoint", number=number, problem=problem) for number, problem in problems],
        )
    if args.json:
        return {"ok": True, "checkpoints": len(docs), "latest": docs[-1] if docs else None}
    latest = docs[-1] if docs else None
    out.write(
        _("OK: %(count)s checkpoints") % {"count": len(docs)}
        + (
            _(", the latest %(number)s (%(hash)s)") % {"number": latest["number"], "hash": latest["hash"]}
            if latest
            else ""
        )
        + (_("; every checkpoint kept in %(file)s is unchanged") % {"file": args.against} if args.against else "")
        + (_("; saved to %(file)s") % {"file": args.save} if args.save else "")
        + "\n"
    )
    return None


def _event_line(event: Mapping[str, Any]) -> str:
    data = event.get("data") or {}
    detail = " ".join(f"{k}={_cell(v)}" for k, v in sorted(data.items()) if not isinstance(v, list | dict))
    return f"{event['id']:>6}  {event['created_at'][:19]}  {event['type']:<26} {detail}"


def cmd_watch(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    """Print your participant's events as they arrive, resuming after a dropped connection."""
    after = args.after
    if after is None:
        after = gl.events_page(limit=1)["latest"] if not args.from_start else 0
    types = [t for t in (args.types or "").split(",") if t]
    seen = [0]

    def enough() -> bool:
        return bool(args.count) and seen[0] >= args.count

    try:
        for event in gl.events(after=after, types=types or None, stop=enough):
            out.write((json.dumps(event, ensure_ascii=False) if args.json else _event_line(event)) + "\n")
            out.flush()
            seen[0] += 1
    except KeyboardInterrupt:
        pass
    return None


# --- the parser ------------------------------------------------------------------------------------------
# argparse's own words: the usage line, the section headings, -h and the errors it reports. argparse looks them up
# with gettext.gettext in the process's default domain, which holds none of ours; these are its msgids, given
# their Chinese in our catalogue, and ``Parser`` looks them up there.
ARGPARSE_WORDS = [
    gettext_noop("usage: "),
    gettext_noop("positional arguments"),
    gettext_noop("options"),
    gettext_noop("show this help message and exit"),
    gettext_noop("%(prog)s: error: %(message)s\n"),
    gettext_noop("the following arguments are required: %s"),
    gettext_noop("invalid choice: %(value)r (choose from %(choices)s)"),
    gettext_noop("invalid %(type)s value: %(value)r"),
    gettext_noop("argument %(argument_name)s: %(message)s"),
    gettext_noop("unrecognized arguments: %s"),
    gettext_noop("expected one argument"),
    gettext_noop("expected at most one argument"),
    gettext_noop("expected at least one argument"),
    gettext_noop("not allowed with argument %s"),
    gettext_noop("one of the arguments %s is required"),
    gettext_noop("ambiguous option: %(option)s could match %(matches)s"),
]


@contextmanager
def _argparse_words() -> Iterator[None]:
    """While argparse builds a parser, prints help or reports an error, it finds its words in our catalogue."""
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = _, _translation.ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


# Chinese punctuation a line does not start with (kept with the character before) or end with (kept with the
# character after); full-width by design, hence the noqa.
CLOSING_MARKS = "，。、；：！？）」』》】〉”’"  # noqa: RUF001
OPENING_MARKS = "（「『《【〈“‘"  # noqa: RUF001


def _pieces(word: str) -> list[str]:
    """What a line may break between inside a word: each run of narrow characters and each wide character,
    a closing mark kept with the piece before it and an opening mark with the piece after it."""
    pieces: list[str] = []
    opening, narrow_run = "", False
    for ch in word:
        narrow = _width(ch) == 1
        if ch in CLOSING_MARKS and pieces and not opening:
            pieces[-1] += ch
            narrow_run = False
        elif ch in OPENING_MARKS:
            opening += ch
        elif narrow and narrow_run and not opening:
            pieces[-1] += ch
        else:
            pieces.append(opening + ch)
            opening, narrow_run = "", narrow
    return [*pieces, opening] if opening else pieces


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns (a piece wider than that alone on its line): words are
    separated by spaces, Chinese characters follow each other without one and a line may break between them."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        for i, piece in enumerate(_pieces(word)):
            joined = f"{line} {piece}" if i == 0 and line else line + piece
            if line and _width(joined) > width:
                lines.append(line)
                line = piece
            else:
                line = joined
    return [*lines, line] if line else lines


def _columns_or_len(obj: Any) -> int:
    return _width(obj) if isinstance(obj, str) else len(obj)


@contextmanager
def _len_counts_columns() -> Iterator[None]:
    """Within the block, ``len`` in argparse's module counts the columns of a string (other objects as ever)."""
    argparse.len = _columns_or_len  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del argparse.len  # type: ignore[attr-defined]


class ColumnsHelpFormatter(argparse.HelpFormatter):
    """argparse's help laid out by the columns a terminal gives the text (``_width``: a Chinese character takes
    two) instead of by ``len()``, which left Chinese help out of line: the usage's continuation lines start
    under its first argument after the Chinese prefix, every argument's help starts in the one help column whatever its
    metavar, and Chinese help wraps at the terminal's width, not twice it. Text of one column a character comes
    out exactly as argparse lays it out."""

    def _format_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None,
    ) -> str:
        # argparse measures the usage's prefix, prog and parts with len() inside this one method, with no hook
        # to measure otherwise; rewriting it would copy seventy lines of the standard library.
        with _len_counts_columns():
            return super()._format_usage(usage, actions, groups, prefix)

    def add_argument(self, action: argparse.Action) -> None:
        # argparse's, with the invocations (the help column's position) measured in columns
        if action.help is not argparse.SUPPRESS:
            invocations = [self._format_action_invocation(action)]
            invocations += [self._format_action_invocation(a) for a in self._iter_indented_subactions(action)]
            length = max(map(_width, invocations)) + self._current_indent
            self._action_max_length = max(self._action_max_length, length)
            self._add_item(self._format_action, [action])

    def _format_action(self, action: argparse.Action) -> str:
        # argparse's, with the invocation measured and padded in columns
        help_position = min(self._action_max_length + 2, self._max_help_position)
        help_width = max(self._width - help_position, 11)
        invocation = self._format_action_invocation(action)
        header = " " * self._current_indent + invocation
        help_text = self._expand_help(action) if action.help and action.help.strip() else ""
        help_lines = self._split_lines(help_text, help_width) if help_text else []
        if not help_lines:
            parts = [header + "\n"]
        elif self._current_indent + _width(invocation) + 2 <= help_position:
            parts = [_pad(header, help_position, right=False) + help_lines[0] + "\n"]
        else:
            parts = [header + "\n", " " * help_position + help_lines[0] + "\n"]
        parts += [" " * help_position + line + "\n" for line in help_lines[1:]]
        parts += [self._format_action(subaction) for subaction in self._iter_indented_subactions(action)]
        return self._join_parts(parts)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return super()._split_lines(text, width) if _width(text) == len(text) else _wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if _width(text) == len(text):
            return super()._fill_text(text, width, indent)
        return "\n".join(indent + line for line in _wrap(text, width - len(indent)))


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that speaks the CLI's language in its own words too (headings, usage, errors) and
    lays its help out in the terminal's columns (``ColumnsHelpFormatter``); its sub-command parsers are
    ``Parser`` as well (argparse makes them of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", ColumnsHelpFormatter)
        with _argparse_words():  # the headings and -h's help are made here
            super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        with _argparse_words():  # --help is printed and errors are reported while parsing
            return super().parse_known_args(args, namespace)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        with _argparse_words():  # unrecognised arguments are reported after parse_known_args has returned
            return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        with _argparse_words():  # usage and "error:", whoever reports it
            super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="greenledger",
        description=_(
            "greenledger trading client: holdings, transfers, orders, the book, trades, pledges, proofs, live events."
        ),
    )
    parser.add_argument(
        "--url", default=os.environ.get("GREENLEDGER_URL", DEFAULT_URL), help=_("default $GREENLEDGER_URL")
    )
    parser.add_argument("--token", default=os.environ.get("GREENLEDGER_TOKEN"), help=_("default $GREENLEDGER_TOKEN"))
    parser.add_argument("--json", action="store_true", help=_("print the API's JSON instead of a table"))
    parser.add_argument("--timeout", type=float, default=10.0, help=_("seconds per request (default 10)"))
    commands = parser.add_subparsers(dest="command", required=True, metavar=_("COMMAND"))

    def command(sub: Any, name: str, handler: Callable[..., Any], help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command(commands, "me", cmd_me, _("who the token acts for"))
    p = command(commands, "holdings", cmd_holdings, _("an account's holdings (default: your first account)"))
    p.add_argument("--account")

    p = command(commands, "transfer", cmd_transfer, _("transfer units to another account"))
    p.add_argument("destination", help=_("the receiving holding account, e.g. CN-100-000007"))
    p.add_argument("asset", help=_("e.g. CEA-2024"))
    p.add_argument("quantity", type=int, help=_("whole tonnes"))
    p.add_argument("--source", help=_("one of your accounts (default: your first)"))
    p.add_argument("--memo", default="")
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one); re-run with the same key to retry safely"))

    p = command(commands, "non-trade", cmd_non_trade, _("apply for a non-trade transfer to another participant"))
    p.add_argument("destination", help=_("the receiving holding account"))
    p.add_argument("asset")
    p.add_argument("quantity", type=int, help=_("whole tonnes"))
    p.add_argument("legal_basis", choices=["judicial_ruling", "merger_split", "inheritance", "dissolution", "other"])
    p.add_argument("document_sha256", help=_("SHA-256 of the supporting document (hex)"))
    p.add_argument("--legal-basis-text", default="", help=_("the legal basis in words (required for 'other')"))
    p.add_argument("--source", help=_("one of your accounts (default: your first)"))
    p.add_argument("--memo", default="")
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one)"))

    p = command(commands, "non-trade-list", cmd_non_trade_list, _("your non-trade transfers and their status"))
    p.add_argument("--limit", type=int, default=100)

    ccer = commands.add_parser("ccer", help=_("the CCER project cycle")).add_subparsers(
        dest="ccer_command", required=True, metavar=_("ACTION")
    )
    p = command(ccer, "claims", cmd_ccer_claims, _("reduction claims and their status"))
    p.add_argument("--limit", type=int, default=100)
    p = command(ccer, "comment", cmd_ccer_comment, _("comment on an application or a claim in its publicity window"))
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--application", type=int, help=_("the application's id"))
    target.add_argument("--claim", type=int, help=_("the claim's id"))
    p.add_argument("text")
    p = command(ccer, "apply", cmd_ccer_apply, _("apply to register a CCER project"))
    for name in ("code", "name", "project_type", "methodology", "location"):
        p.add_argument(name)
    for name in ("start_date", "crediting_start", "crediting_end"):
        p.add_argument(name, help=_("YYYY-MM-DD"))
    p.add_argument("validation_body")
    p.add_argument("validation_report_sha256")
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one)"))
    p = command(ccer, "claim", cmd_ccer_claim, _("claim a registered project's verified reductions"))
    p.add_argument("project")
    p.add_argument("vintage", type=int)
    p.add_argument("monitoring_start", help=_("YYYY-MM-DD"))
    p.add_argument("monitoring_end", help=_("YYYY-MM-DD"))
    p.add_argument("quantity", type=int)
    p.add_argument("verification_body")
    p.add_argument("verification_report_sha256")
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one)"))

    order = commands.add_parser("order", help=_("place, cancel or list orders")).add_subparsers(
        dest="order_command", required=True, metavar=_("ACTION")
    )
    p = command(order, "place", cmd_order_place, _("place a limit order"))
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("asset")
    p.add_argument("quantity", type=int, help=_("whole tonnes"))
    p.add_argument("price", help=_("yuan a tonne, e.g. 88.30"))
    p.add_argument("--mode", default="listing", choices=["listing", "block"])
    p.add_argument("--account")
    p.add_argument("--client-order-id", help=_("unique per participant; placing it again returns the first order"))
    p = command(order, "cancel", cmd_order_cancel, _("cancel the unfilled part of an open order"))
    p.add_argument("order", type=int)
    p = command(order, "list", cmd_order_list, _("your orders, newest first"))
    p.add_argument("--status", choices=["open", "filled", "cancelled"])
    p.add_argument("--asset")
    p.add_argument("--limit", type=int, default=50)

    p = command(commands, "book", cmd_book, _("the best five price levels of an asset"))
    p.add_argument("asset")
    p.add_argument("--mode", default="listing", choices=["listing", "block"])

    p = command(commands, "trades", cmd_trades, _("your trades (or, with --market, the asset's tape)"))
    p.add_argument("--asset")
    p.add_argument("--market", action="store_true", help=_("the public tape of --asset"))
    p.add_argument("--limit", type=int, default=50)

    key_help = _("Idempotency-Key (default: a new one); re-run with the same key to retry safely")
    listing = commands.add_parser("listing", help=_("listing agreement: post, book, pick")).add_subparsers(
        dest="listing_command", required=True, metavar=_("ACTION")
    )
    p = command(listing, "post", cmd_listing_post, _("post a listing (listing agreement)"))
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("asset")
    p.add_argument("quantity", type=int, help=_("whole tonnes"))
    p.add_argument("price", help=_("yuan a tonne, e.g. 88.30"))
    p.add_argument("--whole", action="store_true", help=_("the listing may only be picked whole"))
    p.add_argument("--account")
    p.add_argument("--key", help=key_help)
    p = command(listing, "book", cmd_listing_book, _("the best five levels per side with their listings"))
    p.add_argument("asset")
    p = command(listing, "pick", cmd_listing_pick, _("pick a listing by id, or a quantity at a price level"))
    p.add_argument("listing", type=int, nargs="?", help=_("the listing's id"))
    p.add_argument("--quantity", type=int)
    p.add_argument("--asset")
    p.add_argument("--side", choices=["buy", "sell"], help=_("the listings' side (sell: buy from the asks)"))
    p.add_argument("--price")
    p.add_argument("--account")
    p.add_argument("--key", help=key_help)

    rulebook = commands.add_parser("rulebook", help=_("market rulebooks: list versions, publish one")).add_subparsers(
        dest="rulebook_command", required=True, metavar=_("ACTION")
    )
    p = command(rulebook, "list", cmd_rulebook_list, _("a market's rulebook versions, newest first"))
    p.add_argument("market", help=_("e.g. CN-CEA, CN-CCER, BJ-BEA"))
    p = command(rulebook, "publish", cmd_rulebook_publish, _("publish a new version (exchange or registry staff)"))
    p.add_argument("market")
    p.add_argument("effective_from", help=_("YYYY-MM-DD, today or later"))
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help=_("a rule that changes (repeat)"))
    p.add_argument("--modes", help=_("the new version's modes as a JSON list (default: the latest's)"))
    p.add_argument("--key", help=key_help)

    block = commands.add_parser(
        "block", help=_("block agreement: offer, list, accept, decline, counter")
    ).add_subparsers(dest="block_command", required=True, metavar=_("ACTION"))
    p = command(block, "offer", cmd_block_offer, _("offer a block to a named counterparty (or publicly)"))
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("asset")
    p.add_argument("quantity", type=int, help=_("whole tonnes (at least the market's block minimum)"))
    p.add_argument("price", help=_("yuan a tonne"))
    p.add_argument("--to", type=int, help=_("the counterparty's participant id (default: a public block listing)"))
    p.add_argument("--account")
    p.add_argument("--key", help=key_help)
    command(block, "list", cmd_block_list, _("open block offers: yours, to you, and public ones"))
    for name, handler, text in (
        ("accept", cmd_block_accept, _("accept a block offer whole")),
        ("decline", cmd_block_decline, _("decline a block offer addressed to you")),
        ("counter", cmd_block_counter, _("counter a block offer with your price")),
    ):
        p = command(block, name, handler, text)
        p.add_argument("offer", type=int)
        if name != "decline":
            p.add_argument("--account")
        if name == "counter":
            p.add_argument("price", help=_("yuan a tonne"))
            p.add_argument("--quantity", type=int)
        p.add_argument("--key", help=key_help)

    auction = commands.add_parser("auction", help=_("one-way auction: announce, list, bid, close")).add_subparsers(
        dest="auction_command", required=True, metavar=_("ACTION")
    )
    p = command(auction, "announce", cmd_auction_announce, _("offer a quantity to bidders with a reserve price"))
    p.add_argument("asset")
    p.add_argument("quantity", type=int)
    p.add_argument("reserve", help=_("reserve price, yuan a tonne"))
    p.add_argument("opens", help=_("window opens, ISO 8601 with zone"))
    p.add_argument("closes", help=_("window closes, ISO 8601 with zone"))
    p.add_argument("--account")
    p.add_argument("--key", help=key_help)
    command(auction, "list", cmd_auction_list, _("auctions, newest first"))
    p = command(auction, "bid", cmd_auction_bid, _("place a sealed bid (its cash is held until the close)"))
    p.add_argument("auction", type=int)
    p.add_argument("quantity", type=int)
    p.add_argument("price", help=_("yuan a tonne"))
    p.add_argument("--account")
    p.add_argument("--key", help=key_help)
    p = command(auction, "close", cmd_auction_close, _("close an auction whose window has ended"))
    p.add_argument("auction", type=int)
    p.add_argument("--key", help=key_help)

    pledge = commands.add_parser("pledge", help=_("pledge loans")).add_subparsers(
        dest="pledge_command", required=True, metavar=_("ACTION")
    )
    p = command(pledge, "list", cmd_pledge_list, _("pledges you borrow or lend under"))
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=50)
    p = command(pledge, "show", cmd_pledge_show, _("one pledge"))
    p.add_argument("id", type=int)
    p = command(pledge, "confirm", cmd_pledge_confirm, _("lender: confirm the terms applied for (joint application)"))
    p.add_argument("id", type=int)
    p.add_argument("--lender-account", help=_("your account for units taken and proceeds"))
    p = command(pledge, "register", cmd_pledge_register, _("registry: register a joint application"))
    p.add_argument("id", type=int)
    p = command(pledge, "enforce", cmd_pledge_enforce, _("lender: propose a valuation (agreement) or sell (sale)"))
    p.add_argument("id", type=int)
    p.add_argument("--method", choices=["agreement", "sale"], required=True)
    p.add_argument("--price", required=True, help=_('yuan a tonne, e.g. "72.00"'))
    p.add_argument("--costs", default="0", help=_("your costs of enforcement, yuan"))
    p = command(pledge, "agree", cmd_pledge_agree, _("borrower: agree (or --decline) the lender's valuation"))
    p.add_argument("id", type=int)
    p.add_argument("--decline", action="store_true")
    p = command(pledge, "court-order", cmd_pledge_court_order, _("registry: execute a court order on a pledge"))
    p.add_argument("id", type=int)
    p.add_argument("--reference", required=True, help=_("the order's reference"))
    p.add_argument("--sha256", required=True, help=_("SHA-256 of the order's document"))
    p.add_argument("--units", type=int, required=True, help=_("units the order gives the lender"))
    p.add_argument("--price", required=True, help=_("the value a tonne the order states, yuan"))
    p = command(
        pledge, "release-for-compliance", cmd_pledge_compliance_release, _("borrower: ask to surrender pledged units")
    )
    p.add_argument("id", type=int)
    p.add_argument("--quantity", type=int, required=True)
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--substitute", type=int, default=0, help=_("other units pledged in their place"))
    p.add_argument("--substitute-cash", default="0", help=_("cash held under the pledge in their place, yuan"))
    p = command(pledge, "consent", cmd_pledge_consent, _("lender: consent to (or --refuse) a release for compliance"))
    p.add_argument("id", type=int)
    p.add_argument("--refuse", action="store_true")
    p.add_argument("--reason", default="")
    p = command(pledge, "external-ref", cmd_pledge_external_ref, _("lender: record the external registration number"))
    p.add_argument("id", type=int)
    p.add_argument("reference")
    command(pledge, "exposure", cmd_pledge_exposure, _("lender: your exposure summed (overseers: every lender's)"))
    p = command(pledge, "amend", cmd_pledge_amend, _("borrower: apply to top up, partly release or extend a pledge"))
    p.add_argument("id", type=int)
    p.add_argument("--kind", choices=["top_up", "partial_release", "extension"], required=True)
    p.add_argument("--quantity", type=int, default=0, help=_("tonnes added or released"))
    p.add_argument("--serials", type=_serial_range, help=_("a top-up of exactly FIRST-LAST"))
    p.add_argument("--maturity", help=_("the new maturity of an extension, YYYY-MM-DD"))
    p.add_argument("--key", help=key_help)
    p = command(pledge, "amendments", cmd_pledge_amendments, _("a pledge's amendments"))
    p.add_argument("id", type=int)
    for name, handler, text in (
        ("amendment-confirm", cmd_pledge_amendment_confirm, _("lender: confirm an amendment's terms")),
        ("amendment-register", cmd_pledge_amendment_register, _("registry: register an applied amendment")),
        ("amendment-reject", cmd_pledge_amendment_reject, _("reject (lender, registry) or withdraw (borrower)")),
    ):
        p = command(pledge, name, handler, text)
        p.add_argument("id", type=int)
        p.add_argument("number", type=int, help=_("the amendment's id"))
        if name == "amendment-reject":
            p.add_argument("--reason", default="")

    compliance = commands.add_parser("compliance", help=_("your obligations, surrenders, carryover")).add_subparsers(
        dest="compliance_command", required=True, metavar=_("ACTION")
    )
    p = command(compliance, "status", cmd_compliance_status, _("your obligations"))
    p.add_argument("--year", type=int)
    p = command(compliance, "surrender", cmd_compliance_surrender, _("surrender units for a compliance year"))
    p.add_argument("year", type=int)
    p.add_argument("items", nargs="+", type=_surrender_item, metavar="ASSET:TONNES")
    p.add_argument("--account", help=_("one of your accounts (default: your first)"))
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one); re-run with the same key to retry safely"))
    p = command(compliance, "carryover", cmd_compliance_carryover, _("your carryover limit under a plan year's rule"))
    p.add_argument("year", type=int, help=_("the plan year, e.g. 2024"))

    p = command(commands, "watch", cmd_watch, _("print your events as they happen (the live stream; Ctrl-C stops)"))
    p.add_argument("--types", help=_("comma-separated event types, e.g. order.filled,trade.settled"))
    p.add_argument("--after", type=int, help=_("start after this event id (default: from now on)"))
    p.add_argument("--from-start", action="store_true", help=_("start from your first event kept"))
    p.add_argument("--count", type=int, default=0, help=_("stop after this many events (default: never)"))

    p = command(commands, "retire", cmd_retire, _("retire units for good for a beneficiary (a public certificate)"))
    p.add_argument("asset", help=_("e.g. CEA-2024"))
    p.add_argument("quantity", type=int, help=_("whole tonnes"))
    p.add_argument("--beneficiary", required=True, help=_("in whose name the units are retired"))
    p.add_argument("--reason", required=True, help=_("why, e.g. offsetting an event"))
    p.add_argument("--account", help=_("one of your accounts (default: your first)"))
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one); re-run with the same key to retry safely"))

    pending = commands.add_parser("pending", help=_("transfers waiting for their delay")).add_subparsers(
        dest="pending_command", required=True, metavar=_("ACTION")
    )
    p = command(pending, "list", cmd_pending_list, _("your pending transfers, newest first"))
    p.add_argument("--limit", type=int, default=50)
    p = command(pending, "cancel", cmd_pending_cancel, _("cancel a pending transfer (its units are released)"))
    p.add_argument("pending", type=int)

    p = command(commands, "statement", cmd_statement, _("an account's postings with the balance after each"))
    p.add_argument("--account")
    p.add_argument("--asset")
    p.add_argument("--limit", type=int, default=50)

    approval = commands.add_parser("approvals", help=_("four-eyes approval requests (registry users)")).add_subparsers(
        dest="approval_command", required=True, metavar=_("ACTION")
    )
    p = command(approval, "list", cmd_approval_list, _("approval requests, newest first"))
    p.add_argument("--status", choices=["pending", "approved", "rejected"])
    p.add_argument("--limit", type=int, default=50)
    p = command(approval, "approve", cmd_approval_approve, _("approve and carry out a request (not your own)"))
    p.add_argument("approval", type=int)
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one)"))
    p = command(approval, "reject", cmd_approval_reject, _("reject a request, with the reason"))
    p.add_argument("approval", type=int)
    p.add_argument("reason")
    p.add_argument("--key", help=_("Idempotency-Key (default: a new one)"))

    proof = commands.add_parser("proof", help=_("audit proofs")).add_subparsers(
        dest="proof_command", required=True, metavar=_("ACTION")
    )
    p = command(proof, "verify", cmd_proof_verify, _("fetch an audit event's inclusion proof and check it locally"))
    p.add_argument("seq", type=int, help=_("the audit event's sequence number"))
    p.add_argument("--trusted", help=_("a checkpoint hash you trust (e.g. published); the chain must reach it"))
    p.add_argument(
        "--public-key",
        action="append",
        help=_(
            "an audit signing key you trust (base64, from GET /api/v1/audit/public-keys, pinned); repeatable. "
            "Without it the server's published keys are used."
        ),
    )
    p = command(proof, "feed", cmd_proof_feed, _("fetch the signed checkpoint feed; compare it with a kept copy"))
    p.add_argument("--against", metavar="FILE", help=_("a kept copy: each checkpoint in it must be unchanged"))
    p.add_argument("--save", metavar="FILE", help=_("write the feed here (JSON lines) to keep it"))
    p.add_argument("--public-key", action="append", help=_("an audit signing key you trust (base64); repeatable"))
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    language = cli_language()
    activate(language)
    args = build_parser().parse_args(argv)
    if not args.token:
        err.write(_("greenledger: no token: pass --token or set GREENLEDGER_TOKEN") + "\n")
        return 2
    with Client(args.url, args.token, timeout=args.timeout, language=language) as gl:
        try:
            result = args.handler(gl, args, out)
        except ClientError as exc:
            err.write(_("error") + f": {exc.code}: {exc.message}\n")
            if exc.details:
                err.write(_("details") + f": {json.dumps(exc.details, ensure_ascii=False, sort_keys=True)}\n")
            return 1
        except ProofError as exc:
            err.write(_("PROOF DOES NOT HOLD: %(problem)s") % {"problem": exc.text(_)} + "\n")
            return 1
    if result is not None:
        out.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
