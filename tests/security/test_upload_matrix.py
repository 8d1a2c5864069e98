"""Hostile uploads through the media API: every one a clean 4xx with an error code and nothing stored, never
a 500; hostile file names on a valid picture are stored under a safe name chosen from the content."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media.models import MediaAsset
from tests.media.conftest import make_image, stored_files
from tests.media.test_validation import png_claiming

API = "/api/v1/media/assets/"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def post(client, data: bytes, name: str):
    file = SimpleUploadedFile(name, data, content_type="image/png")
    return client.post(API, {"file": file}, format="multipart")


HOSTILE = {
    "empty": (b"", "photo.png"),
    "truncated png": (make_image(300, 200, "PNG")[:400], "photo.png"),
    "truncated jpeg": (make_image(300, 200)[:700], "photo.jpg"),
    "html with a png signature": (PNG_SIGNATURE + b"<html><script>alert(1)</script></html>", "x.png"),
    "gif/javascript polyglot": (b"GIF89a/*\x00\x00*/=alert(1);//" + b"\x00" * 64, "x.gif"),
    "executable named .jpg": (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 4, "photo.jpg"),
    "decompression bomb": (png_claiming(100_000, 100_000), "bomb.png"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_upload_is_a_clean_4xx_and_stores_nothing(case, api_client_for, media_root):
    data, name = HOSTILE[case]
    resp = post(api_client_for("marketer"), data, name)
    assert 400 <= resp.status_code < 500, (case, resp.status_code, resp.content[:300])
    assert resp.json()["error"]["code"], resp.content[:300]
    assert MediaAsset.objects.count() == 0 and stored_files(media_root) == []


def test_html_is_kept_only_as_plain_text_never_as_html(api_client_for, media_root):
    """Text files are allowed (kind "other"); markup is typed by content as text/plain, never text/html."""
    resp = post(api_client_for("marketer"), b"<!doctype html><script>alert(1)</script>", "photo.jpg.html")
    assert resp.status_code == 201, resp.content[:300]
    asset = MediaAsset.objects.get()
    assert (asset.kind, asset.mime_type) == ("other", "text/plain")
    assert not asset.file.name.endswith((".html", ".htm", ".jpg")) and not asset.filename.endswith(".html")


def test_oversize_upload_is_a_413_and_stores_nothing(api_client_for, media_root, settings):
    data = make_image(600, 400, quality=95)
    settings.MEDIA_MAX_BYTES = {
        kind: len(data) - 1 for kind in ("image", "video", "audio", "document", "other")
    }
    resp = post(api_client_for("marketer"), data, "big.jpg")
    assert resp.status_code in {400, 413}, resp.content[:300]
    assert MediaAsset.objects.count() == 0 and stored_files(media_root) == []


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.jpg",
        "..\\..\\windows\\win.ini.jpg",
        "/abs/path/photo.jpg",
        "pho\x00to.jpg",
        "a" * 300 + ".jpg",
        "photo.php.jpg",
        "photo.jpg.html",
        "\u202egpj.exe",
    ],
)
def test_hostile_names_on_a_valid_picture_are_stored_safely(name, api_client_for, media_root):
    resp = post(api_client_for("marketer"), make_image(64, 48, seed=len(name)), name)
    assert resp.status_code == 201, resp.content[:300]
    asset = MediaAsset.objects.get()
    stored = asset.file.name
    assert ".." not in stored and "\\" not in stored and "\x00" not in stored and not stored.startswith("/")
    assert stored.endswith(".jpg") and asset.filename.endswith(".jpg")  # extension from the content
    assert "/" not in asset.filename and "\\" not in asset.filename and "\x00" not in asset.filename
    assert len(asset.filename) <= 255 and "\x00" not in asset.original_filename
    files = stored_files(media_root)
    assert files and all(media_root in f.parents for f in files)
