"""The OpenAPI schema renders without warnings and validates; the schema and docs pages answer."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from config import schema

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


def test_the_schema_describes_fields_in_the_language_asked_for():
    # Given the document built once per language (config.schema)
    schema.forget_built_schemas()
    client = APIClient()

    # When it is asked for in Chinese, then in English, by Accept-Language or ?lang=
    chinese = client.get("/api/schema/?format=json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    english = client.get("/api/schema/?format=json", HTTP_ACCEPT_LANGUAGE="en")
    chosen = client.get("/api/schema/?format=json&lang=en", HTTP_ACCEPT_LANGUAGE="zh-hans")

    # Then a transfer's fields are described in that language, a figure in the text filled in either way
    def described(answer):
        schemas = answer.json()["components"]["schemas"]
        return (
            schemas["TransferInRequest"]["properties"]["source"]["description"],
            schemas["TransferBatchInRequest"]["properties"]["transfers"]["description"],
        )

    assert described(chinese) == ("您的持有账户之一。", "1 至 1000 笔从您的持有账户转出的划转。")
    assert described(english) == ("One of your holding accounts.", "1 to 1000 transfers from your holding accounts.")
    assert described(chosen) == described(english)
    assert (chinese["Content-Language"], english["Content-Language"]) == ("zh-hans", "en")
