"""Dashboard inputs the bad-input sweep found answering 500: ids written in non-ASCII digits."""

from __future__ import annotations

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
