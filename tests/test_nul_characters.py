"""A NUL character in a query or a body is a 400 that says why, never a 500 from PostgreSQL."""

from __future__ import annotations

import json

import pytest

from designer.models import Service

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["?search=a%00b", "?domain=%00"])
def test_a_nul_in_a_filter_is_refused(client_as, viewer, query):
    response = client_as(viewer).get(f"/api/v1/services/{query}")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_a_nul_in_a_json_body_is_refused_and_nothing_is_saved(client_as, designer):
    response = client_as(designer).post(
        "/api/v1/services/", json.dumps({"name": "bill\u0000ing"}), content_type="application/json"
    )
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    assert not Service.objects.exists()


def test_a_page_gets_a_plain_400(client_as, viewer):
    response = client_as(viewer).get("/catalog/?q=%00")
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_text_without_nul_goes_through(client_as, designer):
    response = client_as(designer).post(
        "/api/v1/services/", json.dumps({"name": "billing \\u00e9"}), content_type="application/json"
    )
    assert response.status_code == 201


def test_a_nul_in_a_multipart_body_is_refused(client_as, designer):
    """A schema in a form-data part (as schemathesis sent it, and PostgreSQL jsonb cannot hold)."""
    response = client_as(designer).post(
        "/api/v1/registry/events/order.placed/versions/", {"schema": '{"title": "a\\u0000b"}', "changelog": "x"}
    )
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
