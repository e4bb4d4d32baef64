"""Webhooks: a participant's events POSTed to its endpoints, signed, in order, at least once.

An endpoint (``WebhookEndpoint``) receives its participant's events of the types it names, in number order.
``webhooks_deliver`` (the ``webhooks-deliver`` job, every few seconds) takes each endpoint under its row
lock (``skip_locked``: two workers never deliver to one endpoint at once) and sends its next event: a 2xx
answer acknowledges it and moves the endpoint's cursor past it; anything else (an error, a timeout, another
status) is retried with backoff (10 s, 20 s, 40 s ... at most an hour) and nothing later is sent meanwhile,
so the receiver sees the events in order. After ``WEBHOOK_RETRY_SECONDS`` (a day) of failures the delivery
is ``failed``, the endpoint ``failing`` (it sends nothing more) and the participant gets a notice; enabling
it again (``webhook_endpoint_enable``) retries the failed delivery first. A worker killed between the
receiver's 2xx and its commit sends that event again: at least once, never not at all.

Deliveries read the events table only; the ledger never waits for a receiver.

Each POST carries the event as JSON and ``Greenledger-Signature: t=<unix time>,v1=<hex>``, the
HMAC-SHA256 of ``"<t>.<body>"`` under the endpoint's secret (docs/events.md shows how to check it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.models import Participant
from core import clock
from core.errors import Conflict, InvalidInput, NotFound, translatable
from core.i18n import registry_language
from exchange.events import event_types
from exchange.locks import lock_row, lock_rows
from exchange.models import (
    DeliveryStatus,
    NoticeKind,
    ParticipantEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)
from exchange.selectors.events import event_json, latest_number
from exchange.services.audit import audit_record, service
from exchange.services.notices import notice_add

logger = logging.getLogger("greenledger.webhooks")

SIGNATURE_HEADER = "Greenledger-Signature"
MAX_ENDPOINTS = 10
BATCH = 50  # deliveries per endpoint per run


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    default_message = translatable("No such webhook endpoint, or not yours.")


class WebhookUrlRefused(InvalidInput):
    code = "webhook_url_refused"
    default_message = translatable("A webhook URL is https:// with a host name.")


class UnknownEventType(InvalidInput):
    code = "unknown_event_type"
    default_message = translatable("Unknown event type.")


class TooManyWebhooks(Conflict):
    code = "too_many_webhooks"
    default_message = translatable("A participant has at most 10 webhook endpoints.")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def check_types(types: list[str]) -> list[str]:
    """The event types asked for, each one the system produces (empty: all)."""
    known = set(event_types())
    unknown = sorted(set(types) - known)
    if unknown:
        raise UnknownEventType(details={"types": unknown, "known": sorted(known)})
    return sorted(set(types))


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    plain_allowed = parts.hostname in settings.WEBHOOK_HTTP_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and plain_allowed)):
        raise WebhookUrlRefused(details={"url": url})


@service
def webhook_endpoint_create(
    *, actor: Actor, url: str, types: list[str], description: str = "", secret: str | None = None
) -> WebhookEndpoint:
    """Register an endpoint for the actor's participant (an admin); its secret is returned on it, once.

    Delivery starts with the participant's next event: what happened before is in ``GET /events``.
    """
    actor.require_can_act()
    actor.require_role("admin")
    _check_url(url)
    wanted = check_types(types)
    participant_id = actor.member_participant_id
    # Under the participant's row lock, so two concurrent registrations count each other.
    lock_row(Participant.objects.filter(pk=participant_id))
    if WebhookEndpoint.objects.filter(participant_id=participant_id).exclude(status=WebhookStatus.DISABLED).count() >= (
        MAX_ENDPOINTS
    ):
        raise TooManyWebhooks(details={"limit": MAX_ENDPOINTS})
    now = clock.now()
    endpoint = WebhookEndpoint.objects.create(
        participant_id=participant_id,
        url=url,
        secret=secret or f"whsec_{secrets.token_urlsafe(32)}",
        types=wanted,
        description=description[:200],
        cursor=latest_number(participant_id),
        created_at=now,
        status_changed_at=now,
    )
    audit_record(
        actor=actor,
        action="webhook.create",
        obj=endpoint,
        payload={"url": url, "types": wanted, "from_event": endpoint.cursor},
    )
    return endpoint


def _owned(actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    endpoint = lock_row(WebhookEndpoint.objects.filter(pk=endpoint_id, participant_id=actor.member_participant_id))
    if endpoint is None:
        raise WebhookNotFound(details={"webhook": endpoint_id})
    return endpoint


@service
def webhook_endpoint_disable(*, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """Stop delivering to an endpoint (an admin). Its cursor stays: enabling it resumes where it stopped."""
    actor.require_can_act()
    endpoint = _owned(actor, endpoint_id)
    actor.require_role("admin")
    before = endpoint.status
    endpoint.status, endpoint.status_changed_at = WebhookStatus.DISABLED, clock.now()
    endpoint.save(update_fields=["status", "status_changed_at"])
    audit_record(actor=actor, action="webhook.disable", obj=endpoint, payload={"before": before})
    return endpoint


@service
def webhook_endpoint_enable(*, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """Deliver to a disabled or failing endpoint again (an admin), from where it stopped: a failed delivery
    is tried again first, with a fresh day of retries."""
    actor.require_can_act()
    endpoint = _owned(actor, endpoint_id)
    actor.require_role("admin")
    before = endpoint.status
    now = clock.now()
    retried = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, created_at=now
    )
    endpoint.status, endpoint.status_changed_at = WebhookStatus.ACTIVE, now
    endpoint.save(update_fields=["status", "status_changed_at"])
    audit_record(actor=actor, action="webhook.enable", obj=endpoint, payload={"before": before, "retried": retried})
    return endpoint


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 10, 20, 40 ... seconds, at most an hour."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


def webhooks_deliver(*, endpoint_ids: list[int] | None = None, client: httpx.Client | None = None) -> int:
    """Send what is due to every active endpoint (or those of ``endpoint_ids``); return how many were
    acknowledged. Safe to run concurrently: each endpoint is taken by one worker at a time."""
    queryset = WebhookEndpoint.objects.filter(status=WebhookStatus.ACTIVE)
    if endpoint_ids is not None:
        queryset = queryset.filter(pk__in=endpoint_ids)
    own = client is None
    http = client or httpx.Client(
        timeout=cast(int, settings.GREENLEDGER["WEBHOOK_TIMEOUT_SECONDS"]), follow_redirects=False
    )
    delivered = 0
    try:
        for endpoint_id in list(queryset.order_by("id").values_list("id", flat=True)):
            delivered += _deliver_endpoint(endpoint_id, http)
    finally:
        if own:
            http.close()
    return delivered


def _next_delivery(endpoint: WebhookEndpoint) -> WebhookDelivery | None:
    """The endpoint's pending delivery, or one made for its participant's next event it wants."""
    waiting = WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING)
    pending = waiting.order_by("number").first()
    if pending is not None:
        return pending
    events = ParticipantEvent.objects.filter(participant_id=endpoint.participant_id, number__gt=endpoint.cursor)
    if endpoint.types:
        events = events.filter(type__in=endpoint.types)
    event = events.order_by("number").first()
    if event is None:
        return None
    now = clock.now()
    return WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, number=event.number, next_attempt_at=now, created_at=now
    )


def _deliver_endpoint(endpoint_id: int, http: httpx.Client) -> int:
    delivered = 0
    for _ in range(BATCH):
        with transaction.atomic():
            locked = lock_rows(
                WebhookEndpoint.objects.filter(pk=endpoint_id, status=WebhookStatus.ACTIVE), skip_locked=True
            )
            if not locked:
                return delivered
            endpoint = locked[0]
            delivery = _next_delivery(endpoint)
            if delivery is None or delivery.next_attempt_at > clock.now():
                return delivered
            ok = _attempt(endpoint, delivery, http)
            if not ok:
                return delivered
            delivered += 1
    return delivered


def _attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery, http: httpx.Client) -> bool:
    """POST one delivery and record the answer; True when the receiver acknowledged it (2xx)."""
    event = ParticipantEvent.objects.get(pk=delivery.event_id)
    body = json.dumps(event_json(event), separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "greenledger-webhooks/1",
        SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
        "Greenledger-Event-Id": str(event.number),
        "Greenledger-Event-Type": event.type,
        "Greenledger-Delivery": str(delivery.pk),
    }
    started = time.perf_counter()
    status_code: int | None = None
    response_text = error = ""
    try:
        answer = http.post(endpoint.url, content=body, headers=headers)
        status_code, response_text = answer.status_code, answer.text[:1000]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    now = clock.now()
    WebhookAttempt.objects.create(
        delivery=delivery,
        at=now,
        status_code=status_code,
        response=response_text,
        error=error,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_response, delivery.last_error = status_code, response_text, error
    fields = ["attempts", "last_status_code", "last_response", "last_error", "status", "next_attempt_at"]
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
        delivery.save(update_fields=[*fields, "delivered_at"])
        endpoint.cursor = delivery.number
        endpoint.save(update_fields=["cursor"])
        return True
    give_up = now - delivery.created_at >= timedelta(seconds=cast(int, settings.GREENLEDGER["WEBHOOK_RETRY_SECONDS"]))
    if give_up:
        delivery.status = DeliveryStatus.FAILED
        endpoint.status, endpoint.status_changed_at = WebhookStatus.FAILING, now
        endpoint.save(update_fields=["status", "status_changed_at"])
        _report_failing(endpoint, delivery)
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(update_fields=fields)
    logger.info(
        "webhook delivery failed",
        extra={"endpoint": endpoint.pk, "event": delivery.number, "status": status_code, "gave_up": give_up},
    )
    return False


@registry_language()
def _report_failing(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> None:
    participant = Participant.objects.get(pk=endpoint.participant_id)
    notice_add(
        recipients=[participant],
        kind=NoticeKind.WEBHOOK_FAILING,
        subject=gettext("Webhook endpoint %(url)s is failing") % {"url": endpoint.url},
        body=gettext(
            "Event %(number)s could not be delivered to %(url)s for a day "
            "(%(attempts)s attempts; last answer: %(answer)s). "
            "Nothing more is sent to this endpoint until an admin enables it again "
            "(POST /api/v1/webhooks/%(id)s/enable); the events wait and are delivered in order then."
        )
        % {
            "number": delivery.number,
            "url": endpoint.url,
            "attempts": delivery.attempts,
            "answer": delivery.last_status_code or delivery.last_error,
            "id": endpoint.pk,
        },
        obj=("webhook_endpoint", endpoint.pk),
    )


def failing_endpoints() -> Any:
    """Endpoints that are failing or have a delivery retried for over an hour (for the admin and monitoring)."""
    hour_ago = clock.now() - timedelta(hours=1)
    return WebhookEndpoint.objects.filter(
        Q(status=WebhookStatus.FAILING)
        | Q(deliveries__status=DeliveryStatus.PENDING, deliveries__created_at__lt=hour_ago)
    ).distinct()
