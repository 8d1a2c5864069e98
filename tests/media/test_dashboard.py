"""Media dashboard pages: grid, upload endpoint, asset page actions, insights, file serving, isolation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media import services
from media.models import AssetStatus, MediaAsset, Suggestion
from tests.media.conftest import make_image, stored_files
from tests.media.test_validation import png_claiming


def _asset(workspace, seed=1, **kwargs):
    library = services.library_create(workspace=workspace, name=f"Lib {seed}")
    return services.asset_upload(
        library=library,
        file=SimpleUploadedFile("a.jpg", make_image(seed=seed)),
        request_renditions=False,
        **kwargs,
    ).asset


def test_index_grid_filters_and_query_count(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    library = services.library_create(workspace=client.workspace, name="Brand")
    for seed in range(20):
        services.asset_upload(
            library=library, file=SimpleUploadedFile("a.png", make_image(40, 30, "PNG", seed=seed)),
            title=f"Pic {seed}", tags=["blue" if seed % 2 else "red"], request_renditions=False,
        )  # fmt: skip
    with django_assert_max_num_queries(14):
        resp = client.get("/media/")
    assert resp.status_code == 200 and resp.content.count(b'class="card tile"') == 20
    assert b"upload-form" not in resp.content  # viewers get no upload zone
    resp = client.get("/media/?tag=blue&q=Pic")
    assert resp.content.count(b'class="card tile"') == 10
    assert client.get("/media/?kind=video").content.count(b'class="card tile"') == 0


def test_upload_endpoint_json_per_file(client_for, media_root):
    client = client_for("marketer")
    page = client.get("/media/")
    assert b"upload-form" in page.content and b"media/upload.js" in page.content
    data = make_image(300, 300)
    first = client.post("/media/upload/", {"file": SimpleUploadedFile("a.jpg", data), "tags": "x, y"},
                        HTTP_ACCEPT="application/json")  # fmt: skip
    assert first.status_code == 201 and first.json()["duplicate"] is False
    asset = MediaAsset.objects.get()
    assert sorted(t.name for t in asset.tags.all()) == ["x", "y"]
    dup = client.post(
        "/media/upload/", {"file": SimpleUploadedFile("b.jpg", data)}, HTTP_ACCEPT="application/json"
    )
    assert dup.status_code == 200 and dup.json()["duplicate"] is True and dup.json()["id"] == asset.pk
    files = stored_files(media_root)
    bomb = client.post("/media/upload/", {"file": SimpleUploadedFile("b.png", png_claiming(90_000, 90_000))},
                       HTTP_ACCEPT="application/json")  # fmt: skip
    assert bomb.status_code == 413 and bomb.json()["error"]["code"] == "decompression_bomb"
    assert stored_files(media_root) == files


def test_plain_multi_file_form_upload(client_for):
    client = client_for("marketer")
    resp = client.post(
        "/media/upload/",
        {
            "file": [
                SimpleUploadedFile("a.jpg", make_image(seed=1)),
                SimpleUploadedFile("b.jpg", b"\xff\xd8broken"),
            ]
        },
        follow=True,
    )
    assert resp.status_code == 200 and MediaAsset.objects.count() == 1
    text = resp.content.decode()
    assert "a.jpg uploaded" in text and "b.jpg:" in text


def test_viewer_cannot_upload_or_act(client_for):
    client = client_for("viewer")
    asset = _asset(client.workspace)
    assert (
        client.post("/media/upload/", {"file": SimpleUploadedFile("a.jpg", make_image(seed=9))}).status_code
        == 403
    )
    assert client.post(f"/media/assets/{asset.pk}/archive/").status_code == 403


def test_marketer_cannot_approve_reviewer_can(client_for, member_factory):
    client = client_for("marketer")
    asset = _asset(client.workspace)
    assert client.post(f"/media/assets/{asset.pk}/approve/", {"note": "ok"}).status_code == 403
    reviewer = member_factory(client.workspace, "reviewer")
    client.force_login(reviewer)
    resp = client.post(f"/media/assets/{asset.pk}/approve/", {"note": "ok"})
    assert resp.status_code == 302
    asset.refresh_from_db()
    assert asset.status == AssetStatus.APPROVED and asset.review_note == "ok"


def test_asset_page_and_edit(client_for, django_assert_max_num_queries):
    client = client_for("reviewer")
    asset = _asset(client.workspace)
    services.asset_record_performance(
        asset=asset, channel="x", date=dt.date(2026, 1, 2), impressions=5000, clicks=50
    )
    services.asset_attach(asset=asset, ref="publishing.content:3", channel="x", campaign="Launch")
    services.asset_compute_suggestions(asset=asset)
    with django_assert_max_num_queries(20):
        resp = client.get(f"/media/assets/{asset.pk}/")
    text = resp.content.decode()
    assert resp.status_code == 200
    for expected in ("Renditions", "Instagram portrait", "publishing.content:3", "Launch", "0.0100", "Missing alt text",
                     "Approve", asset.sha256):  # fmt: skip
        assert expected in text, expected
    resp = client.post(f"/media/assets/{asset.pk}/update/",
                       {"title": "Renamed", "alt_text": "Alt", "tags": "a,b", "focal_x": "0.25", "focal_y": "0.5"})  # fmt: skip
    assert resp.status_code == 302
    asset.refresh_from_db()
    assert (asset.title, asset.alt_text, asset.focal_x) == ("Renamed", "Alt", 0.25)
    resp = client.post(f"/media/assets/{asset.pk}/update/", {"focal_x": "7"}, follow=True)
    assert "focal point" in resp.content.decode()


def test_suggestion_dismiss_from_page(client_for):
    client = client_for("marketer")
    asset = _asset(client.workspace)
    suggestion = next(s for s in services.asset_compute_suggestions(asset=asset) if s.code == "missing_alt")
    assert client.post(f"/media/suggestions/{suggestion.pk}/dismiss/").status_code == 302
    assert Suggestion.objects.get(pk=suggestion.pk).status == "dismissed"
    assert client.post(f"/media/suggestions/{suggestion.pk}/act/").status_code == 404  # not actionable


def test_insights_page(client_for, django_assert_max_num_queries):
    client = client_for("viewer")
    assets = [_asset(client.workspace, seed=s) for s in range(4)]
    for asset, clicks in zip(assets, (5, 20, 25, 90), strict=True):
        services.asset_record_performance(asset=asset, channel="linkedin", date=dt.date(2026, 1, 1),
                                          impressions=3000, clicks=clicks)  # fmt: skip
    with django_assert_max_num_queries(20):
        resp = client.get("/media/insights/")
    text = resp.content.decode()
    assert resp.status_code == 200 and "linkedin" in text and "badge-ok" in text and "badge-bad" in text


def test_file_views_headers(client_for, media_redis):
    client = client_for("viewer")
    asset = _asset(client.workspace)
    original = client.get(f"/media/assets/{asset.pk}/file/")
    assert original.status_code == 200 and original["X-Content-Type-Options"] == "nosniff"
    thumb = client.get(f"/media/assets/{asset.pk}/renditions/thumbnail/")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    assert client.get(f"/media/assets/{asset.pk}/renditions/bogus/").status_code == 404


def test_text_asset_downloads_as_attachment(client_for):
    client = client_for("viewer")
    library = services.library_create(workspace=client.workspace, name="Docs")
    asset = services.asset_upload(
        library=library, file=SimpleUploadedFile("x.html", b"<b>hello</b> plain\n")
    ).asset
    resp = client.get(f"/media/assets/{asset.pk}/file/")
    assert resp["Content-Type"].startswith("text/plain") and resp["Content-Disposition"].startswith(
        "attachment"
    )
    assert resp["X-Content-Type-Options"] == "nosniff"


PAGES = [
    ("get", "/media/assets/{id}/"), ("get", "/media/assets/{id}/file/"), ("get", "/media/assets/{id}/renditions/og/"),
    ("post", "/media/assets/{id}/approve/"), ("post", "/media/assets/{id}/reject/"),
    ("post", "/media/assets/{id}/archive/"), ("post", "/media/assets/{id}/renditions/"),
    ("post", "/media/assets/{id}/update/"), ("post", "/media/assets/{id}/suggestions/"),
    ("post", "/media/suggestions/{sug}/dismiss/"), ("post", "/media/suggestions/{sug}/act/"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_other_workspace_pages_are_404(client_for, other_workspace, method, path):
    theirs = _asset(other_workspace)
    suggestion = services.asset_compute_suggestions(asset=theirs)[0]
    client = client_for("admin")
    resp = getattr(client, method)(
        path.format(id=theirs.pk, sug=suggestion.pk), {"note": "x", "title": "pwned"}
    )
    assert resp.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == AssetStatus.DRAFT and theirs.title != "pwned"


def test_other_workspace_assets_not_listed_and_library_not_usable(client_for, other_workspace):
    theirs = _asset(other_workspace)
    client = client_for("admin")
    assert b"card tile" not in client.get("/media/").content
    resp = client.post("/media/upload/", {"file": SimpleUploadedFile("a.jpg", make_image(seed=3)),
                                          "library": theirs.library_id}, HTTP_ACCEPT="application/json")  # fmt: skip
    assert resp.status_code == 404 and MediaAsset.objects.count() == 1


def test_insights_refresh_all_suggestions(client_for, django_capture_on_commit_callbacks, monkeypatch):
    from media import tasks

    monkeypatch.setattr(
        tasks.compute_suggestions_task, "delay", lambda job_id: services.suggestions_refresh(job_id=job_id)
    )
    client = client_for("marketer")
    _asset(client.workspace)
    assert b"Recompute all suggestions" in client.get("/media/insights/").content
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post("/media/suggestions/refresh/")
    assert resp.status_code == 302 and "/jobs/" in resp["Location"]
    assert Suggestion.objects.filter(code="missing_alt").exists()
    viewer = client_for("viewer")
    assert viewer.post("/media/suggestions/refresh/").status_code == 403
