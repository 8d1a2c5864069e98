"""Custom-field definitions through services: create, rename (one UPDATE moving JSON keys), retype
(refused with count and examples, or converted and reported), delete (dependent segments marked broken);
the API and admin doors; audit events. JSON parts run on SQLite and PostgreSQL (tests/pgrun.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from aicmo.models import AuditEvent
from crm import services
from crm.models import Contact, CustomFieldDefinition, Segment
from crm.segments import segment_queryset
from tests.crm.factories import ContactFactory, CustomFieldFactory

BASE = "/api/v1/crm"


def rule(field, operator, value=None):
    return {"op": "and", "rules": [{"field": field, "operator": operator, "value": value}]}


def customs(ws):
    return dict(Contact.objects.for_workspace(ws).order_by("email").values_list("email", "custom"))


@pytest.fixture
def plan_field(workspace):
    field = services.custom_field_create(workspace=workspace, key="plan", label="Plan", type="text")
    for email, value in [("a@ex.com", "12"), ("b@ex.com", " 7 "), ("c@ex.com", "gold"), ("d@ex.com", "x1")]:
        ContactFactory(workspace=workspace, email=email, custom={"plan": value, "keep": True})
    ContactFactory(workspace=workspace, email="e@ex.com", custom={})
    return field


def test_create_validates_and_audits(workspace):
    with pytest.raises(ValidationError) as exc:
        services.custom_field_create(workspace=workspace, key="Not A Slug", label="", type="colour")
    assert set(exc.value.message_dict) == {"key", "label", "type"}
    with pytest.raises(ValidationError) as exc:
        services.custom_field_create(workspace=workspace, key="tier", label="Tier", type="choice")
    assert "choices" in exc.value.message_dict
    field = services.custom_field_create(
        workspace=workspace, key="tier", label="Tier", type="choice", choices=["a"]
    )
    assert AuditEvent.objects.filter(verb="crm.custom_field.created", target_id=str(field.pk)).exists()
    with pytest.raises(ValidationError):
        services.custom_field_create(workspace=workspace, key="tier", label="Again")


def test_retype_refused_with_count_and_examples(plan_field, workspace):
    before = customs(workspace)
    with pytest.raises(ValidationError) as exc:
        services.custom_field_update(definition=plan_field, type="number")
    message = exc.value.message_dict["type"][0]
    assert message.startswith("2 contact(s) hold values that are not a valid number")
    assert "'gold'" in message and "'x1'" in message
    assert customs(workspace) == before  # nothing half-written
    plan_field.refresh_from_db()
    assert plan_field.type == "text"


def test_retype_converts_with_flag_and_reports(plan_field, workspace):
    seg = services.segment_save(workspace=workspace, name="Gold", rules=rule("custom.plan", "contains", "o"))
    change = services.custom_field_update(definition=plan_field, type="number", convert=True)
    assert change.as_dict() == {
        "converted": 2,
        "cleared": 2,
        "examples": ["gold", "x1"],
        "renamed": 0,
        "broken_segments": ["Gold"],
    }
    assert customs(workspace) == {
        "a@ex.com": {"plan": 12, "keep": True},
        "b@ex.com": {"plan": 7, "keep": True},
        "c@ex.com": {"keep": True},
        "d@ex.com": {"keep": True},
        "e@ex.com": {},
    }
    seg.refresh_from_db()
    assert "changed from text to number" in seg.broken_reason
    assert segment_queryset(rule("custom.plan", "gt", 8), workspace).count() == 1
    event = AuditEvent.objects.get(verb="crm.custom_field.updated")
    assert event.changes["cleared"] == 2 and event.changes["before"]["type"] == "text"


def test_retype_number_to_text_rewrites_values(workspace):
    field = CustomFieldFactory(workspace=workspace, key="n", type="number")
    ContactFactory(workspace=workspace, email="a@ex.com", custom={"n": 5})
    change = services.custom_field_update(definition=field, type="text")
    assert change.converted == 1 and customs(workspace)["a@ex.com"] == {"n": "5"}


@pytest.mark.parametrize("value", [12, 2.5, "text", True, False])
def test_rename_moves_values_keeping_their_json_type(workspace, value):
    field = CustomFieldFactory(workspace=workspace, key="old", type="text")
    ContactFactory(workspace=workspace, email="a@ex.com", custom={"old": value, "other": 1})
    ContactFactory(workspace=workspace, email="b@ex.com", custom={"other": 2})
    seg = services.segment_save(workspace=workspace, name="S", rules=rule("custom.old", "not_empty"))
    change = services.custom_field_update(definition=field, key="new")
    assert change.renamed == 1
    assert customs(workspace) == {"a@ex.com": {"new": value, "other": 1}, "b@ex.com": {"other": 2}}
    seg.refresh_from_db()
    assert seg.rules["rules"][0]["field"] == "custom.new" and seg.broken_reason == ""
    assert segment_queryset(seg.rules, workspace).count() == 1


def test_rename_is_one_update_per_workspace(workspace, other_workspace, django_assert_max_num_queries):
    field = CustomFieldFactory(workspace=workspace, key="old", type="text")
    for i in range(30):
        ContactFactory(workspace=workspace, custom={"old": f"v{i}"})
    ContactFactory(workspace=other_workspace, custom={"old": "theirs"})
    with django_assert_max_num_queries(10):  # not one query per contact
        services.custom_field_update(definition=field, key="new")
    assert Contact.objects.for_workspace(workspace).filter(custom__has_key="new").count() == 30
    assert Contact.objects.for_workspace(other_workspace).get().custom == {"old": "theirs"}


def test_delete_lists_and_marks_segments_and_drops_values(workspace):
    field = CustomFieldFactory(workspace=workspace, key="budget", type="number")
    ContactFactory(workspace=workspace, email="a@ex.com", custom={"budget": 3, "x": 1})
    services.segment_save(workspace=workspace, name="Uses", rules=rule("custom.budget", "gt", 1))
    services.segment_save(workspace=workspace, name="Other", rules=rule("score", "gt", 1))
    report = services.custom_field_delete(definition=field)
    assert report == {"segments": ["Uses"], "values_removed": 1}
    assert customs(workspace) == {"a@ex.com": {"x": 1}}
    broken = dict(Segment.objects.values_list("name", "broken_reason"))
    assert broken["Other"] == "" and "was deleted" in broken["Uses"]
    assert AuditEvent.objects.filter(verb="crm.custom_field.deleted").count() == 1


def test_api_custom_field_lifecycle(api_client_for):
    client = api_client_for("marketer")
    resp = client.post(
        f"{BASE}/custom-fields/", {"key": "size", "label": "Size", "type": "text"}, format="json"
    )
    assert resp.status_code == 201
    pk = resp.json()["id"]
    ContactFactory(workspace=client.workspace, custom={"size": "big"})
    resp = client.patch(f"{BASE}/custom-fields/{pk}/", {"type": "number"}, format="json")
    assert resp.status_code == 409 and "1 contact(s)" in resp.json()["error"]["fields"]["type"][0]
    resp = client.patch(f"{BASE}/custom-fields/{pk}/", {"type": "number", "convert": True}, format="json")
    assert resp.status_code == 200 and resp.json()["change"]["cleared"] == 1
    resp = client.patch(f"{BASE}/custom-fields/{pk}/", {"key": "Bad Key"}, format="json")
    assert resp.status_code == 400
    resp = client.delete(f"{BASE}/custom-fields/{pk}/")
    assert resp.status_code == 200 and resp.json() == {"deleted": True, "segments": [], "values_removed": 0}
    verbs = set(AuditEvent.objects.filter(workspace=client.workspace).values_list("verb", flat=True))
    assert {"crm.custom_field.created", "crm.custom_field.updated", "crm.custom_field.deleted"} <= verbs


def test_api_custom_fields_of_another_workspace_are_404(api_client_for, other_workspace):
    theirs = CustomFieldFactory(workspace=other_workspace, key="x")
    client = api_client_for("marketer")
    assert (
        client.patch(f"{BASE}/custom-fields/{theirs.pk}/", {"label": "y"}, format="json").status_code == 404
    )
    assert client.delete(f"{BASE}/custom-fields/{theirs.pk}/").status_code == 404
    assert CustomFieldDefinition.objects.filter(pk=theirs.pk, label="X").exists()


def test_viewer_cannot_change_fields(api_client_for):
    client = api_client_for("viewer")
    resp = client.post(f"{BASE}/custom-fields/", {"key": "size", "label": "Size"}, format="json")
    assert resp.status_code == 403


def test_admin_add_and_change_go_through_services(staff_client, workspace):
    resp = staff_client.post(
        "/admin/crm/customfielddefinition/add/",
        {"workspace": workspace.pk, "key": "size", "label": "Size", "type": "text", "choices": "[]"},
    )
    assert resp.status_code == 302
    field = CustomFieldDefinition.objects.get(workspace=workspace, key="size")
    ContactFactory(workspace=workspace, custom={"size": "big"})
    data = {"workspace": workspace.pk, "key": "size", "label": "Size", "type": "number", "choices": "[]"}
    resp = staff_client.post(f"/admin/crm/customfielddefinition/{field.pk}/change/", data, follow=True)
    assert "1 contact(s) hold values" in resp.content.decode()
    field.refresh_from_db()
    assert field.type == "text"
    resp = staff_client.post(
        f"/admin/crm/customfielddefinition/{field.pk}/change/", {**data, "convert": "on"}, follow=True
    )
    field.refresh_from_db()
    assert field.type == "number"
    assert AuditEvent.objects.filter(verb="crm.custom_field.updated", actor__isnull=False).count() == 1


SAMPLES = [12, 2.5, "12", " 7 ", "abc", True, False, "yes", "2026-01-02", "pro"]
TYPES = [("text", []), ("number", []), ("date", []), ("bool", []), ("choice", ["pro", "12"])]


def _coerces(definition, value) -> tuple[bool, object]:
    from crm.normalize import _coerce_custom

    try:
        return True, _coerce_custom(definition, value)
    except ValueError:
        return False, None


@pytest.mark.parametrize(("source", "target"), [(s, t) for s in TYPES for t in TYPES if s != t])
def test_retype_matrix_matches_the_import_coercion(workspace, source, target):
    """Every type pair over mixed stored values: refused exactly when some value does not coerce the way
    the import would; with convert, each value becomes the import's coercion or is cleared; segments on the
    new type compile and count without a database error."""
    field = CustomFieldFactory(workspace=workspace, key="f", type=source[0], choices=source[1])
    for i, value in enumerate(SAMPLES):
        ContactFactory(workspace=workspace, email=f"c{i}@ex.com", custom={"f": value})
    probe = CustomFieldDefinition(key="f", type=target[0], choices=target[1])
    outcomes = [_coerces(probe, v) for v in SAMPLES]
    failing = sum(1 for ok, _ in outcomes if not ok)
    if failing:
        with pytest.raises(ValidationError, match=rf"{failing} contact\(s\) hold values"):
            services.custom_field_update(definition=field, type=target[0], choices=target[1])
    change = services.custom_field_update(definition=field, type=target[0], choices=target[1], convert=True)
    assert change.cleared == failing
    stored = customs(workspace)
    for i, (ok, coerced) in enumerate(outcomes):
        assert stored[f"c{i}@ex.com"] == ({"f": coerced} if ok else {})
    assert segment_queryset(rule("custom.f", "not_empty"), workspace).count() == len(SAMPLES) - failing
    if target[0] == "number":
        numbers = sum(1 for ok, v in outcomes if ok)
        assert segment_queryset(rule("custom.f", "gt", -1e9), workspace).count() == numbers


def test_rename_keeps_an_unfinished_import_mapped(workspace):
    import io

    from crm.importing import import_execute, import_stage, import_start

    field = CustomFieldFactory(workspace=workspace, key="old", type="number")
    run = import_stage(workspace=workspace, fh=io.BytesIO(b"email,Old\na@ex.com,3\n"), name="p.csv")
    import_start(run=run, mapping={"email": "email", "Old": "custom.old"}, enqueue=False)
    services.custom_field_update(definition=field, key="new")
    import_execute(run_id=run.pk)
    assert customs(workspace) == {"a@ex.com": {"new": 3}}


def test_relabel_is_audited_and_a_no_op_is_not(workspace):
    field = CustomFieldFactory(workspace=workspace, key="k", type="number")
    ContactFactory(workspace=workspace, custom={"k": 1})
    change = services.custom_field_update(definition=field, label="New label")
    assert change.as_dict() == {
        "converted": 0,
        "cleared": 0,
        "examples": [],
        "renamed": 0,
        "broken_segments": [],
    }
    services.custom_field_update(definition=field, label="New label")
    assert AuditEvent.objects.filter(verb="crm.custom_field.updated").count() == 1


def test_dashboard_field_page_uses_the_services(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    ws = client.workspace
    resp = client.post("/crm/fields/", {"key": "size", "label": "Size", "type": "text"})
    assert resp.status_code == 302
    field = CustomFieldDefinition.objects.get(workspace=ws, key="size")
    ContactFactory(workspace=ws, custom={"size": "big"})
    data = {"action": "update", "key": "size", "label": "Size", "type": "number", "choices": ""}
    body = client.post(f"/crm/fields/{field.pk}/", data, follow=True).content.decode()
    assert "1 contact(s) hold values" in body and "&#x27;big&#x27;" in body
    body = client.post(f"/crm/fields/{field.pk}/", {**data, "convert": "on"}, follow=True).content.decode()
    assert "&#x27;cleared&#x27;: 1" in body
    CustomFieldFactory.create_batch(20, workspace=ws)
    with django_assert_max_num_queries(8):
        assert client.get("/crm/fields/").status_code == 200
    body = client.post(f"/crm/fields/{field.pk}/", {"action": "delete"}, follow=True).content.decode()
    assert "Field size deleted" in body and not CustomFieldDefinition.objects.filter(pk=field.pk).exists()
    verbs = set(AuditEvent.objects.filter(workspace=ws, actor=client.user).values_list("verb", flat=True))
    assert verbs == {"crm.custom_field.created", "crm.custom_field.updated", "crm.custom_field.deleted"}


def test_dashboard_field_page_tenant_isolation_and_viewer(client_for, other_workspace):
    theirs = CustomFieldFactory(workspace=other_workspace, key="theirs")
    client = client_for("marketer")
    assert client.post(f"/crm/fields/{theirs.pk}/", {"action": "delete"}).status_code == 404
    assert "theirs" not in client.get("/crm/fields/").content.decode()
    viewer = client_for("viewer")
    assert viewer.get("/crm/fields/").status_code == 200
    assert viewer.post("/crm/fields/", {"key": "x", "label": "X"}).status_code == 403
    assert CustomFieldDefinition.objects.filter(pk=theirs.pk).exists()
