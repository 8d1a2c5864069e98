"""Media admin: uploads through the service (SHA-256, dedupe, content checks), actions call services."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media import services
from media.models import AssetStatus, MediaAsset
from tests.media.conftest import make_image, stored_files
from tests.media.test_validation import png_claiming


@pytest.fixture
def staff_client(client, workspace, member_factory):
    def make(role):
        user = member_factory(workspace, role, is_staff=True)
        client.force_login(user)
        return client

    return make


def _add(client, workspace, library, data, name="a.jpg"):
    return client.post("/admin/media/mediaasset/add/", {
        "workspace": workspace.pk, "library": library.pk, "title": "T", "alt_text": "", "description": "",
        "category": "", "upload": SimpleUploadedFile(name, data),
    })  # fmt: skip


def test_admin_upload_hashes_and_dedupes(staff_client, workspace, library, media_root):
    client = staff_client("marketer")
    data = make_image(320, 240)
    resp = _add(client, workspace, library, data)
    assert resp.status_code == 302, resp.content[:2000]
    asset = MediaAsset.objects.get()
    assert asset.sha256 == hashlib.sha256(data).hexdigest() and asset.width == 320
    files = stored_files(media_root)
    resp = _add(client, workspace, library, data, name="again.jpg")
    assert resp.status_code == 302 and MediaAsset.objects.count() == 1 and stored_files(media_root) == files


def test_admin_rejects_bomb_without_storing(staff_client, workspace, library, media_root):
    client = staff_client("marketer")
    resp = _add(client, workspace, library, png_claiming(80_000, 80_000), name="b.png")
    assert resp.status_code == 200 and b"safety limit" in resp.content
    assert MediaAsset.objects.count() == 0 and stored_files(media_root) == []


def test_admin_approve_action_needs_reviewer(staff_client, workspace, library):
    asset = services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image())).asset
    action = {"action": "approve", "_selected_action": [asset.pk], "value": "ok"}
    staff_client("marketer").post("/admin/media/mediaasset/", action)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.DRAFT
    staff_client("reviewer").post("/admin/media/mediaasset/", action)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.APPROVED and asset.review_note == "ok"


def test_admin_tag_and_archive_actions(staff_client, library):
    asset = services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image())).asset
    client = staff_client("marketer")
    page = client.get(f"/admin/media/mediaasset/{asset.pk}/change/")
    assert page.status_code == 200 and b"/renditions/thumbnail/" in page.content
    client.post(
        "/admin/media/mediaasset/", {"action": "add_tag", "_selected_action": [asset.pk], "value": "promo"}
    )
    client.post(
        "/admin/media/mediaasset/", {"action": "archive", "_selected_action": [asset.pk], "value": ""}
    )
    asset.refresh_from_db()
    assert [t.name for t in asset.tags.all()] == ["promo"] and asset.status == AssetStatus.ARCHIVED


def test_admin_changelist_and_other_workspace(staff_client, other_workspace, django_assert_max_num_queries):
    theirs_lib = services.library_create(workspace=other_workspace, name="Theirs")
    theirs = services.asset_upload(
        library=theirs_lib, file=SimpleUploadedFile("a.jpg", make_image()), title="Globex secret plan"
    ).asset
    client = staff_client("admin")
    with django_assert_max_num_queries(20):
        resp = client.get("/admin/media/mediaasset/")
    assert resp.status_code == 200 and b"Globex secret plan" not in resp.content
    assert client.get(f"/admin/media/mediaasset/{theirs.pk}/change/").status_code in (302, 404)
