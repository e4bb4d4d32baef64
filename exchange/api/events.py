"""Participant events on the API: the page (``GET /events?after=``), the stream's documentation, webhooks.

The stream itself, ``GET /events/stream``, is served by the ASGI app (``exchange.stream``); the view here
describes it in the OpenAPI schema and, when a WSGI worker is reached instead, answers the events due now
as one short server-sent-events response that tells the client to reconnect (so a client still resumes).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.http import HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import InvalidInput
from exchange.api.base import ActorMixin
from exchange.api.idempotency import idempotent_request
from exchange.events import event_types
from exchange.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from exchange.selectors.events import event_json, events_after, latest_number
from exchange.services.webhooks import (
    UnknownEventType,
    WebhookNotFound,
    WebhookUrlRefused,
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
)

MAX_PAGE = 500

EVENT_OUT = inline_serializer(
    "ParticipantEvent",
    {
        "id": serializers.IntegerField(help_text=_("Your participant's event number: 1, 2, 3 ... with no gap.")),
        "type": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "audit_seq": serializers.IntegerField(help_text=_("The audit event it was projected from.")),
        "data": serializers.DictField(),
    },
)

TYPES_PARAMETER = OpenApiParameter(
    "types", str, description="Comma-separated event types (docs/events.md); all when absent."
)


def _types(request: Request) -> list[str]:
    raw = ",".join(request.query_params.getlist("types") + request.query_params.getlist("type"))
    types = sorted({t for t in raw.split(",") if t})
    unknown = sorted(set(types) - set(event_types()))
    if unknown:
        raise UnknownEventType(details={"types": unknown})
    return types


# An event id: ASCII digits only (``str.isdigit`` takes "²", which ``int`` then refuses with a 500).
_AFTER_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
_DIGITS = re.compile(r"[0-9]{1,18}")


def _whole(value: str | None, name: str, default: int, *, maximum: int | None = None) -> int:
    if value is None or value == "":
        return default
    if not _DIGITS.fullmatch(value) or (maximum is not None and not 1 <= int(value) <= maximum):
        raise InvalidInput(
            (
                gettext("%(name)s is a whole number from 1 to %(maximum)s.") % {"name": name, "maximum": maximum}
                if maximum
                else gettext("%(name)s is a whole number.") % {"name": name}
            ),
            details={name: value},
        )
    return int(value)


class EventListApi(ActorMixin, APIView):
    """Your participant's events numbered above ``after``, oldest first (the stream's events, as a page).

    Page on with ``after`` = the ``next_after`` of the answer; ``has_more`` says whether more wait now.
    """

    @extend_schema(
        parameters=[
            OpenApiParameter("after", _AFTER_SCHEMA, description="The last event id you have (0: from the start)."),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                description=f"At most this many (1 to {MAX_PAGE}, default 100).",
            ),
            TYPES_PARAMETER,
        ],
        responses=inline_serializer(
            "ParticipantEventPage",
            {
                "results": EVENT_OUT.__class__(many=True),
                "next_after": serializers.IntegerField(),
                "has_more": serializers.BooleanField(),
                "latest": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        after = _whole(request.query_params.get("after"), "after", 0)
        limit = _whole(request.query_params.get("limit"), "limit", 100, maximum=MAX_PAGE)
        types = _types(request)
        participant_id = self.actor.member_participant_id
        rows = list(events_after(participant_id, after=after, types=types, limit=limit + 1))
        page = rows[:limit]
        return Response(
            {
                "results": [event_json(e) for e in page],
                "next_after": page[-1].number if page else after,
                "has_more": len(rows) > limit,
                "latest": latest_number(participant_id),
            }
        )


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets a client that asks for ``text/event-stream`` through content negotiation (the view answers the
    stream as text itself; errors stay JSON)."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        import json

        return json.dumps(data, separators=(",", ":"), default=str).encode()  # lazy messages are text


class EventStreamApi(ActorMixin, APIView):
    """Your participant's events as they happen (server-sent events; docs/events.md).

    Each event is ``id: <id>``, ``event: <type>``, ``data: <the event as JSON>``; a comment line is a
    heartbeat. Reconnect with ``Last-Event-ID`` (or ``?after=``): every later event comes once, in order.
    Served by the ASGI process; reached on a WSGI worker it sends the events due now and asks the
    client to reconnect.
    """

    def get_renderers(self) -> list[Any]:
        return [*super().get_renderers(), EventStreamRenderer()]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                {"type": "string", "pattern": r"^[0-9]{1,18}$"},
                OpenApiParameter.HEADER,
                description="Resume after this id.",
            ),
            OpenApiParameter("after", _AFTER_SCHEMA, description="Resume after this id (when no header is sent)."),
            TYPES_PARAMETER,
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The event stream: each event's data is the event as JSON."
            )
        },
    )
    def get(self, request: Request) -> HttpResponse:
        header = request.headers.get("Last-Event-ID")
        if header is not None and not _DIGITS.fullmatch(header):  # sent, even empty, it is an event id
            raise InvalidInput(gettext("Last-Event-ID is a whole number."), details={"Last-Event-ID": header[:40]})
        after = _whole(request.query_params.get("after"), "after", 0)  # checked even when the header wins
        if header is not None:
            after = int(header)
        types = _types(request)
        events = list(events_after(self.actor.member_participant_id, after=after, types=types, limit=MAX_PAGE))
        import json

        body = "retry: 2000\n\n" + "".join(
            f"id: {e.number}\nevent: {e.type}\ndata: {json.dumps(event_json(e), separators=(',', ':'))}\n\n"
            for e in events
        )
        response = HttpResponse(body, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # An error is JSON (DRF renders it); the stream is text as it is.
        if isinstance(response, Response):
            return super().finalize_response(request, response, *args, **kwargs)
        return response


# --- webhooks ---------------------------------------------------------------------------------------------
class WebhookEndpointOut(serializers.ModelSerializer[WebhookEndpoint]):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "types", "status", "cursor", "description", "created_at", "status_changed_at"]


class WebhookEndpointCreatedOut(WebhookEndpointOut):
    class Meta(WebhookEndpointOut.Meta):
        fields = [*WebhookEndpointOut.Meta.fields, "secret"]


@extend_schema_field({"type": "string", "format": "uri", "maxLength": 500})
class WebhookUrlField(serializers.CharField):
    """A webhook's URL: text that is not a URI at all (no scheme) is ``invalid``, as the schema's
    ``format: uri`` says; a URI that is not an http(s) URL is webhook_url_refused, the code the service gives a
    URL it won't call (``exchange:cash`` fits ``format: uri`` but is no address)."""

    _validator = URLValidator(schemes=["http", "https"])
    _scheme = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        url = super().to_internal_value(data)
        if not self._scheme.match(url):
            raise serializers.ValidationError(serializers.URLField.default_error_messages["invalid"])
        try:
            self._validator(url)
        except DjangoValidationError:
            raise WebhookUrlRefused(details={"url": url}) from None
        return url


