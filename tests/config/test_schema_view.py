"""The schema view builds the OpenAPI document once per process: anonymous callers can't make the server
generate it again and again (about half a second of CPU each)."""

from __future__ import annotations

from unittest import mock

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from config import schema

pytestmark = pytest.mark.django_db


def test_the_schema_is_generated_once_for_every_caller():
    schema.forget_built_schemas()
    with mock.patch.object(
        SchemaGenerator, "get_schema", autospec=True, side_effect=SchemaGenerator.get_schema
    ) as built:
        answers = [
            APIClient().get("/api/schema/", HTTP_AUTHORIZATION=header)
            for header in ("", "Basic eDp5", "Token gl_x_y", "")
        ]
        as_json = APIClient().get("/api/schema/?format=json")
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert built.call_count == 1
    assert answers[0].content == answers[3].content
    assert as_json.status_code == 200
    assert b'"/api/v1/transfers"' in as_json.content


def test_made_up_languages_dont_build_new_documents():
    schema.forget_built_schemas()
    with mock.patch.object(
        SchemaGenerator, "get_schema", autospec=True, side_effect=SchemaGenerator.get_schema
    ) as built:
        for index in range(5):
            assert APIClient().get(f"/api/schema/?lang=x{index}").status_code == 200
    assert built.call_count == 1
