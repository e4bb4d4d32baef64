"""The limits every entry point checks: the quantity cap, the price cap and whole-tonne checks, each written once.

Services, API fields and forms read their bounds from here, so a cap changes in one place. This module imports
no app models (only the error catalogue), so it can move into a core package that no app depends on.

A quantity is a whole number of tonnes CO2e: an ``int`` that is not a ``bool`` (``True`` is an int in Python,
and a JSON ``true`` must not pass for one tonne).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext

from core.errors import InvalidQuantity

if TYPE_CHECKING:
    from typing_extensions import TypeIs

#: The most tonnes one operation, order, pledge or allocation line moves (and the most a figure in tonnes holds).
MAX_QUANTITY = 10**12
#: The highest price the market takes, in fen a tonne (10 million yuan).
MAX_PRICE_FEN = 10**9


def is_whole(value: Any) -> TypeIs[int]:
    """An integer that is not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_quantity(value: Any, *, minimum: int = 1) -> TypeIs[int]:
    """A whole number of tonnes from ``minimum`` (1, or 0 for a figure such as verified emissions) to the cap."""
    return is_whole(value) and minimum <= value <= MAX_QUANTITY


def check_quantity(quantity: int) -> None:
    """Refuse anything but a whole number of tonnes from 1 to the cap with ``invalid_quantity``."""
    if not is_quantity(quantity):
        raise InvalidQuantity(
            gettext("Quantities are whole numbers from 1 to %(maximum)s.") % {"maximum": MAX_QUANTITY},
            details={"quantity": str(quantity)},
        )
