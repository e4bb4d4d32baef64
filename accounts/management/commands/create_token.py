"""Create an API token for a user and print it once: it is stored only as a hash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.actors import Actor
from accounts.services import api_token_create
from core.errors import DomainError
from core.i18n import TranslatedCommand


class Command(TranslatedCommand):
    help = _("Create an API token for USERNAME and print it once (it is stored hashed and can't be shown again).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help=gettext("A label for the token, e.g. the client program."))
        parser.add_argument("--expires-days", type=int, default=None, help=gettext("Expire after this many days."))

    def handle(self, *args: Any, username: str, name: str, expires_days: int | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                gettext("No user %(username)s. Create it first (manage.py createuser or the admin).")
                % {"username": repr(username)}
            )
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            token, text = api_token_create(
                actor=Actor.system("manage.py create_token"), user=user, name=name, expires_at=expires_at
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stderr.write(
            gettext("Token %(prefix)s for %(username)s; copy it now, it is not shown again:")
            % {"prefix": token.prefix, "username": username}
        )
        self.stdout.write(text)
