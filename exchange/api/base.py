"""What every API view shares: the actor, the Idempotency-Key, the parsed input, and a CSV renderer."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter
from rest_framework import parsers, renderers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request

from accounts.actors import Actor
from accounts.models import ParticipantKind
from accounts.permissions import KindRequired, actor_of
from config.api import idempotency_key
from core.idempotency import IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY_LENGTH

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
    OpenApiParameter.HEADER,
    required=False,
    description=f"A key of your choosing, 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters, scoped to your "
    "participant. The same key with the same request (endpoint and body) returns the first answer, with "
    "`Idempotent-Replayed: true`; with another endpoint or body, 409 idempotency_conflict. While the first "
    "request with the key is still running, 409 request_in_progress with Retry-After. A longer key is 400. "
    "A refused request leaves its key unused.",
)


class ActorMixin:
    """For API views: the acting participant and the request's Idempotency-Key."""

    @property
    def actor(self) -> Actor:
        return actor_of(self._drf_request)

    def idempotency_key(self) -> str | None:
        return idempotency_key(self._drf_request)

    def validated_input(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        """The request's body parsed by ``serializer_class``: invalid input is a 400 naming the fields."""
        parsed = serializer_class(data=self._drf_request.data)
        parsed.is_valid(raise_exception=True)
        return parsed.validated_data

    @property
    def _drf_request(self) -> Request:
        return self.request  # type: ignore[attr-defined]  # set by DRF's APIView on the view


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` through content negotiation; the views stream the CSV themselves.

    So what reaches ``render`` is a refusal: it is answered as the JSON error body, like any other.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return renderers.JSONRenderer().render(data, "application/json", renderer_context)


class _Echo:
    def write(self, value: str) -> str:
        return value


# A spreadsheet reads a cell starting with one of these as a formula (or, for tab and carriage return,
# strips them and reads what follows): =HYPERLINK(...) in a memo would run in whoever opens the export.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never evaluates: text starting like a formula gets a
    leading apostrophe (OWASP's advice). Numbers, including negative amounts such as "-12.50", stay numbers.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS) or _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """Stream rows as CSV (UTF-8 with a BOM so spreadsheet programs read Chinese names right). Every cell
    passes ``spreadsheet_safe``: memos, names and references are other participants' text."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow([spreadsheet_safe(cell) for cell in header])
        for row in rows:
            yield writer.writerow([spreadsheet_safe(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CsvTextParser(parsers.BaseParser):
    """Accepts a ``text/csv`` request body as text."""

    media_type = "text/csv"

    def parse(  # type: ignore[override]  # DRF takes any parsed data (here text); the stubs want a mapping
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> str:
        raw = stream.read(CSV_UPLOAD_LIMIT + 1) if stream is not None else b""
        if len(raw) > CSV_UPLOAD_LIMIT:
            raise ParseError(
                gettext("The file is larger than %(size)s MiB.") % {"size": CSV_UPLOAD_LIMIT // (1024 * 1024)}
            )
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ParseError(gettext("The file is not UTF-8 text.")) from None


CSV_UPLOAD_LIMIT = 5 * 1024 * 1024


def uploaded_text(request: Request, field: str = "file") -> str | None:
    """The text of a ``text/csv`` body or of a multipart upload named ``field``; None if neither."""
    data = request.data
    if isinstance(data, str):
        return data
    upload = request.FILES.get(field)
    if upload is None:
        return None
    raw = upload.read(CSV_UPLOAD_LIMIT + 1)
    if len(raw) > CSV_UPLOAD_LIMIT:
        raise ParseError(gettext("The file is larger than %(size)s MiB.") % {"size": CSV_UPLOAD_LIMIT // (1024 * 1024)})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParseError(gettext("The file is not UTF-8 text.")) from None


ExchangeOnly = KindRequired(ParticipantKind.EXCHANGE)
