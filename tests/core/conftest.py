import pytest


@pytest.fixture
def served_schema(api_client_for) -> dict:
    """The OpenAPI document /api/schema/ serves, as JSON."""
    resp = api_client_for("admin").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert resp.status_code == 200
    return resp.json()
