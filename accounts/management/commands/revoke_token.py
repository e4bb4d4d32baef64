"""Revoke an API token by its prefix (for a leaked token), recorded in the audit trail."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.actors import Actor
from accounts.authentication import split_token
from accounts.models import ApiToken
from accounts.services import api_token_revoke
from core.errors import DomainError
from core.i18n import TranslatedCommand


class Command(TranslatedCommand):
    help = _("Revoke the API token with PREFIX (the part after gl_, or the whole token): it stops working at once.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help=gettext("The token's prefix (as the admin lists it), or the whole token."))
        parser.add_argument("--reason", default="", help=gettext("Why, for the audit trail (e.g. 'leaked in a log')."))

    def handle(self, *args: Any, prefix: str, reason: str, **options: Any) -> None:
        prefix = split_token(prefix) or prefix
        token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if token is None:
            raise CommandError(gettext("No API token with prefix %(prefix)s.") % {"prefix": repr(prefix)})
        try:
            api_token_revoke(actor=Actor.system("manage.py revoke_token"), token=token, reason=reason)
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(
            gettext("Token %(prefix)s of %(username)s revoked.")
            % {"prefix": token.prefix, "username": token.user.get_username()}
        )
