"""Reading the CCER cycle's rules: the version in effect on a day, and what makes a project old CCER."""

from __future__ import annotations

from datetime import date
from typing import cast

from django.utils.translation import gettext_lazy

from core import clock
from core.errors import Conflict
from exchange.models import CcerRule


def _(text: str) -> str:
    """``text`` marked for translation, translated when shown (a lazy string typed as the ``str`` it becomes)."""
    return cast(str, gettext_lazy(text))


class CcerRuleMissing(Conflict):
    code = "ccer_rule_missing"
    default_message = _("No CCER rule is in effect on that day; the registry enters one first.")


def ccer_rule_on(day: date | None = None) -> CcerRule:
    """The CCER rule in effect on ``day`` (China time today by default): the latest effective on or before it."""
    day = day or clock.trading_day()
    rule = CcerRule.objects.filter(effective_from__lte=day).order_by("-effective_from").first()
    if rule is None:
        raise CcerRuleMissing(details={"day": day.isoformat()})
    return rule


def old_ccer_status(filed_on: date | None) -> tuple[bool, date | None]:
    """Whether a project first filed on ``filed_on`` is old CCER, and if so the last day it offsets.

    Read from the rule in effect today (the 2023 Measures' rule carries the 2017 filing date and the
    2024 cut-off); a project with no filing date is not old CCER and needs no rule.
    """
    if filed_on is None:
        return False, None
    rule = ccer_rule_on()
    if filed_on < rule.old_ccer_filed_before:
        return True, rule.old_ccer_offset_cutoff
    return False, None


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later (28 February for 29 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


__all__ = ["CcerRuleMissing", "add_years", "ccer_rule_on", "old_ccer_status"]
