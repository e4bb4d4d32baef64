"""Participants, memberships and API tokens as registry staff name them (applied by ``core.vocabulary``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

MODELS = {
    "participant": (_("participant"), _("participants")),
    "membership": (_("membership"), _("memberships")),
    "apitoken": (_("API token"), _("API tokens")),
}

FIELDS = {
    "name": _("name"),
    "kind": _("participant kind"),
    "status": _("status"),
    "email": _("notice e-mail"),
    "created_at": _("created at"),
    "user": _("user"),
    "participant": _("participant"),
    "role": _("role"),
    "prefix": _("prefix"),
    "digest": _("digest"),
    "expires_at": _("expires at"),
    "last_used_at": _("last used at"),
    "revoked_at": _("revoked at"),
}

MODEL_FIELDS = {("apitoken", "name"): _("token name")}
