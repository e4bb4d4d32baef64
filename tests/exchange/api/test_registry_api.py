"""The registry's endpoints: projects, CCER issuance, CEA vintages, allocation in JSON and from CSV."""

from __future__ import annotations

import pytest

from accounts.models import ParticipantKind
from exchange.models import AccountKind, Asset, Issuance, Project
from tests.helpers.api import client_for, error_of
from tests.helpers.ledger import balance, blocks, snapshot, system

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(market):
    return client_for(market.registry_actor)


def _project_body(owner_participant, **changes):
    return {
        "code": "BJ-TZ-FOREST-001",
        "name": "Tongzhou afforestation",
        "project_type": "forestry",
        "methodology": "CCER-14-001-V01",
        "location": "Tongzhou, Beijing",
        "owner": owner_participant.pk,
        "crediting_start": "2021-01-01",
        "crediting_end": "2040-12-31",
    } | changes


ISSUANCE = {
    "vintage": 2023,
    "monitoring_start": "2021-01-01",
    "monitoring_end": "2023-12-31",
    "quantity": 5000,
    "external_reference": "CCER-ISS-2024-0001",
}


def _state() -> dict[str, object]:
    return snapshot() | {"projects": Project.objects.count(), "assets": Asset.objects.count()}


def test_register_project_and_issue_a_batch(market, registry):
    owner, owner_acc, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)

    created = registry.post("/api/v1/projects", _project_body(owner), format="json")
    issued = registry.post("/api/v1/projects/BJ-TZ-FOREST-001/issuances", ISSUANCE, format="json")
    issued_state = _state()
    again = registry.post("/api/v1/projects/BJ-TZ-FOREST-001/issuances", ISSUANCE, format="json")

    assert created.status_code == 201
    assert created.json()["owner"] == {"id": owner.pk, "name": "Forest Co", "kind": "project_owner"}
    assert issued.status_code == 201
    body = issued.json()
    assert {k: body[k] for k in ("asset", "vintage", "quantity", "first_serial", "last_serial")} == {
        "asset": "CCER-BJ-TZ-FOREST-001-2023",
        "vintage": 2023,
        "quantity": 5000,
        "first_serial": 1,
        "last_serial": 5000,
    }
    assert error_of(again) == (409, "duplicate_external_reference")  # a uniqueness rule, not a replay
    assert _state() == issued_state
    assert Issuance.objects.count() == 1
    asset = Asset.objects.get(code="CCER-BJ-TZ-FOREST-001-2023")
    assert balance(owner_acc, asset) == (5000, 0)
    assert blocks(asset) == [(1, 5000, owner_acc.number, "available")]
    listed = registry.get("/api/v1/projects/BJ-TZ-FOREST-001/issuances").json()
    assert [i["external_reference"] for i in listed["results"]] == ["CCER-ISS-2024-0001"]


def test_issuance_reference_with_other_figures_is_409(market, registry):
    owner, _, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    registry.post("/api/v1/projects", _project_body(owner), format="json")
    registry.post("/api/v1/projects/BJ-TZ-FOREST-001/issuances", ISSUANCE, format="json")
    before = _state()

    response = registry.post(
        "/api/v1/projects/BJ-TZ-FOREST-001/issuances", ISSUANCE | {"quantity": 5001}, format="json"
    )

    assert error_of(response) == (409, "duplicate_external_reference")
    assert _state() == before


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/projects", None),
        ("/api/v1/assets/cea-vintages", {"vintage": 2026}),
        ("/api/v1/allocations", None),
        ("/api/v1/allocations/csv?asset=CEA-2024", None),
    ],
)
def test_registry_endpoints_refuse_other_kinds(market, url, body):
    owner, _, a = market.holder("A")
    if body is None:
        body = _project_body(owner) if "projects" in url else {"asset": "CEA-2024", "allocations": []}
    client = client_for(a)
    before = _state()

    response = client.post(url, body, format="json")

    assert error_of(response) == (403, "wrong_participant_kind")
    assert _state() == before


def test_project_refusals(market, registry):
    owner, _, _ = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    registry.post("/api/v1/projects", _project_body(owner), format="json")
    before = _state()

    duplicate = registry.post("/api/v1/projects", _project_body(owner), format="json")
    no_owner = registry.post("/api/v1/projects", _project_body(owner, code="X-2", owner=99999), format="json")
    bad_type = registry.post(
        "/api/v1/projects", _project_body(owner, code="X-3", project_type="volcano"), format="json"
    )
    unknown = registry.post("/api/v1/projects/NOPE-1/issuances", ISSUANCE, format="json")

    assert error_of(duplicate) == (409, "duplicate")
    assert error_of(no_owner) == (400, "participant_not_found")
    assert error_of(bad_type) == (400, "invalid_choice")
    assert error_of(unknown) == (404, "project_not_found")
    assert _state() == before


def test_create_cea_vintage(market, registry):
    response = registry.post("/api/v1/assets/cea-vintages", {"vintage": 2025}, format="json")
    again = registry.post("/api/v1/assets/cea-vintages", {"vintage": 2025}, format="json")

    assert response.status_code == 201
    assert response.json() == {
        "code": "CEA-2025",
        "kind": "allowance",
        "name": "China emission allowance 2025",
        "vintage": 2025,
        "project": None,
        "serialised": True,
        "transferable": True,
        "issued": 0,
    }
    assert error_of(again) == (409, "duplicate")


