"""The OpenAPI schema renders without warnings and validates; the schema and docs pages answer."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_spectacular_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    stderr = io.StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=stderr)

    schema = yaml.safe_load(target.read_text())
    assert schema["info"]["title"] == "greenledger API"
    for path in (
        "/api/v1/transfers",
        "/api/v1/retirements",
        "/api/v1/accounts/{number}/statement",
        "/api/v1/serials/{asset}/{serial}",
        "/api/v1/allocations/csv",
    ):
        assert path in schema["paths"], path
    transfer = schema["paths"]["/api/v1/transfers"]["post"]
    # The header is declared once and referred to by every keyed operation.
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in transfer["parameters"]
    shared = schema["components"]["parameters"]["IdempotencyKey"]
    assert (shared["name"], shared["in"], shared["schema"]["maxLength"]) == ("Idempotency-Key", "header", 128)


def test_schema_and_docs_pages_answer():
    client = APIClient()

    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/transfers" in schema.content
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
