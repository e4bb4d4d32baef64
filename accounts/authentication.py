"""API token authentication: ``Authorization: Token gl_<prefix>_<secret>`` (or ``Bearer``)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiToken

TOKEN_PREFIX = "gl_"
LAST_USED_RESOLUTION = timedelta(minutes=5)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    parts = token[len(TOKEN_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0]


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Token <token>'.")
        return self.authenticate_token(header[1])

    def authenticate_token(self, raw: str) -> tuple[Any, ApiToken]:
        prefix = split_token(raw)
        failure = exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if prefix is None:
            raise failure
        token = (
            ApiToken.objects.select_related("user__membership__participant")
            .filter(prefix=prefix, revoked_at__isnull=True)
            .first()
        )
        if token is None or not hmac.compare_digest(token.digest, token_digest(raw)):
            raise failure
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise failure
        if not token.user.is_active:
            raise failure
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            # Coarse on purpose: one write per token every few minutes, not one per request.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return "Token"
