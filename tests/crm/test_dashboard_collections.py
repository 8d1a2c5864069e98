"""Static list and saved segment management: rename, duplicate, delete (refused while something outside crm
uses it, through `crm.usage`), tenant isolation, viewer read-only, query counts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from aicmo.models import AuditEvent
from crm import services, usage
from crm.models import ContactList, ListMembership, Segment
from tests.crm.factories import ContactFactory, ContactListFactory, SegmentFactory

USES: dict[tuple[str, int], list[str]] = {}


def segment_users(segment):
    return USES.get(("segment", segment.pk), [])


def list_users(contact_list):
    return USES.get(("list", contact_list.pk), [])


@pytest.fixture
def campaign_audiences(settings):
    """What a campaign app names in settings: the segments and lists its audiences use (here a dict)."""
    settings.CRM_USAGE_PROVIDERS = {
        "segment": [f"{__name__}.segment_users"],
        "list": [f"{__name__}.list_users"],
    }
    USES.clear()
    yield USES
    USES.clear()


@pytest.mark.parametrize("kind", ["list", "segment"])
def test_rename_duplicate_delete(client_for, kind, django_assert_max_num_queries):
    client = client_for("marketer")
    contacts = ContactFactory.create_batch(3, workspace=client.workspace)
    if kind == "list":
        obj = ContactListFactory(workspace=client.workspace, name="Fair")
        services.list_add_contacts(contact_list=obj, contact_ids=[c.pk for c in contacts])
        url, model = f"/crm/lists/{obj.pk}/", ContactList
    else:
        obj = SegmentFactory(workspace=client.workspace, name="Fair")
        url, model = f"/crm/segments/{obj.pk}/manage/", Segment
    with django_assert_max_num_queries(8):
        page = client.get(url).content.decode()
    assert "nothing outside the CRM" in page and 'value="delete"' in page
    client.post(url, {"action": "rename", "name": "  Fair 2026 "})
    obj.refresh_from_db()
    assert obj.name == "Fair 2026"
    resp = client.post(url, {"action": "duplicate", "name": "Fair copy"})
    copy = model.objects.get(name="Fair copy")
    assert resp.status_code == 302 and resp["Location"] != url and copy.workspace == client.workspace
    if kind == "list":
        assert set(copy.memberships.values_list("contact_id", flat=True)) == {c.pk for c in contacts}
    else:
        assert copy.rules == obj.rules
    clash = client.post(url, {"action": "duplicate", "name": "Fair copy"}, follow=True).content.decode()
    assert "already exists" in clash and model.objects.count() == 2
    blank = client.post(url, {"action": "rename", "name": "   "}, follow=True).content.decode()
    assert f"Give the {kind} a name" in blank
    resp = client.post(url, {"action": "delete"})
    assert resp.status_code == 302 and not model.objects.filter(pk=obj.pk).exists()
    assert AuditEvent.objects.filter(verb=f"crm.{kind}.deleted").exists()
    if kind == "list":
        assert ListMembership.objects.count() == 3  # the copy's members; the contacts stay


@pytest.mark.parametrize("kind", ["list", "segment"])
def test_in_use_cannot_be_deleted_and_says_by_which(client_for, campaign_audiences, kind):
    client = client_for("marketer")
    if kind == "list":
        obj = ContactListFactory(workspace=client.workspace, name="Audience")
        url, model = f"/crm/lists/{obj.pk}/", ContactList
    else:
        obj = SegmentFactory(workspace=client.workspace, name="Audience")
        url, model = f"/crm/segments/{obj.pk}/manage/", Segment
    campaign_audiences[(kind, obj.pk)] = ["campaign “Spring sale”", "campaign “Autumn”"]
    page = client.get(url).content.decode()
    assert "campaign “Autumn”, campaign “Spring sale”" in page and 'value="delete"' not in page
    resp = client.post(url, {"action": "delete"}, follow=True).content.decode()
    assert "is used by campaign “Autumn”, campaign “Spring sale”; it cannot be deleted" in resp
    assert model.objects.filter(pk=obj.pk).exists()
    # The services refuse too, whoever calls them (admin, API, tasks).
    delete = (
        (lambda: services.list_delete(contact_list=obj))
        if kind == "list"
        else (lambda: services.segment_delete(segment=obj))
    )
    with pytest.raises(ValidationError, match="Spring sale"):
        delete()
    campaign_audiences.clear()
    client.post(url, {"action": "delete"})
    assert not model.objects.filter(pk=obj.pk).exists()


@pytest.mark.django_db
def test_a_campaign_audience_blocks_deleting_its_segment_and_list(workspace):
    """The real provider: publishing names the campaigns whose audience (or exclusions) use it."""
    from tests.publishing.conftest import make_campaign

    campaign = make_campaign(workspace, 2, name="Spring sale")
    contact_list = ContactList.objects.get(pk=campaign.audience["lists"][0])
    assert usage.list_dependents(contact_list) == ["campaign “Spring sale”"]
    with pytest.raises(ValidationError, match="Spring sale"):
        services.list_delete(contact_list=contact_list)


def test_viewer_reads_but_cannot_change(client_for):
    client = client_for("viewer")
    lst = ContactListFactory(workspace=client.workspace)
    seg = SegmentFactory(workspace=client.workspace)
    for url in (f"/crm/lists/{lst.pk}/", f"/crm/segments/{seg.pk}/manage/"):
        page = client.get(url)
        assert page.status_code == 200 and 'value="rename"' not in page.content.decode()
        for action in ("rename", "duplicate", "delete"):
            assert client.post(url, {"action": action, "name": "x"}).status_code == 403
    assert ContactList.objects.count() == 1 and Segment.objects.count() == 1


def test_other_workspaces_lists_and_segments_are_404(client_for, other_workspace):
    client = client_for("admin")
    lst = ContactListFactory(workspace=other_workspace, name="Their list")
    seg = SegmentFactory(workspace=other_workspace, name="Their segment")
    for url in (f"/crm/lists/{lst.pk}/", f"/crm/segments/{seg.pk}/manage/"):
        assert client.get(url).status_code == 404
        for action in ("rename", "duplicate", "delete"):
            assert client.post(url, {"action": action, "name": "mine"}).status_code == 404
    assert ContactList.objects.get(pk=lst.pk).name == "Their list"
    assert Segment.objects.get(pk=seg.pk).name == "Their segment" and Segment.objects.count() == 1
    assert "Their list" not in client.get("/crm/lists/").content.decode()
