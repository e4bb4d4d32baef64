"""The notice outbox: write a notice with its cause, send it by a job, mark it delivered only when it was.

``notice_add`` is called inside the service that causes the notice (its transaction), one row per
recipient with a notice address. ``notices_send`` sends the pending notices that are due, each under its
row lock (``FOR UPDATE SKIP LOCKED``: two senders never send one notice at once), and records the outcome
in the same transaction as the lock: ``delivered`` when the mail server accepted it, else one more attempt
and a later ``next_attempt_at`` (1, 2, 4 ... minutes, at most 6 hours), ``failed`` after ``MAX_ATTEMPTS``.
A sender killed between the server's acceptance and its commit leaves the notice pending, so it is sent
again: a notice may arrive twice, never not at all.

After the cause commits, its notices are sent at once (``notices_send_after_commit``); the every-minute
job sends what that missed (mail server down, process killed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Q

from accounts.models import Participant
from core import clock
from exchange.locks import lock_rows
from exchange.models import Notice, NoticeStatus

logger = logging.getLogger("greenledger.notices")

MAX_ATTEMPTS = 12
BATCH = 100


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed send: 1, 2, 4 ... minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def notice_add(
    *, recipients: Iterable[Participant], kind: str, subject: str, body: str, obj: tuple[str, Any]
) -> list[Notice]:
    """Queue one notice to each recipient that has a notice address, in the caller's transaction."""
    now = clock.now()
    notices = [
        Notice(
            participant=participant,
            kind=kind,
            address=participant.email,
            subject=subject[:300],
            body=body,
            object_type=str(obj[0]),
            object_id=str(obj[1]),
            next_attempt_at=now,
            created_at=now,
        )
        for participant in recipients
        if participant.email
    ]
    if not notices:
        return []
    created = Notice.objects.bulk_create(notices)
    ids = [n.pk for n in created]
    transaction.on_commit(lambda: notices_send_after_commit(ids))
    return created


def notices_send_after_commit(ids: list[int]) -> None:
    """Try the notices just committed at once; whatever fails is left to the job."""
    try:
        notices_send(ids=ids)
    except Exception:
        logger.exception("notices could not be sent now; the notices job will retry", extra={"notices": ids})


def notices_send(*, ids: list[int] | None = None, limit: int = BATCH) -> int:
    """Send the pending notices that are due (or those of ``ids``); return how many were delivered."""
    delivered = 0
    with transaction.atomic():
        due = Q(status=NoticeStatus.PENDING) & Q(next_attempt_at__lte=clock.now())
        if ids is not None:
            due &= Q(pk__in=ids)
        notices = lock_rows(Notice.objects.filter(due).order_by("id")[:limit], skip_locked=True)
        if not notices:
            return 0
        sender = settings.DEFAULT_FROM_EMAIL
        connection = get_connection(fail_silently=False)
        for notice in notices:
            message = EmailMessage(
                subject=notice.subject, body=notice.body, from_email=sender, to=[notice.address], connection=connection
            )
            try:
                sent = message.send()
            except Exception as exc:
                sent, error = 0, f"{type(exc).__name__}: {exc}"
            else:
                error = "" if sent else "the mail backend accepted nothing"
            notice.attempts += 1
            if sent:
                notice.status, notice.delivered_at, notice.last_error = NoticeStatus.DELIVERED, clock.now(), ""
                delivered += 1
            else:
                notice.last_error = error[:2000]
                if notice.attempts >= MAX_ATTEMPTS:
                    notice.status = NoticeStatus.FAILED
                    logger.error("notice not delivered; giving up", extra={"notice": notice.pk, "error": error})
                else:
                    notice.next_attempt_at = clock.now() + backoff(notice.attempts)
                    logger.warning("notice not delivered; will retry", extra={"notice": notice.pk, "error": error})
            notice.save(update_fields=["status", "attempts", "next_attempt_at", "last_error", "delivered_at"])
    return delivered


__all__ = ["MAX_ATTEMPTS", "backoff", "notice_add", "notices_send"]
