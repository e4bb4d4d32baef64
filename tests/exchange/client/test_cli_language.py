"""The ``greenledger`` command speaks the reader's language in its help and its usage errors, argparse's own words
(usage, headings, -h) included: GREENLEDGER_LANGUAGE, else the locale, else English (docs/i18n.md)."""

from __future__ import annotations

import argparse
import gettext
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LOCALE_VARIABLES = ("GREENLEDGER_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def greenledger(*argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """Runs the command as a person would, with only the given locale variables set (80 columns wide)."""
    env = {k: v for k, v in os.environ.items() if k not in LOCALE_VARIABLES} | {"COLUMNS": "80"} | environ
    return subprocess.run(
        [sys.executable, "-m", "exchange.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_greenledger_help_is_chinese_under_a_chinese_locale():
    shown = greenledger("--help", LANG="zh_CN.UTF-8")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("用法：greenledger [-h] [--url URL]")
    assert "greenledger 交易客户端：持仓、划转、委托、委托簿、成交、质押、证明、实时事件。" in shown.stdout
    assert "位置参数:\n  命令\n    me               令牌代表的身份\n" in shown.stdout
    assert "    proof            审计证明\n" in shown.stdout
    assert "选项:\n  -h, --help         显示此帮助信息并退出\n" in shown.stdout
    assert "  --json             输出 API 的 JSON，而不是表格\n" in shown.stdout
    assert "usage" not in shown.stdout
    assert "positional arguments" not in shown.stdout


def test_greenledger_help_is_english_under_an_english_locale():
    shown = greenledger("--help", LANG="en_US.UTF-8")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: greenledger [-h] [--url URL]")
    assert "positional arguments:\n  COMMAND\n    me               who the token acts for\n" in shown.stdout
    assert "options:\n  -h, --help         show this help message and exit\n" in shown.stdout
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in shown.stdout)


def test_a_sub_command_help_speaks_the_locale_language():
    chinese = greenledger("order", "place", "--help", LANG="zh_CN.UTF-8")
    english = greenledger("order", "place", "--help", LANG="en_US.UTF-8")

    assert chinese.stdout.startswith("用法：greenledger order place [-h]")
    assert "\n提交限价委托\n" in chinese.stdout
    assert "  quantity              整吨数\n  price                 元/吨，例如 88.30\n" in chinese.stdout
    assert "每个参与方内唯一；再次提交将返回第一次的委托" in chinese.stdout
    assert english.stdout.startswith("usage: greenledger order place [-h]")
    assert "\nplace a limit order\n" in english.stdout
    assert "  quantity              whole tonnes\n  price                 yuan a tonne, e.g. 88.30\n" in english.stdout


@pytest.mark.parametrize(
    ("environ", "first_line"),
    [
        ({}, "usage: greenledger"),  # no locale at all: English
        ({"LANG": "C.UTF-8"}, "usage: greenledger"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "用法：greenledger"),  # LC_ALL before LANG, as gettext
        ({"GREENLEDGER_LANGUAGE": "zh-hans", "LANG": "en_US.UTF-8"}, "用法：greenledger"),
        ({"GREENLEDGER_LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}, "usage: greenledger"),
    ],
)
def test_the_language_comes_from_greenledger_language_then_the_locale_then_english(environ, first_line):
    shown = greenledger("--help", **environ)

    assert shown.stdout.startswith(first_line)


def test_a_usage_error_is_reported_in_the_locale_language():
    chinese = greenledger("order", "place", "buy", LANG="zh_CN.UTF-8")
    choice = greenledger("order", "place", "buy", "CEA-2024", "1", "88.30", "--mode", "auction", LANG="zh_CN.UTF-8")
    english = greenledger("order", "place", "buy", LANG="en_US.UTF-8")

    assert chinese.returncode == choice.returncode == english.returncode == 2
    assert chinese.stderr.startswith("用法：greenledger order place")
    assert chinese.stderr.endswith("greenledger order place：错误：缺少以下必需参数：asset, quantity, price\n")
    assert choice.stderr.endswith(
        "greenledger order place：错误：参数 --mode：无效的选项：'auction'（可选：'listing', 'block'）\n"
    )
    assert english.stderr.endswith(
        "greenledger order place: error: the following arguments are required: asset, quantity, price\n"
    )


def test_an_unrecognised_argument_is_reported_in_the_locale_language():
    """parse_args reports arguments nobody took after parsing has ended: still in the reader's language."""
    chinese = greenledger("me", "--bogus", LANG="zh_CN.UTF-8")

    assert chinese.returncode == 2
    assert chinese.stderr.startswith("用法：greenledger")
    assert "usage:" not in chinese.stderr
    assert "error:" not in chinese.stderr
    assert chinese.stderr.splitlines()[-1] == "greenledger：错误：无法识别的参数：--bogus"


def test_argparse_has_its_own_words_back_after_the_command(monkeypatch):
    from exchange import cli

    monkeypatch.setenv("GREENLEDGER_LANGUAGE", "zh-hans")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    cli.activate("en")

    assert out.getvalue().startswith("用法：greenledger")
    assert argparse._ is gettext.gettext  # type: ignore[attr-defined]
    assert argparse.ArgumentParser(prog="x").format_usage() == "usage: x [-h]\n"


def _columns(line: str) -> int:
    from exchange.cli import _width

    return _width(line)


def test_chinese_help_lines_up_in_the_columns_a_terminal_shows():
    # Given a Chinese locale on an 80-column terminal (argparse lays help out in 78)
    shown = greenledger("transfer", "--help", LANG="zh_CN.UTF-8")

    # Then the usage goes on under its first argument, after the prefix's six columns, not len()'s three
    assert shown.stdout.startswith(
        "用法：greenledger transfer [-h] [--source SOURCE] [--memo MEMO] [--key KEY]\n"
        "                           destination asset quantity\n"
    )
    # And Chinese help wraps at the terminal's width and goes on in the help column
    assert (
        "  --source SOURCE  你的账户之一（默认：第一个）\n"
        "  --memo MEMO\n"
        "  --key KEY        幂等键 Idempotency-Key（默认：新生成一个）；用同一键重新运\n"
        "                   行即可安全重试\n"
    ) in shown.stdout
    assert max(map(_columns, shown.stdout.splitlines())) == 77


def test_a_help_line_breaks_between_chinese_characters_never_before_a_closing_mark():
    shown = greenledger("proof", "verify", "--help", LANG="zh_CN.UTF-8")

    assert (
        "  --public-key PUBLIC_KEY\n"
        "                        你信任的审计签名公钥（base64，取自 GET\n"
        "                        /api/v1/audit/public-keys 并固定下来）；可重复。不提供\n"
        "                        时使用服务器公布的公钥。\n"
    ) in shown.stdout
    assert all(_columns(line) <= 78 for line in shown.stdout.splitlines())


def test_help_starts_in_one_column_whatever_the_width_of_the_metavars(monkeypatch):
    from exchange import cli

    # Given a parser whose arguments are named in Chinese, on a terminal 42 columns wide (help in 40)
    monkeypatch.setenv("COLUMNS", "42")
    cli.activate("en")
    parser = cli.Parser(prog="demo", add_help=False)
    parser.add_argument("数量", help="整吨数")
    parser.add_argument("--account", metavar="账户", help="你的账户之一（默认：你的第一个账户）")
    parser.add_argument("--memo", help="a memo")

    # Then each help starts two columns after the widest invocation ("--account 账户", 14 columns), where
    # argparse's own layout put "a memo" two columns to the left of the Chinese help; the usage and the help
    # wrap at 40 columns
    assert parser.format_help() == (
        "usage: demo [--account 账户]\n"
        "            [--memo MEMO]\n"
        "            数量\n"
        "\n"
        "positional arguments:\n"
        "  数量            整吨数\n"
        "\n"
        "options:\n"
        "  --account 账户  你的账户之一（默认：你\n"
        "                  的第一个账户）\n"
        "  --memo MEMO     a memo\n"
    )


def test_help_of_one_column_a_character_is_argparse_own_layout(monkeypatch):
    from exchange import cli

    # Given the whole command's parser in English
    monkeypatch.setenv("COLUMNS", "80")
    cli.activate("en")

    def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return [parser, *(p for s in subs for child in dict.fromkeys(s.choices.values()) for p in parsers(child))]

    every = parsers(cli.build_parser())
    assert len(every) > 50
    # Then every help, the command's and each sub-command's, is exactly argparse's own
    for parser in every:
        ours = parser.format_help()
        parser.formatter_class = argparse.HelpFormatter
        assert ours == parser.format_help(), parser.prog
