"""409 for state conflicts, 400 for malformed requests: one rule (`aicmo.api.errors.is_conflict`) for every
endpoint. A value already used in the workspace is a 409 with the shared error body naming the field;
the same request with a malformed field besides stays a 400; a new value is accepted."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from rest_framework import exceptions

from aicmo.api.errors import is_conflict, is_missing
from aicmo.conflicts import Conflict, taken

RULES = {"op": "and", "rules": [{"field": "score", "operator": "gte", "value": 50}]}
LAYOUT = "<html><body>{{ body }}</body></html>"

# (path, a body that can be created once, its conflicting field, a malformed extra field)
UNIQUE_PER_WORKSPACE = [
    ("crm/contacts", {"email": "ann@example.com"}, "email", {"tags": "vip"}),
    ("crm/companies", {"domain": "acme.example"}, "domain", {"name": "x" * 201}),
    ("crm/tags", {"name": "vip"}, "name", None),
    ("crm/lists", {"name": "Newsletter"}, "name", {"description": ["x"]}),
    ("crm/segments", {"name": "Hot", "rules": RULES}, "name", {"rules": {"op": "xor"}}),
    (
        "crm/custom-fields",
        {"key": "plan", "label": "Plan", "type": "text"},
        "key",
        {"type": "colour"},
    ),
    ("media/libraries", {"name": "Brand"}, "name", None),
    ("publishing/senders", {"email": "news@acme.example"}, "email", None),
    ("publishing/layouts", {"name": "Base", "html": LAYOUT}, "name", {"html": "<p>no body</p>"}),
]


@pytest.mark.parametrize(("path", "body", "field", "malformed"), UNIQUE_PER_WORKSPACE)
def test_a_value_already_used_is_409_and_a_malformed_one_beside_it_400(
    api_client_for, path, body, field, malformed
):
    client = api_client_for(role="admin")
    url = f"/api/v1/{path}/"
    assert client.post(url, body, format="json").status_code == 201

    again = client.post(url, body, format="json")

    assert again.status_code == 409, again.json()
    error = again.json()["error"]
    assert error["code"] == "conflict" and list(error["fields"]) == [field]
    if malformed is not None:
        both = client.post(url, {**body, **malformed}, format="json")
        assert both.status_code == 400 and both.json()["error"]["code"] == "invalid"


MISSING_ID = ValidationError("Not found in this workspace: 12.", code="does_not_exist")


@pytest.mark.parametrize(
    ("error", "conflict", "missing"),
    [
        (Conflict("Cannot pause a campaign that is draft."), True, False),
        (Conflict({"name": "Already used.", "key": ["Also used."]}), True, False),
        (ValidationError({"name": taken("Already used.")}), True, False),
        (ValidationError({"name": taken("Already used."), "rules": "Unknown operator."}), False, False),
        (ValidationError("Invalid."), False, False),
        (ValidationError({"email": ValidationError("Already used.", code="unique")}), True, False),
        (ValidationError({"content": MISSING_ID}), False, True),
        (ValidationError({"content": MISSING_ID, "name": taken("Already used.")}), True, False),
        (ValidationError({"content": MISSING_ID, "rules": "Unknown operator."}), False, False),
    ],
)
def test_only_errors_made_entirely_of_state_refusals_are_409_or_404(error, conflict, missing):
    """Conflicts alone (or with missing ids) are 409, missing ids alone 404, anything malformed 400."""
    from rest_framework.fields import get_error_detail

    detail = exceptions.ValidationError(get_error_detail(error))
    assert (is_conflict(detail), is_missing(detail)) == (conflict, missing)


def test_schema_documents_409_on_writes_only(api_client_for):
    paths = api_client_for(role="viewer").get("/api/schema/?format=json").json()["paths"]
    operations = [
        (m, op)
        for item in paths.values()
        for m, op in item.items()
        if m in {"get", "post", "put", "patch", "delete"}
    ]
    assert operations
    for method, operation in operations:
        assert ("409" in operation["responses"]) is (method != "get"), (method, operation["operationId"])


def test_removing_the_last_admin_is_a_409(api_client_for):
    """The workspace's state, not the request: DELETE of the only admin's membership."""
    from aicmo.models import Membership

    client = api_client_for(role="admin")
    me = Membership.objects.get(user=client.user, workspace=client.workspace)

    resp = client.delete(f"/api/v1/members/{me.pk}/")

    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    assert Membership.objects.filter(pk=me.pk).exists()