def test_allocate_in_json(market, registry):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")

    response = registry.post(
        "/api/v1/allocations",
        {
            "asset": "CEA-2024",
            "allocations": [
                {"account": a_acc.number, "quantity": 700},
                {"account": b_acc.number, "quantity": 300},
            ],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="alloc-2024-1",
    )

    assert response.status_code == 201
    assert (response.json()["rows"], response.json()["total"]) == (2, 1000)
    assert blocks(market.cea) == [(1, 700, a_acc.number, "available"), (701, 1000, b_acc.number, "available")]
    assert balance(system(AccountKind.ISSUANCE), market.cea) == (-1000, 0)


def test_allocate_in_json_to_unknown_account_or_asset(market, registry):
    _, a_acc, _ = market.holder("A")
    before = _state()

    unknown_account = registry.post(
        "/api/v1/allocations",
        {"asset": "CEA-2024", "allocations": [{"account": "CN-100-999999", "quantity": 1}]},
        format="json",
    )
    unknown_asset = registry.post(
        "/api/v1/allocations",
        {"asset": "CEA-1999", "allocations": [{"account": a_acc.number, "quantity": 1}]},
        format="json",
    )

    assert error_of(unknown_account) == (404, "account_not_found")
    assert error_of(unknown_asset) == (400, "unknown_asset")
    assert _state() == before


def test_allocate_from_csv_body(market, registry):
    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    text = f"account,quantity\n{a_acc.number},1200\n{b_acc.number},300\n"

    response = registry.post("/api/v1/allocations/csv?asset=CEA-2024", data=text, content_type="text/csv")

    assert response.status_code == 201, response.content
    assert (response.json()["rows"], response.json()["total"]) == (2, 1500)
    assert blocks(market.cea) == [
        (1, 1200, a_acc.number, "available"),
        (1201, 1500, b_acc.number, "available"),
    ]


def test_allocate_from_csv_twice_with_one_key_allocates_once(market, registry):
    _, a_acc, _ = market.holder("A")
    text = f"{a_acc.number},1200\n"
    url = "/api/v1/allocations/csv?asset=CEA-2024"

    first = registry.post(url, data=text, content_type="text/csv", HTTP_IDEMPOTENCY_KEY="csv-2024-07")
    again = registry.post(url, data=text, content_type="text/csv", HTTP_IDEMPOTENCY_KEY="csv-2024-07")
    other = registry.post(
        url, data=f"{a_acc.number},1201\n", content_type="text/csv", HTTP_IDEMPOTENCY_KEY="csv-2024-07"
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert error_of(other) == (409, "idempotency_conflict")
    assert balance(a_acc, market.cea) == (1200, 0)


def test_allocate_from_csv_upload_with_a_bad_row_applies_nothing(market, registry):
    from django.core.files.uploadedfile import SimpleUploadedFile

    _, a_acc, _ = market.holder("A")
    _, b_acc, _ = market.holder("B")
    text = f"account,quantity\n{a_acc.number},1200\n{b_acc.number},12x\n{a_acc.number},5\n"
    upload = SimpleUploadedFile("allocation.csv", text.encode(), content_type="text/csv")
    before = _state()

    response = registry.post("/api/v1/allocations/csv?asset=CEA-2024", {"file": upload}, format="multipart")

    assert error_of(response) == (400, "csv_rejected")
    assert [(e["line"], e["error"]) for e in response.json()["error"]["details"]["errors"]] == [
        (3, "invalid_quantity"),
        (4, "duplicate_account"),
    ]
    assert _state() == before
    assert balance(a_acc, market.cea) == (0, 0)


def test_allocate_from_csv_needs_the_asset(market, registry):
    _, a_acc, _ = market.holder("A")

    missing = registry.post("/api/v1/allocations/csv", data=f"{a_acc.number},1\n", content_type="text/csv")
    unknown = registry.post(
        "/api/v1/allocations/csv?asset=CEA-1999", data=f"{a_acc.number},1\n", content_type="text/csv"
    )

    assert error_of(missing) == (400, "invalid")
    assert error_of(unknown) == (400, "unknown_asset")


def test_everyone_reads_projects_and_assets(market, registry):
    owner, _, holder = market.holder("Forest Co", kind=ParticipantKind.PROJECT_OWNER)
    registry.post("/api/v1/projects", _project_body(owner), format="json")
    client = client_for(holder)

    projects = client.get("/api/v1/projects")
    detail = client.get("/api/v1/projects/bj-tz-forest-001")
    assets = client.get("/api/v1/assets?kind=allowance")
    asset = client.get("/api/v1/assets/CEA-2024")
    missing = client.get("/api/v1/assets/CEA-1999")

    assert [p["code"] for p in projects.json()["results"]] == ["BJ-TZ-FOREST-001"]
    assert detail.json()["code"] == "BJ-TZ-FOREST-001"
    assert [a["code"] for a in assets.json()["results"]] == ["CEA-2024"]
    assert asset.json()["issued"] == 0
    assert error_of(missing) == (404, "not_found")
