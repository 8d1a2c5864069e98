"""Libraries and asset deletion on the dashboard: create / rename / archive / restore, upload into the library
being viewed (and the same default library as the API), delete with usage shown, roles and isolation."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.models import AuditEvent
from media import services
from media.models import MediaAsset, MediaLibrary
from tests.media.conftest import make_image, stored_files


def _upload(library, seed=1, **kw):
    return services.asset_upload(
        library=library, file=SimpleUploadedFile("a.png", make_image(40, 30, "PNG", seed=seed)),
        request_renditions=False, compute_suggestions=False, **kw,
    ).asset  # fmt: skip


def _selected_upload_library(html: str) -> str:
    select = re.search(r'<select id="upload-library" name="library">(.*?)</select>', html, re.S).group(1)
    return re.search(r'<option value="([^"]*)"[^>]* selected>', select).group(1)


def test_create_library_then_upload_into_it(client_for):
    client = client_for("marketer")
    resp = client.post("/media/libraries/", {"name": "  Spring launch ", "description": "Q2 visuals"})
    library = MediaLibrary.objects.get(workspace=client.workspace, name="Spring launch")
    assert resp.status_code == 302 and resp["Location"] == f"/media/?library={library.pk}"
    assert library.description == "Q2 visuals"
    page = client.get(resp["Location"]).content.decode()
    assert "Media: Spring launch" in page and _selected_upload_library(page) == str(library.pk)

    resp = client.post(
        "/media/upload/", {"library": library.pk, "file": SimpleUploadedFile("a.jpg", make_image())}
    )
    assert resp.status_code == 302 and resp["Location"] == f"/media/?library={library.pk}"
    asset = MediaAsset.objects.get()
    assert asset.library == library
    grid = client.get(f"/media/?library={library.pk}").content.decode()
    assert f'href="/media/assets/{asset.pk}/"' in grid
    assert AuditEvent.objects.filter(verb="media.library.created", target_id=str(library.pk)).exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the library a name."),
        ("   ", "Give the library a name."),
        ("\x00", "Give the library a name."),
        ("x" * 121, "At most 120 characters."),
        ("Taken", "already exists"),
    ],  # fmt: skip
)
def test_bad_library_names_are_form_errors(client_for, name, message):
    client = client_for("marketer")
    services.library_create(workspace=client.workspace, name="Taken")
    resp = client.post("/media/libraries/", {"name": name})
    assert resp.status_code == 400
    assert message in resp.content.decode().split('class="errorlist"', 1)[1]
    assert MediaLibrary.objects.count() == 1


def test_rename_and_describe_and_name_clash(client_for):
    client = client_for("marketer")
    library = services.library_create(workspace=client.workspace, name="Old")
    services.library_create(workspace=client.workspace, name="Other")
    resp = client.post(f"/media/libraries/{library.pk}/", {"name": "New", "description": "About"})
    assert resp.status_code == 302
    library.refresh_from_db()
    assert (library.name, library.description) == ("New", "About")
    resp = client.post(f"/media/libraries/{library.pk}/", {"name": "Other", "description": ""})
    assert resp.status_code == 400 and "already exists" in resp.content.decode()
    library.refresh_from_db()
    assert library.name == "New"


def test_archive_explains_keeps_assets_and_refuses_uploads(client_for):
    client = client_for("marketer")
    library = services.library_create(workspace=client.workspace, name="Autumn")
    asset = _upload(library)
    services.asset_record_usage(asset=asset, ref="publishing.content:7", channel="email")
    page = client.get(f"/media/libraries/{library.pk}/archive/").content.decode()
    assert "Its 1 asset stay exactly as they are" in page and "the 1 used in content keep working" in page
    assert MediaLibrary.objects.get(pk=library.pk).archived_at is None  # GET only asks

    assert client.post(f"/media/libraries/{library.pk}/archive/").status_code == 302
    library.refresh_from_db()
    asset.refresh_from_db()
    assert library.archived_at is not None and asset.status == "draft" and asset.library_id == library.pk
    index = client.get("/media/").content.decode()
    assert (
        f'<option value="{library.pk}"' not in index.split('id="upload-library"', 1)[1].split("</select>")[0]
    )
    assert "archived" in client.get("/media/libraries/").content.decode().lower()
    assert "uploads go elsewhere" in client.get(f"/media/?library={library.pk}").content.decode()
    resp = client.post("/media/upload/", {"library": library.pk, "file": SimpleUploadedFile("b.png", make_image(seed=9))},
                       HTTP_ACCEPT="application/json")  # fmt: skip
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "library_archived"
    with pytest.raises(ValidationError):
        services.asset_update(asset=_upload(services.library_get_default(workspace=client.workspace), seed=3),
                              library=library)  # fmt: skip

    assert client.post(f"/media/libraries/{library.pk}/archive/", {"restore": "1"}).status_code == 302
    library.refresh_from_db()
    assert library.archived_at is None


def test_default_library_cannot_be_archived(client_for):
    client = client_for("marketer")
    default = services.library_get_default(workspace=client.workspace)
    resp = client.post(f"/media/libraries/{default.pk}/archive/", follow=True)
    assert "cannot be archived" in resp.content.decode()
    default.refresh_from_db()
    assert default.archived_at is None


def test_dashboard_and_api_use_the_same_default_library(client_for, api_client_for):
    client = client_for("marketer")
    services.library_create(workspace=client.workspace, name="Aardvark")  # sorts before "Main library"
    page = client.get("/media/").content.decode()
    assert "Main library (created on first upload)" in page and _selected_upload_library(page) == ""
    client.post("/media/upload/", {"file": SimpleUploadedFile("a.png", make_image(seed=1))})
    default = MediaLibrary.objects.get(workspace=client.workspace, name=MediaLibrary.DEFAULT_NAME)
    assert MediaAsset.objects.get().library == default
    assert _selected_upload_library(client.get("/media/").content.decode()) == str(default.pk)
    api = api_client_for("marketer")
    resp = api.post("/api/v1/media/assets/", {"file": SimpleUploadedFile("b.png", make_image(seed=2))},
                    format="multipart")  # fmt: skip
    assert resp.status_code == 201, resp.content
    assert MediaAsset.objects.get(pk=resp.json()["id"]).library == default


def test_delete_shows_usage_then_deletes(client_for, media_root, django_capture_on_commit_callbacks):
    client = client_for("marketer")
    asset = _upload(services.library_create(workspace=client.workspace, name="L"))
    services.asset_record_usage(asset=asset, ref="publishing.content:42", channel="email", campaign="Spring")
    assert "Delete…" in client.get(f"/media/assets/{asset.pk}/").content.decode()
    page = client.get(f"/media/assets/{asset.pk}/delete/").content.decode()
    assert "Used in 1 place." in page and "publishing.content:42" in page and "Spring" in page
    assert MediaAsset.objects.filter(pk=asset.pk).exists()
    assert stored_files(media_root)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"/media/assets/{asset.pk}/delete/")
    assert resp.status_code == 302 and resp["Location"] == f"/media/?library={asset.library_id}"
    assert not MediaAsset.objects.filter(pk=asset.pk).exists()
    assert not stored_files(media_root)


def test_delete_page_of_an_unused_asset(client_for):
    client = client_for("marketer")
    asset = _upload(services.library_create(workspace=client.workspace, name="L"))
    assert "Not used in any content." in client.get(f"/media/assets/{asset.pk}/delete/").content.decode()


def test_viewers_read_but_cannot_change(client_for):
    client = client_for("viewer")
    library = services.library_create(workspace=client.workspace, name="L")
    asset = _upload(library)
    for url in ("/media/libraries/", f"/media/libraries/{library.pk}/", f"/media/libraries/{library.pk}/archive/",
                f"/media/assets/{asset.pk}/delete/"):  # fmt: skip
        page = client.get(url)
        assert page.status_code == 200, url
        assert 'method="post"' not in page.content.decode().split("<main", 1)[1], url
        assert client.post(url, {"name": "X"}).status_code == 403, url
    library.refresh_from_db()
    assert library.name == "L" and library.archived_at is None and MediaLibrary.objects.count() == 1
    assert MediaAsset.objects.filter(pk=asset.pk).exists()


def test_another_workspaces_library_and_asset_are_404(client_for, other_workspace):
    client = client_for("admin")
    library = services.library_create(workspace=other_workspace, name="Globex")
    asset = _upload(library)
    for url in (f"/media/libraries/{library.pk}/", f"/media/libraries/{library.pk}/archive/",
                f"/media/assets/{asset.pk}/delete/"):  # fmt: skip
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"name": "Mine"}).status_code == 404, url
    assert "Globex" not in client.get("/media/libraries/").content.decode()
    resp = client.post(
        "/media/upload/", {"library": library.pk, "file": SimpleUploadedFile("a.png", make_image(seed=5))}
    )
    assert resp.status_code == 404
    library.refresh_from_db()
    assert library.name == "Globex" and library.archived_at is None
    assert MediaAsset.objects.filter(pk=asset.pk).exists() and MediaAsset.objects.count() == 1


def test_libraries_page_query_count(client_for, django_assert_max_num_queries):
    client = client_for("marketer")
    for i in range(15):
        _upload(services.library_create(workspace=client.workspace, name=f"L{i}"), seed=i)
    with django_assert_max_num_queries(8):
        page = client.get("/media/libraries/")
    assert page.status_code == 200 and page.content.decode().count("data-library=") == 15
