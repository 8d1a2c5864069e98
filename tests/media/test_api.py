"""Media API: upload by content, duplicates, bombs, approvals by role, renditions, tenant isolation, query counts."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.models import Job
from media import services
from media.models import AssetStatus, MediaAsset, Suggestion
from tests.media.conftest import make_image, stored_files
from tests.media.test_validation import SVG_EVIL, png_claiming

API = "/api/v1/media"


def post_file(client, data: bytes, name="photo.jpg", **extra):
    return client.post(
        f"{API}/assets/",
        {"file": SimpleUploadedFile(name, data, content_type="image/png"), **extra},
        format="multipart",
    )


def test_upload_new_then_duplicate(api_client_for, media_root):
    client = api_client_for("marketer")
    data = make_image(500, 400)
    resp = post_file(client, data, title="Hero", tags="summer,hero", alt_text="A hero")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["duplicate"] is False and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (
        body["kind"] == "image" and body["mime_type"] == "image/jpeg"
    )  # by content, not the declared image/png
    assert (body["width"], body["height"], body["aspect_ratio"]) == (500, 400, 1.25)
    assert sorted(body["tags"]) == ["hero", "summer"] and body["status"] == "draft"
    files = stored_files(media_root)
    again = post_file(client, data, name="other-name.jpg")
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == body["id"]
    assert stored_files(media_root) == files and MediaAsset.objects.count() == 1


def test_bomb_is_a_clear_413_and_stores_nothing(api_client_for, media_root):
    client = api_client_for("marketer")
    resp = post_file(client, png_claiming(100_000, 100_000), name="bomb.png")
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "decompression_bomb"
    assert MediaAsset.objects.count() == 0 and stored_files(media_root) == []


def test_truncated_jpeg_is_400(api_client_for, media_root):
    client = api_client_for("marketer")
    data = make_image(800, 600, quality=95)
    resp = post_file(client, data[: len(data) // 2])
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "corrupt_file"
    assert stored_files(media_root) == []


def test_svg_upload_is_sanitized_and_served_as_attachment(api_client_for):
    client = api_client_for("marketer")
    resp = post_file(client, SVG_EVIL, name="logo.svg")
    assert resp.status_code == 201 and resp.json()["kind"] == "svg" and resp.json()["sanitized"] is True
    download = client.get(f"{API}/assets/{resp.json()['id']}/download/")
    content = b"".join(download.streaming_content)
    assert b"script" not in content and b"onload" not in content
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Disposition"].startswith("attachment")


def test_image_download_inline_with_nosniff(api_client_for):
    client = api_client_for("viewer")
    library = services.library_create(workspace=client.workspace, name="L")
    asset = services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image())).asset
    resp = client.get(f"{API}/assets/{asset.pk}/download/")
    assert resp.status_code == 200 and resp["Content-Type"] == "image/jpeg"
    assert resp["X-Content-Type-Options"] == "nosniff" and resp["Content-Disposition"].startswith("inline")


def test_viewer_cannot_upload(api_client_for):
    client = api_client_for("viewer")
    assert post_file(client, make_image()).status_code == 403


def test_marketer_cannot_approve_reviewer_can(api_client_for, workspace):
    marketer = api_client_for("marketer")
    asset_id = post_file(marketer, make_image()).json()["id"]
    resp = marketer.post(f"{API}/assets/{asset_id}/approve/", {"note": "me"})
    assert resp.status_code == 403
    reviewer = api_client_for("reviewer")
    resp = reviewer.post(f"{API}/assets/{asset_id}/reject/", {"note": ""})
    assert resp.status_code == 400
    resp = reviewer.post(f"{API}/assets/{asset_id}/approve/", {"note": "good"})
    assert (
        resp.status_code == 200
        and resp.json()["status"] == "approved"
        and resp.json()["review_note"] == "good"
    )
    resp = marketer.post(f"{API}/assets/{asset_id}/archive/")
    assert resp.status_code == 200 and resp.json()["status"] == AssetStatus.ARCHIVED
    assert reviewer.post(f"{API}/assets/{asset_id}/approve/").status_code == 409  # archived: not reviewable


def test_update_and_delete(api_client_for, media_root):
    client = api_client_for("marketer")
    asset_id = post_file(client, make_image()).json()["id"]
    resp = client.patch(
        f"{API}/assets/{asset_id}/", {"title": "New", "tags": ["a", "b"], "focal_x": 0.2}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["title"] == "New" and resp.json()["focal_x"] == 0.2
    assert client.patch(f"{API}/assets/{asset_id}/", {"focal_x": 2}, format="json").status_code == 400
    assert client.delete(f"{API}/assets/{asset_id}/").status_code == 204
    assert MediaAsset.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "suffix"), [("patch", ""), ("put", ""), ("post", "approve/"), ("post", "reject/")]
)
def test_only_an_upload_takes_a_form_body(api_client_for, media_root, method, suffix):
    """A malformed multipart body (no parts) read as "no fields" was a 200 no-op for an update and an
    approval without a note; a file travels only in an upload, every other write is JSON."""
    reviewer = api_client_for("reviewer")
    asset_id = post_file(reviewer, make_image()).json()["id"]
    url = f"{API}/assets/{asset_id}/{suffix}"
    send = getattr(reviewer, method)
    for body, content_type in (
        (b"--b\r\n[]--b--\r\n", "multipart/form-data; boundary=b"),
        (b"title=x", "application/x-www-form-urlencoded"),
    ):
        resp = send(url, body, content_type=content_type)
        assert resp.status_code == 415, (content_type, resp.content)
    asset = MediaAsset.objects.get(pk=asset_id)
    assert (asset.status, asset.title) == (AssetStatus.DRAFT, "photo")  # unchanged
    assert (
        reviewer.post(f"{API}/assets/", {"title": "x"}, format="json").status_code == 415
    )  # and the reverse


def test_renditions_list_and_rebuild_job(api_client_for, django_capture_on_commit_callbacks, monkeypatch):
    from media import tasks

    sent = []
    monkeypatch.setattr(tasks.build_renditions_task, "delay", lambda *a: sent.append(a))
    client = api_client_for("marketer")
    asset_id = post_file(client, make_image()).json()["id"]
    assert client.get(f"{API}/assets/{asset_id}/renditions/").json() == []
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"{API}/assets/{asset_id}/renditions/", {"force": True}, format="json")
    assert resp.status_code == 202 and resp.json()["kind"] == "media.renditions"
    assert sent[-1][0] == asset_id and sent[-1][1] == resp.json()["id"] and sent[-1][3] is True


def test_on_demand_rendition_endpoint(api_client_for, media_redis):
    client = api_client_for("viewer")
    library = services.library_create(workspace=client.workspace, name="L")
    asset = services.asset_upload(
        library=library, file=SimpleUploadedFile("a.jpg", make_image(1600, 900))
    ).asset
    resp = client.get(f"{API}/renditions/{asset.pk}/x/")
    assert resp.status_code == 200 and resp["Content-Type"] == "image/webp"
    listed = client.get(f"{API}/assets/{asset.pk}/renditions/").json()
    assert [(r["spec"], r["width"], r["height"]) for r in listed] == [("x", 1600, 900)]
    assert client.get(f"{API}/renditions/{asset.pk}/nope/").status_code == 404


def test_duplicates_stats_performers_and_suggestions(api_client_for):
    client = api_client_for("reviewer")
    library = services.library_create(workspace=client.workspace, name="L")
    assets = [
        services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image(seed=s))).asset
        for s in range(3)
    ]
    for asset, clicks in zip(assets, (5, 30, 100), strict=True):
        services.asset_record_performance(asset=asset, channel="x", date=dt.date(2026, 1, 1), impressions=2000,
                                          clicks=clicks)  # fmt: skip
    services.asset_attach(asset=assets[0], ref="publishing.content:1", channel="x")
    stats = client.get(f"{API}/assets/stats/").json()
    assert stats["total_assets"] == 3 and stats["by_kind"] == {"image": 3}
    assert stats["by_status"]["draft"] == 3 and stats["most_used"][0]["id"] == assets[0].pk
    assert stats["top_performers"][0]["asset_id"] == assets[2].pk
    perf = client.get(f"{API}/assets/performers/?channel=x").json()
    assert [r["asset_id"] for r in perf["high"]] == [assets[2].pk]
    assert [r["asset_id"] for r in perf["low"]] == [assets[0].pk]
    assert client.get(f"{API}/assets/duplicates/").status_code == 200
    assert client.get(f"{API}/assets/{assets[0].pk}/near-duplicates/").json() == []
    assert client.get(f"{API}/assets/{assets[0].pk}/usage/").json()[0]["ref"] == "publishing.content:1"
    assert client.get(f"{API}/assets/{assets[0].pk}/performance/").json()[0]["ctr"] == 0.0025
    services.library_compute_suggestions(library=library)
    listed = client.get(f"{API}/suggestions/?asset={assets[0].pk}").json()["results"]
    codes = {s["code"]: s for s in listed}
    assert "low_ctr" in codes and "missing_alt" in codes
    resp = client.post(f"{API}/suggestions/{codes['missing_alt']['id']}/dismiss/")
    assert resp.status_code == 200 and resp.json()["status"] == "dismissed"
    assert (
        client.post(f"{API}/suggestions/{codes['missing_alt']['id']}/act/").status_code == 409
    )  # dismissed: a state conflict


def test_suggestion_refresh_job(api_client_for, django_capture_on_commit_callbacks, monkeypatch):
    from media import tasks

    monkeypatch.setattr(
        tasks.compute_suggestions_task, "delay", lambda job_id: services.suggestions_refresh(job_id=job_id)
    )
    client = api_client_for("marketer")
    post_file(client, make_image())
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"{API}/suggestions/refresh/")
    assert resp.status_code == 202
    assert Job.objects.get(pk=resp.json()["id"]).status == "succeeded"
    assert Suggestion.objects.filter(code="missing_alt").exists()


def test_libraries_crud(api_client_for):
    client = api_client_for("marketer")
    resp = client.post(f"{API}/libraries/", {"name": "Campaigns"}, format="json")
    assert resp.status_code == 201
    assert client.post(f"{API}/libraries/", {"name": "Campaigns"}, format="json").status_code == 409
    resp = client.patch(
        f"{API}/libraries/{resp.json()['id']}/", {"description": "All of them"}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["description"] == "All of them"
    assert api_client_for("viewer").post(f"{API}/libraries/", {"name": "X"}, format="json").status_code == 403


def test_list_filters_and_query_count(api_client_for, django_assert_max_num_queries):
    client = api_client_for("viewer")
    library = services.library_create(workspace=client.workspace, name="L")
    for seed in range(12):
        services.asset_upload(
            library=library, file=SimpleUploadedFile("a.png", make_image(60, 40, "PNG", seed=seed)),
            tags=["odd" if seed % 2 else "even"], request_renditions=False,
        )  # fmt: skip
    with django_assert_max_num_queries(8):
        resp = client.get(f"{API}/assets/?page_size=50")
    assert resp.status_code == 200 and len(resp.json()["results"]) == 12
    assert len(client.get(f"{API}/assets/?tag=odd").json()["results"]) == 6
    assert client.get(f"{API}/assets/?kind=video").json()["results"] == []
    services.library_compute_suggestions(library=library)
    with django_assert_max_num_queries(7):
        resp = client.get(f"{API}/suggestions/?page_size=100")
    assert resp.status_code == 200 and len(resp.json()["results"]) >= 12
    with django_assert_max_num_queries(7):
        assert client.get(f"{API}/libraries/").status_code == 200


ENDPOINTS = [
    ("get", "assets/{id}/"), ("patch", "assets/{id}/"), ("delete", "assets/{id}/"),
    ("post", "assets/{id}/approve/"), ("post", "assets/{id}/reject/"), ("post", "assets/{id}/archive/"),
    ("get", "assets/{id}/renditions/"), ("post", "assets/{id}/renditions/"), ("get", "assets/{id}/near-duplicates/"),
    ("get", "assets/{id}/usage/"), ("get", "assets/{id}/performance/"), ("get", "assets/{id}/download/"),
    ("get", "renditions/{id}/thumbnail/"), ("get", "libraries/{lib}/"), ("patch", "libraries/{lib}/"),
    ("get", "suggestions/{sug}/"), ("post", "suggestions/{sug}/dismiss/"), ("post", "suggestions/{sug}/act/"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_other_workspace_ids_are_404(api_client_for, other_workspace, method, path):
    library = services.library_create(workspace=other_workspace, name="Theirs")
    asset = services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image())).asset
    suggestion = services.asset_compute_suggestions(asset=asset)[0]
    client = api_client_for("admin")
    url = f"{API}/" + path.format(id=asset.pk, lib=library.pk, sug=suggestion.pk)
    body = None if method == "get" else {"note": "x"}  # on a GET it would be an (unknown) query string
    resp = getattr(client, method)(url, body, format="json")
    assert resp.status_code == 404, (url, resp.status_code)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.DRAFT


def test_lists_do_not_leak_other_workspaces(api_client_for, other_workspace):
    library = services.library_create(workspace=other_workspace, name="Theirs")
    services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image()))
    client = api_client_for("admin")
    assert client.get(f"{API}/assets/").json()["results"] == []
    assert client.get(f"{API}/libraries/").json()["results"] == []
    assert client.get(f"{API}/assets/stats/").json()["total_assets"] == 0
    assert client.get(f"{API}/assets/duplicates/").json() == []
    # uploading into another workspace's library id is refused: it names no row of this workspace
    resp = post_file(client, make_image(seed=4), library=library.pk)
    assert resp.status_code == 404 and "library" in resp.json()["error"]["fields"]
