"""Permission helpers used by every API view.

``actor_of(request)`` turns the authenticated user into an ``Actor``. ``IsMember`` is the default
permission: any member reads; writing needs an active participant and an acting role. ``KindRequired``
narrows an endpoint to some participant kinds. Object visibility ("not yours" answers 404) is the
selectors' job: they filter by the actor.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.actors import Actor


def actor_of(request: Any) -> Actor:
    # The instance's own attribute: on a DRF request, getattr of a missing name goes through its fallback to
    # the Django request and two AttributeErrors, once per request.
    cached = request.__dict__.get("_greenledger_actor")
    if cached is None:
        cached = Actor.for_user(request.user)
        request._greenledger_actor = cached
    return cached


class IsMember(BasePermission):
    """Authenticated, acting for a participant; unsafe methods need the right to act."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        actor = actor_of(request)
        if request.method not in SAFE_METHODS:
            actor.require_can_act()
        return True


def KindRequired(*kinds: str, for_reads: bool = False) -> type[BasePermission]:  # a class factory
    """Only these participant kinds may call the endpoint (unsafe methods, or every method)."""

    class _KindRequired(IsMember):
        def has_permission(self, request: Any, view: Any) -> bool:
            if not super().has_permission(request, view):
                return False
            if for_reads or request.method not in SAFE_METHODS:
                actor_of(request).require_kind(*kinds, allow_system=False)
            return True

    _KindRequired.__name__ = f"KindRequired({', '.join(kinds)})"
    return _KindRequired
