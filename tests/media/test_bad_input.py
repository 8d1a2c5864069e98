"""Id inputs the API fuzzer and the dashboard sweep found answering 500: non-ASCII digits, numbers beyond
any database integer, and numbers too long for int()."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media.models import MediaAsset


def test_index_ignores_a_library_id_that_is_not_ascii_digits(client_for):
    client = client_for(role="viewer")

    resp = client.get("/media/", {"library": "²"})

    assert resp.status_code == 200


def test_upload_with_a_non_ascii_digit_library_is_a_404_and_stores_nothing(client_for):
    client = client_for(role="marketer")

    resp = client.post("/media/upload/", {"library": "²", "file": SimpleUploadedFile("a.txt", b"hello\n")})

    assert resp.status_code == 404
    assert not MediaAsset.objects.exists()


@pytest.mark.parametrize("value", ["²", "abc", "99999999999999999999999", "9" * 5000, "-1"])
@pytest.mark.parametrize(
    ("path", "param"), [("/api/v1/media/assets/", "library"), ("/api/v1/media/assets/stats/", "library"),
                        ("/api/v1/media/suggestions/", "asset")]
)  # fmt: skip
def test_api_id_query_parameters_reject_junk_with_a_400(api_client_for, path, param, value):
    client = api_client_for(role="viewer")

    resp = client.get(path, {param: value})

    assert resp.status_code == 400
    assert param in resp.json()["error"]["fields"]


def test_index_ignores_a_library_id_beyond_any_database_integer(client_for):
    client = client_for(role="viewer")

    assert client.get("/media/", {"library": "99999999999999999999999"}).status_code == 200
    assert client.get("/media/", {"library": "9" * 5000}).status_code == 200


@pytest.mark.parametrize("param", ["q", "tag", "category"])
def test_api_text_filter_with_nul_is_a_400(api_client_for, param):
    client = api_client_for(role="viewer")

    resp = client.get("/api/v1/media/assets/", {param: "a\x00b"})

    assert resp.status_code == 400
    assert param in resp.json()["error"]["fields"]


def test_index_drops_nul_from_text_filters(client_for):
    """PostgreSQL refuses NUL in a query (DataError, a 500 there); the page filters without it."""
    client = client_for(role="viewer")

    assert client.get("/media/", {"q": "\x00", "tag": "a\x00", "category": "\x00b"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [("/api/v1/media/assets/performers/", "channel"), ("/api/v1/media/suggestions/", "status")],
)
def test_api_other_text_parameters_with_nul_are_a_400(api_client_for, path, param):
    client = api_client_for(role="viewer")

    resp = client.get(path, {param: "x\x00"})

    assert resp.status_code == 400
    assert param in resp.json()["error"]["fields"]


@pytest.mark.parametrize("body", [[], "force", {"force": "maybe"}])
def test_rendition_request_with_a_junk_body_is_a_400_and_starts_no_job(api_client_for, library, body):
    """request.data.get() on a JSON list body was a 500."""
    from aicmo.models import Job
    from media import services
    from tests.media.conftest import make_image

    client = api_client_for(role="marketer")
    asset = services.asset_upload(library=library, file=SimpleUploadedFile("a.jpg", make_image())).asset

    jobs_before = Job.objects.count()  # the upload queued its own renditions job

    resp = client.post(f"/api/v1/media/assets/{asset.pk}/renditions/", body, format="json")

    assert resp.status_code == 400
    assert Job.objects.count() == jobs_before
