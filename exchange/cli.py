"""``greenledger``: the trading client on the command line.

    export GREENLEDGER_URL=http://127.0.0.1:8000 GREENLEDGER_TOKEN=gl_demo_jingneng-trader-demo-token
    greenledger holdings
    greenledger order place buy CEA-2024 100 88.30
    greenledger book CEA-2024
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from exchange.audit_proof import ProofError, kept_checkpoints
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


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO) -> None:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(_is_number(row[i]) for row in rows if row[i] is not None) and bool(rows) for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(list(headers)) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    if not rows:
        out.write(_("(none)") + "\n")


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
            f"Pending transfer {pending['id']}: {pending['quantity']:,} t of {pending['asset']} to "
            f"{pending['destination']}, carried out after {pending['execute_after']} unless cancelled.\n"
            f"{txn.get('message', '')}\n"
        )
        return None
    out.write(f"Transaction {txn['id']} ({txn['kind']}) at {txn['created_at']}\n")
    table(
        ["asset", "first", "last", "from", "to"],
        [[m["asset"], m["first"], m["last"], m["source"], m["destination"]] for m in txn.get("serial_ranges", [])],
        out,
    )
    return None


ORDER_HEADERS = ["id", "side", "asset", "mode", "price", "quantity", "filled", "status", "day"]


def _order_row(o: Mapping[str, Any]) -> list[object]:
    status = (
        o["status"]
        if not o.get("end_reason") or o["end_reason"] == o["status"]
        else f"{o['status']} ({o['end_reason']})"
    )
    # Ids print as they are typed back (no thousands separators).
    return [
        str(o["id"]),
        o["side"],
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
    order = placed["order"]
    out.write(f"Order {order['id']} {order['status']}: {order['filled']} of {order['quantity']} t filled\n")
    if placed["trades"]:
        table(
            ["trade", "price", "quantity", "turnover"],
            [[str(t["id"]), t["price"], t["quantity"], t["turnover"]] for t in placed["trades"]],
            out,
        )
    return None


def cmd_order_cancel(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    order = gl.cancel_order(args.order)
    if args.json:
        return order
    out.write(f"Order {order['id']} {order['status']}: {order['filled']} t filled, {order['remaining']} t not\n")
    return None


def cmd_order_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    orders = gl.orders(status=args.status, asset=args.asset, limit=args.limit)
    if args.json:
        return orders
    table(ORDER_HEADERS, [_order_row(o) for o in orders], out)
    return None


def cmd_book(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    book = gl.book(args.asset, mode=args.mode)
    if args.json:
        return book
    out.write(f"{book['asset']} {book['mode']} book, previous close {book['previous_close'] or '-'}\n")
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
    table(["orders", "bid qty", "bid", "ask", "ask qty", "orders"], rows, out)
    return None


def cmd_trades(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    if args.market:
        if not args.asset:
            raise SystemExit("greenledger trades --market needs --asset")
        tape = gl.market_trades(args.asset, limit=args.limit)
        if args.json:
            return tape
        table(
            ["trade", "time", "asset", "price", "quantity", "aggressor", "settled"],
            [
                [str(t["id"]), t["created_at"], t["asset"], t["price"], t["quantity"], t["aggressor"], t["settled"]]
                for t in tape
            ],
            out,
        )
        return None
    trades = gl.trades(asset=args.asset, limit=args.limit)
    if args.json:
        return trades
    table(
        ["trade", "day", "side", "asset", "price", "quantity", "fee", "order", "settled"],
        [
            [
                str(t["id"]),
                t["trading_day"],
                t["side"],
                t["asset"],
                t["price"],
                t["quantity"],
                t["fee"],
                str(t["order"]),
                t["settled"],
            ]
            for t in trades
        ],
        out,
    )
    return None


def cmd_pledge_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    pledges = gl.pledges(status=args.status, limit=args.limit)
    if args.json:
        return pledges
    table(
        ["id", "status", "borrower", "lender", "asset", "quantity", "principal", "LTV %", "maturity"],
        [
            [
                str(p["id"]),
                p["status"],
                p["borrower"]["name"],
                p["lender"]["name"],
                p["asset"],
                p["quantity"],
                p["principal"],
                p["ltv_percent"],
                p["maturity"],
            ]
            for p in pledges
        ],
        out,
    )
    return None


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
    return None


def cmd_approval_list(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    approvals = gl.approvals(status=args.status, limit=args.limit)
    if args.json:
        return approvals
    table(
        [_("id"), _("status"), _("operation"), _("quantity (t)"), _("summary"), _("requested by"), _("requested at")],
        [
            [
                str(a["id"]),
                a["status"],
                a["operation"],
                a["quantity"],
                a["summary"],
                a["requested_by"],
                str(a["requested_at"]).replace("T", " ")[:16],
            ]
            for a in approvals
        ],
        out,
    )
    return None


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
        f"OK: event {result['seq']} is in checkpoint {result['checkpoint']}, "
        f"and the chain holds up to checkpoint {result['latest']}"
        + (" (the trusted hash)" if args.trusted else "")
        + (
            ", every checkpoint signed by a trusted key"
            if result.get("signed")
            else " (signatures NOT checked: install the 'cryptography' package)"
        )
        + "\n"
    )
    return None


def cmd_proof_feed(gl: Client, args: argparse.Namespace, out: TextIO) -> Any:
    """Fetch the checkpoint feed; compare it with a kept copy, and/or save it as the copy to keep."""
    problems: list[tuple[int, str]] = []
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
        raise ProofError("; ".join(f"checkpoint {number}: {problem}" for number, problem in problems))
    if args.json:
        return {"ok": True, "checkpoints": len(docs), "latest": docs[-1] if docs else None}
    latest = docs[-1] if docs else None
    out.write(
        f"OK: {len(docs)} checkpoints"
        + (f", the latest {latest['number']} ({latest['hash']})" if latest else "")
        + (f"; every checkpoint kept in {args.against} is unchanged" if args.against else "")
        + (f"; saved to {args.save}" if args.save else "")
        + "\n"
    )
    return None


# --- the parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenledger",
        description="greenledger trading client: holdings, transfers, orders, the book, trades, pledges, proofs.",
    )
    parser.add_argument(
        "--url", default=os.environ.get("GREENLEDGER_URL", DEFAULT_URL), help="default $GREENLEDGER_URL"
    )
    parser.add_argument("--token", default=os.environ.get("GREENLEDGER_TOKEN"), help="default $GREENLEDGER_TOKEN")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(sub: Any, name: str, handler: Callable[..., Any], help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command(commands, "me", cmd_me, "who the token acts for")
    p = command(commands, "holdings", cmd_holdings, "an account's holdings (default: your first account)")
    p.add_argument("--account")

    p = command(commands, "transfer", cmd_transfer, "transfer units to another account")
    p.add_argument("destination", help="the receiving holding account, e.g. CN-100-000007")
    p.add_argument("asset", help="e.g. CEA-2024")
    p.add_argument("quantity", type=int, help="whole tonnes")
    p.add_argument("--source", help="one of your accounts (default: your first)")
    p.add_argument("--memo", default="")
    p.add_argument("--key", help="Idempotency-Key (default: a new one); re-run with the same key to retry safely")

    order = commands.add_parser("order", help="place, cancel or list orders").add_subparsers(
        dest="order_command", required=True, metavar="ACTION"
    )
    p = command(order, "place", cmd_order_place, "place a limit order")
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("asset")
    p.add_argument("quantity", type=int, help="whole tonnes")
    p.add_argument("price", help="yuan a tonne, e.g. 88.30")
    p.add_argument("--mode", default="listing", choices=["listing", "block"])
    p.add_argument("--account")
    p.add_argument("--client-order-id", help="unique per participant; placing it again returns the first order")
    p = command(order, "cancel", cmd_order_cancel, "cancel the unfilled part of an open order")
    p.add_argument("order", type=int)
    p = command(order, "list", cmd_order_list, "your orders, newest first")
    p.add_argument("--status", choices=["open", "filled", "cancelled"])
    p.add_argument("--asset")
    p.add_argument("--limit", type=int, default=50)

    p = command(commands, "book", cmd_book, "the best five price levels of an asset")
    p.add_argument("asset")
    p.add_argument("--mode", default="listing", choices=["listing", "block"])

    p = command(commands, "trades", cmd_trades, "your trades (or, with --market, the asset's tape)")
    p.add_argument("--asset")
    p.add_argument("--market", action="store_true", help="the public tape of --asset")
    p.add_argument("--limit", type=int, default=50)

    pledge = commands.add_parser("pledge", help="pledge loans").add_subparsers(
        dest="pledge_command", required=True, metavar="ACTION"
    )
    p = command(pledge, "list", cmd_pledge_list, "pledges you borrow or lend under")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=50)

    p = command(commands, "retire", cmd_retire, "retire units for good for a beneficiary (a public certificate)")
    p.add_argument("asset", help="e.g. CEA-2024")
    p.add_argument("quantity", type=int, help="whole tonnes")
    p.add_argument("--beneficiary", required=True, help="in whose name the units are retired")
    p.add_argument("--reason", required=True, help="why, e.g. offsetting an event")
    p.add_argument("--account", help="one of your accounts (default: your first)")
    p.add_argument("--key", help="Idempotency-Key (default: a new one); re-run with the same key to retry safely")

    pending = commands.add_parser("pending", help="transfers waiting for their delay").add_subparsers(
        dest="pending_command", required=True, metavar="ACTION"
    )
    p = command(pending, "list", cmd_pending_list, "your pending transfers, newest first")
    p.add_argument("--limit", type=int, default=50)
    p = command(pending, "cancel", cmd_pending_cancel, "cancel a pending transfer (its units are released)")
    p.add_argument("pending", type=int)

    p = command(commands, "statement", cmd_statement, "an account's postings with the balance after each")
    p.add_argument("--account")
    p.add_argument("--asset")
    p.add_argument("--limit", type=int, default=50)

    approval = commands.add_parser("approvals", help="four-eyes approval requests (registry users)").add_subparsers(
        dest="approval_command", required=True, metavar="ACTION"
    )
    p = command(approval, "list", cmd_approval_list, "approval requests, newest first")
    p.add_argument("--status", choices=["pending", "approved", "rejected"])
    p.add_argument("--limit", type=int, default=50)
    p = command(approval, "approve", cmd_approval_approve, "approve and carry out a request (not your own)")
    p.add_argument("approval", type=int)
    p.add_argument("--key", help="Idempotency-Key (default: a new one)")
    p = command(approval, "reject", cmd_approval_reject, "reject a request, with the reason")
    p.add_argument("approval", type=int)
    p.add_argument("reason")
    p.add_argument("--key", help="Idempotency-Key (default: a new one)")

    proof = commands.add_parser("proof", help="audit proofs").add_subparsers(
        dest="proof_command", required=True, metavar="ACTION"
    )
    p = command(proof, "verify", cmd_proof_verify, "fetch an audit event's inclusion proof and check it locally")
    p.add_argument("seq", type=int, help="the audit event's sequence number")
    p.add_argument("--trusted", help="a checkpoint hash you trust (e.g. published); the chain must reach it")
    p.add_argument(
        "--public-key",
        action="append",
        help="an audit signing key you trust (base64, from GET /api/v1/audit/public-keys, pinned); repeatable. "
        "Without it the server's published keys are used.",
    )
    p = command(proof, "feed", cmd_proof_feed, "fetch the signed checkpoint feed; compare it with a kept copy")
    p.add_argument("--against", metavar="FILE", help="a kept copy: each checkpoint in it must be unchanged")
    p.add_argument("--save", metavar="FILE", help="write the feed here (JSON lines) to keep it")
    p.add_argument("--public-key", action="append", help="an audit signing key you trust (base64); repeatable")
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
                err.write(f"details: {json.dumps(exc.details, ensure_ascii=False, sort_keys=True)}\n")
            return 1
        except ProofError as exc:
            err.write(f"PROOF DOES NOT HOLD: {exc}\n")
            return 1
    if result is not None:
        out.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
