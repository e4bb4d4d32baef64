"""API token authentication: ``Authorization: Token gl_<prefix>_<secret>`` (or ``Bearer``)."""

from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions

from accounts.models import ApiToken, Membership, Participant

TOKEN_PREFIX = "gl_"  # noqa: S105 - the public prefix of every token, not a secret
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _columns(model: type[models.Model], alias: str) -> tuple[list[str], str]:
    names = [f.attname for f in model._meta.concrete_fields]
    return names, ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


@functools.cache
def _token_query(user_model: type[models.Model]) -> tuple[str, list[tuple[type[models.Model], list[str], slice]]]:
    """The token query's text and, per model, its field names and where its columns sit in a row; built once
    (per user model: tests may swap it), not per request."""
    parts: list[tuple[type[models.Model], str]] = [
        (ApiToken, "t"),
        (user_model, "u"),
        (Membership, "m"),
        (Participant, "p"),
    ]
    columns = [_columns(model, alias) for model, alias in parts]
    sql = (
        f"SELECT {', '.join(c for _, c in columns)} FROM {ApiToken._meta.db_table} t "
        f"JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
        f"LEFT JOIN {Membership._meta.db_table} m ON m.user_id = u.id "
        f"LEFT JOIN {Participant._meta.db_table} p ON p.id = m.participant_id "
        "WHERE t.prefix = %s AND t.revoked_at IS NULL"
    )
    layout = []
    offset = 0
    for (model, _alias), (names, _sql) in zip(parts, columns, strict=True):
        layout.append((model, names, slice(offset, offset + len(names))))
        offset += len(names)
    return sql, layout


def _token_with_user(prefix: str) -> ApiToken | None:
    """The live token with this prefix, its user, membership and participant: one raw query per request.

    The same rows ``select_related("user__membership__participant")`` would load, without building the
    ORM query each time (that cost more than the transfer behind it). Instances are made with ``from_db``
    and linked as ``select_related`` links them.
    """
    sql, layout = _token_query(get_user_model())
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[Any] = []
    for model, names, columns in layout:
        values = row[columns]
        instances.append(None if values[0] is None else model.from_db(connection.alias, names, values))
    token, user, membership, participant = instances
    assert token is not None
    assert user is not None
    token._state.fields_cache["user"] = user
    if membership is not None:
        membership._state.fields_cache["participant"] = participant
        membership._state.fields_cache["user"] = user
        user._state.fields_cache["membership"] = membership
    return token


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


# Where a request keeps the outcome of its token's check: the raw token and (user, token), or None if refused.
_CHECKED = "_greenledger_token_checked"


def _invalid() -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if len(header) == 1 and header[0].startswith(TOKEN_PREFIX):
            # A token sent bare would otherwise read as no credentials at all: say what is missing.
            raise exceptions.AuthenticationFailed(
                _(
                    "The Authorization header needs the word Token before the token: "
                    "send 'Authorization: Token %(start)s...'."
                )
                % {"start": header[0][: len(TOKEN_PREFIX) + 4]}
            )
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header: use 'Token <token>'."))
        return self.authenticate_request_token(getattr(request, "_request", request), header[1])

    def authenticate_request_token(self, request: HttpRequest, raw: str) -> tuple[Any, ApiToken]:
        """``authenticate_token`` once per request: the anonymous throttle (``config.middleware``) checks a
        request's token before the view, and the API's authentication then reuses that outcome instead of
        reading the token again (the same query and digest)."""
        checked = request.__dict__.get(_CHECKED)
        if checked is not None and hmac.compare_digest(checked[0], raw):
            if checked[1] is None:
                raise _invalid()
            return checked[1]
        try:
            outcome = self.authenticate_token(raw)
        except exceptions.AuthenticationFailed:
            request.__dict__[_CHECKED] = (raw, None)
            raise
        request.__dict__[_CHECKED] = (raw, outcome)
        return outcome

    def authenticate_token(self, raw: str) -> tuple[Any, ApiToken]:
        prefix = split_token(raw)
        if prefix is None:
            raise _invalid()
        token = _token_with_user(prefix)
        if token is None or not hmac.compare_digest(token.digest, token_digest(raw)):
            raise _invalid()
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise _invalid()
        if not token.user.is_active:
            raise _invalid()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            # Coarse on purpose: one write per token every few minutes, not one per request.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return "Token"
