"""Under /api/, Django's own 400 and 404 answers are JSON like DRF's (eventhub/api_errors.py); pages keep HTML."""

import pytest
from rest_framework.authtoken.models import Token


@pytest.mark.django_db
def test_a_path_no_api_route_matches_gets_a_json_404(client, viewer):
    token = Token.objects.create(user=viewer).key
    for path in ("/api/v1/dead-letters/abc/", "/api/v1/flows/1/steps/x/", "/api/v1/nowhere/"):
        response = client.get(path, HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not found."}, path


@pytest.mark.django_db
def test_a_form_over_the_field_limit_gets_a_json_400(client, operator, settings):
    token = Token.objects.create(user=operator).key
    fields = [("ids", str(n)) for n in range(1, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 2)]
    response = client.post(
        "/api/v1/redrive-jobs/",
        "&".join(f"{name}={value}" for name, value in [("action", "retry"), *fields]),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 400
    assert "form fields" in response.json()["detail"]


@pytest.mark.django_db
def test_a_body_over_the_upload_limit_gets_a_json_400(client, designer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    token = Token.objects.create(user=designer).key
    response = client.post(
        "/api/v1/domains/",
        {"name": "x" * 2000, "slug": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 400
    assert "over 1024 bytes" in response.json()["detail"]


@pytest.mark.django_db
def test_pages_keep_their_html_404(client_as, viewer):
    response = client_as(viewer).get("/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
