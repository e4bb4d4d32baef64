"""The caller's participant's notices and their delivery state (``GET /notices``)."""

from __future__ import annotations

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from rest_framework import generics, serializers

from exchange.api.base import ActorMixin
from exchange.api.fields import ChoiceFilter
from exchange.models import Notice, NoticeKind, NoticeStatus


class NoticeOut(serializers.ModelSerializer[Notice]):
    class Meta:
        model = Notice
        fields = [
            "id",
            "kind",
            "address",
            "subject",
            "body",
            "object_type",
            "object_id",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "delivered_at",
        ]


class NoticeFilter(filters.FilterSet):
    status = ChoiceFilter(choices=NoticeStatus.choices)
    kind = ChoiceFilter(choices=NoticeKind.choices)

    class Meta:
        model = Notice
        fields = ["status", "kind"]


class NoticeListApi(ActorMixin, generics.ListAPIView):
    """Notices sent (or being sent) to your participant, newest first: margin calls, maturity, default,
    enforcement, approvals waiting. ``status`` is ``pending`` until the mail server has accepted it."""

    serializer_class = NoticeOut
    filterset_class = NoticeFilter

    def get_queryset(self) -> QuerySet[Notice]:
        if getattr(self, "swagger_fake_view", False):
            return Notice.objects.none()
        return Notice.objects.filter(participant_id=self.actor.member_participant_id).order_by("-id")
