"""Dangerous upload names: the served name takes its extension from the detected type (OWASP upload rules)."""

from __future__ import annotations

import string
import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given, settings
from hypothesis import strategies as st

from media.filenames import MAX_NAME_CHARS, escape_original, safe_filename
from media.models import MediaAsset
from tests.media.conftest import make_image, stored_files
from tests.media.test_validation import SVG_EVIL


def test_shell_jpg_php_is_stored_and_served_as_jpg_via_api(api_client_for, media_root):
    client = api_client_for("marketer")
    resp = client.post(
        "/api/v1/media/assets/",
        {"file": SimpleUploadedFile("shell.jpg.php", make_image(64, 64), content_type="application/x-php")},
        format="multipart",
    )
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["filename"] == "shell.jpg" and body["original_filename"] == "shell.jpg.php"
    assert body["title"] == "shell"
    [stored] = stored_files(media_root)
    assert stored.suffix == ".jpg" and "php" not in stored.name
    download = client.get(body["download_url"])
    assert download["Content-Disposition"] == 'inline; filename="shell.jpg"'


def test_dashboard_upload_serves_detected_extension(client_for):
    client = client_for("marketer")
    name = "..\\..\\evil\x00\u202egpj.svg.html"
    resp = client.post(
        "/media/upload/", {"file": SimpleUploadedFile(name, SVG_EVIL)}, HTTP_ACCEPT="application/json"
    )
    assert resp.status_code == 201, resp.content
    asset = MediaAsset.objects.get()
    assert asset.filename == "evilgpj.svg"
    assert asset.original_filename.endswith("gpj.svg.html") and "\x00" not in asset.original_filename
    download = client.get(f"/media/assets/{asset.pk}/file/")
    assert download["Content-Disposition"] == 'attachment; filename="evilgpj.svg"'


def test_service_keeps_the_client_name_only_escaped(library):
    from media.services import asset_upload

    raw = "in\x00voice\u202egpj.exe"
    asset = asset_upload(
        library=library, file=SimpleUploadedFile("x", make_image(32, 32)), filename=raw
    ).asset
    assert asset.original_filename == "in\\u0000voice\\u202egpj.exe"
    assert asset.filename == "invoicegpj.jpg" and asset.title == "invoicegpj"


@pytest.mark.parametrize(
    ("original", "ext", "served"),
    [
        ("shell.jpg.php", ".jpg", "shell.jpg"),
        ("shell.php.jpg", ".jpg", "shell.jpg"),
        ("photo.PNG", ".jpg", "photo.jpg"),
        ("../../etc/passwd", ".txt", "passwd.txt"),
        ("C:\\Users\\me\\Holiday Pic.jpeg", ".jpg", "Holiday Pic.jpg"),
        ("line\nbreak\r\t.gif", ".gif", "linebreak.gif"),
        ("résumé.pdf", ".pdf", "résumé.pdf"),
        ("re\u0301sume\u0301.pdf", ".pdf", "résumé.pdf"),  # NFD → NFC
        (".htaccess", ".txt", "htaccess.txt"),
        ("", ".png", "upload.png"),
        ('a<b>c:"d"|e?f*.png', ".png", "a_b_c_d_e_f.png"),
        ("x" * 400 + ".jpg", ".jpg", "x" * MAX_NAME_CHARS + ".jpg"),
    ],
)
def test_safe_filename_cases(original, ext, served):
    assert safe_filename(original, ext) == served


EXTENSIONS = [".jpg", ".png", ".webp", ".gif", ".svg", ".pdf", ".mp4", ".txt"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600), st.sampled_from(EXTENSIONS))
def test_safe_filename_property(original, ext):
    name = safe_filename(original, ext)
    stem = name.removesuffix(ext)
    assert name.endswith(ext) and stem
    assert "." not in stem  # exactly one extension, the detected one
    assert not set(stem) & set('/\\<>:"|?*;%')
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name)
    assert len(stem) <= MAX_NAME_CHARS and stem[0] not in " -_"
    assert unicodedata.is_normalized("NFC", name)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_escape_original_is_inert(original):
    escaped = escape_original(original)
    assert len(escaped) <= 255
    assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in escaped)
    if all(ch in string.ascii_letters + string.digits + ". -_" for ch in original):
        assert escaped == original[:255]
