"""The admin's own pages for one object (issue, glance, cover, top up, enforce by sale): an id that doesn't
exist is answered as the admin's change page answers it, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from exchange.models import AuditEvent, Project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "project/{pk}/issue/",
    "complianceyear/{pk}/glance/",
    "complianceyear/{pk}/cover/",
    "pledgeloan/{pk}/top-up/",
    "pledgeloan/{pk}/enforce-sale/",
]


@pytest.fixture
def staff() -> Client:
    user = UserFactory(is_staff=True, is_superuser=True)
    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(pk=user.pk))
    return client


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("pk", [999, 99999999999999999999])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_admin_page_for_a_missing_object_redirects_with_a_message(staff, page, pk, method):
    events = AuditEvent.objects.count()

    response = getattr(staff, method)(f"/admin/exchange/{page.format(pk=pk)}", {"quantity": 1})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert f'with ID "{pk}" does not exist' in message
    assert AuditEvent.objects.count() == events
    assert Project.objects.count() == 0