class WebhookEndpointIn(serializers.Serializer):
    url = WebhookUrlField(max_length=500)
    types = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class WebhookAttemptOut(serializers.ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = ["at", "status_code", "response", "error", "duration_ms"]


class WebhookDeliveryOut(serializers.ModelSerializer[WebhookDelivery]):
    event = serializers.IntegerField(source="number")
    type = serializers.CharField(source="event.type")
    attempt_log = WebhookAttemptOut(source="attempt_rows", many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_response",
            "last_error",
            "created_at",
            "delivered_at",
            "attempt_log",
        ]


class WebhookEndpointListApi(ActorMixin, generics.ListAPIView):
    """Your participant's webhook endpoints. POST registers one (an admin): HTTPS, the event types wanted
    (none: all), and the secret its deliveries are signed with, shown in this answer only."""

    serializer_class = WebhookEndpointOut

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return WebhookEndpoint.objects.filter(participant_id=self.actor.member_participant_id).order_by("id")

    @idempotent_request
    @extend_schema(
        request=WebhookEndpointIn, responses={201: WebhookEndpointCreatedOut}, operation_id="webhooks_create"
    )
    def post(self, request: Request) -> Response:
        data = WebhookEndpointIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(
            actor=self.actor,
            url=data.validated_data["url"],
            types=data.validated_data["types"],
            description=data.validated_data["description"],
        )
        return Response(WebhookEndpointCreatedOut(endpoint).data, status=status.HTTP_201_CREATED)


def _endpoint(view: ActorMixin, pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=pk, participant_id=view.actor.member_participant_id).first()
    if endpoint is None:
        raise WebhookNotFound(details={"webhook": pk})
    return endpoint


class WebhookEndpointDetailApi(ActorMixin, APIView):
    """One of your webhook endpoints."""

    @extend_schema(responses=WebhookEndpointOut)
    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookEndpointOut(_endpoint(self, pk)).data)


class WebhookEndpointDisableApi(ActorMixin, APIView):
    """Stop delivering to this endpoint (an admin); enabling it resumes where it stopped."""

    @idempotent_request
    @extend_schema(request=None, responses=WebhookEndpointOut)
    def post(self, request: Request, pk: int) -> Response:
        return Response(WebhookEndpointOut(webhook_endpoint_disable(actor=self.actor, endpoint_id=pk)).data)


class WebhookEndpointEnableApi(ActorMixin, APIView):
    """Deliver to this disabled or failing endpoint again (an admin), a failed delivery first."""

    @idempotent_request
    @extend_schema(request=None, responses=WebhookEndpointOut)
    def post(self, request: Request, pk: int) -> Response:
        return Response(WebhookEndpointOut(webhook_endpoint_enable(actor=self.actor, endpoint_id=pk)).data)


class WebhookDeliveryListApi(ActorMixin, generics.ListAPIView):
    """The deliveries to one of your endpoints, newest first, each with its attempts and the answers."""

    serializer_class = WebhookDeliveryOut

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        endpoint = _endpoint(self, self.kwargs["pk"])
        return (
            WebhookDelivery.objects.filter(endpoint=endpoint)
            .select_related("event")
            .prefetch_related("attempt_rows")
            .order_by("-number")
        )
