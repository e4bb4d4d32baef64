"""Steps of the participant services that belong to an app above accounts, installed by that app when it starts.

accounts imports no other app. Registering a holder opens its first holding account, which is the exchange
app's business: ``ExchangeConfig.ready`` installs ``exchange.services.accounts.account_open`` here, and
``participant_create`` calls it in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

AccountOpener = Callable[..., Any]
_account_opener: AccountOpener | None = None


def account_opener_install(opener: AccountOpener) -> None:
    """Set the function that opens a holding account: ``opener(actor=, participant=, name=)``."""
    global _account_opener
    _account_opener = opener


def account_open(*, actor: Any, participant: Any, name: str) -> Any:
    """Open a holding account for ``participant`` through the installed opener."""
    if _account_opener is None:
        raise ImproperlyConfigured("No account opener is installed: the exchange app installs it when it starts.")
    return _account_opener(actor=actor, participant=participant, name=name)
