"""Upload inspection: type by content, bombs, truncation, SVG sanitizing, size limits, streaming hash."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from PIL import Image

from media.models import AssetKind
from media.validation import (
    ACCEPTED_MEDIA_TYPES,
    UploadRejected,
    inspect_upload,
    pdf_page_count,
    sanitize_svg,
    sha256_of,
)
from tests.core.contract_hooks_text import asset_files
from tests.media.conftest import make_image, upload


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height (a decompression bomb's calling card)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_jpeg_detected_by_content_not_name():
    data = make_image(300, 200)
    result = inspect_upload(upload(data, name="notes.txt", content_type="text/plain"))
    assert result.kind == AssetKind.IMAGE
    assert result.mime_type == "image/jpeg" and result.extension == ".jpg"
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size_bytes == len(data)
    assert result.metadata["width"] == 300 and result.metadata["height"] == 200
    assert result.metadata["aspect_ratio"] == 1.5
    assert result.metadata["color_mode"] == "RGB"
    assert len(result.fingerprint.phash) == 16


def test_streaming_sha256_matches_hashlib_over_many_chunks():
    data = bytes(range(256)) * 20_000  # ~5 MB, several chunks
    digest, size = sha256_of(io.BytesIO(data))
    assert digest == hashlib.sha256(data).hexdigest() and size == len(data)


def test_decompression_bomb_rejected_with_413():
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(png_claiming(100_000, 100_000), name="bomb.png"))
    assert exc.value.code == "decompression_bomb" and exc.value.http_status == 413
    assert Image.MAX_IMAGE_PIXELS and Image.MAX_IMAGE_PIXELS > 0  # the limit was never disabled


def test_bomb_between_one_and_two_times_the_limit_is_also_refused():
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(png_claiming(side, side), name="bomb.png"))
    assert exc.value.code == "decompression_bomb"


def test_truncated_jpeg_rejected():
    data = make_image(800, 600, quality=95)
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(data[: len(data) // 2]))
    assert exc.value.code == "corrupt_file" and exc.value.http_status == 400


def test_truncated_png_rejected():
    data = make_image(400, 300, "PNG")
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(data[: len(data) - 200], name="x.png"))
    assert exc.value.code == "corrupt_file"


def test_unknown_binary_refused_415():
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 4, name="photo.jpg"))
    assert exc.value.code == "unsupported_type" and exc.value.http_status == 415


def test_tiff_not_on_allowlist():
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "TIFF")
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(out.getvalue(), name="x.tiff"))
    assert exc.value.code == "unsupported_type"


def test_size_limit_per_kind(settings):
    settings.MEDIA_MAX_BYTES = {AssetKind.IMAGE: 1000}
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(make_image(400, 400)))
    assert exc.value.code == "too_large" and exc.value.http_status == 413


def test_exif_orientation_swaps_reported_dimensions():
    img = Image.new("RGB", (400, 200), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    result = inspect_upload(upload(out.getvalue()))
    assert (result.metadata["width"], result.metadata["height"]) == (200, 400)
    assert result.metadata["exif_orientation_applied"] is True


def test_gif_and_alpha_png():
    frames = [Image.new("RGB", (50, 50), c) for c in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    gif = inspect_upload(upload(out.getvalue(), name="a.gif"))
    assert gif.kind == AssetKind.GIF and gif.metadata["frame_count"] == 3
    png = inspect_upload(upload(make_image(64, 64, "PNG", mode="RGBA"), name="a.png"))
    assert png.kind == AssetKind.IMAGE and png.metadata["has_alpha"] is True


def test_pdf_page_count_and_truncation():
    pdf = (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n4 0 obj << /Type /Page /Parent 2 0 R >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )
    result = inspect_upload(upload(pdf, name="deck.bin"))
    assert result.kind == AssetKind.DOCUMENT and result.mime_type == "application/pdf"
    assert result.metadata["page_count"] == 2
    assert pdf_page_count(io.BytesIO(pdf)) == 2
    with pytest.raises(UploadRejected):
        inspect_upload(upload(pdf[:-8], name="deck.pdf"))


def test_wav_duration_measured():
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000 * 2)
    result = inspect_upload(upload(out.getvalue(), name="a.mp3"))
    assert result.kind == AssetKind.AUDIO and result.metadata["duration_seconds"] == 2.0


def test_mp4_duration_from_mvhd():
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body) + 8) + kind + body

    mvhd = box(b"mvhd", b"\x00\x00\x00\x00" + b"\x00" * 8 + struct.pack(">II", 1000, 12_500) + b"\x00" * 80)
    data = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2") + box(b"moov", mvhd) + box(b"mdat", b"\x00" * 32)
    result = inspect_upload(upload(data, name="clip.mp4"))
    assert result.kind == AssetKind.VIDEO and result.metadata["duration_seconds"] == 12.5


def test_plain_text_is_other():
    result = inspect_upload(upload("Brand guidelines — v2\n".encode(), name="a.exe"))
    assert result.kind == AssetKind.OTHER and result.mime_type == "text/plain"


SVG_EVIL = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="50"
     onload="alert(1)">
  <script>alert('x')</script>
  <rect width="100" height="50" fill="red" onclick="steal()"/>
  <image xlink:href="https://evil.example/track.png" width="10" height="10"/>
  <use href="https://evil.example/sprite.svg#a"/>
  <use href="#local"/>
  <foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>
  <a href="javascript:alert(1)"><text x="1" y="10">click</text></a>
  <circle cx="5" cy="5" r="4" style="fill:url(https://evil.example/x)"/>
</svg>"""


def test_svg_sanitized_strictly():
    result = inspect_upload(upload(SVG_EVIL, name="logo.svg"))
    assert result.kind == AssetKind.SVG and result.sanitized is True
    clean = result.content.decode()
    for bad in ("script", "onload", "onclick", "evil.example", "foreignObject", "javascript", "<a", "<image"):
        assert bad not in clean, bad
    assert '<rect width="100" height="50" fill="red"' in clean
    assert 'href="#local"' in clean
    assert result.sha256 == hashlib.sha256(result.content).hexdigest()
    assert (result.metadata["width"], result.metadata["height"]) == (100, 50)


def test_svg_with_entities_or_dtd_refused():
    billion = b"""<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>"""
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(billion, name="x.svg"))
    assert exc.value.code == "unsafe_svg"


def test_clean_svg_stored_unchanged():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 12"><path d="M0 0h24v12z"/></svg>'
    result = inspect_upload(upload(svg, name="icon.svg"))
    assert result.sanitized is False and result.content is None
    assert (result.metadata["width"], result.metadata["height"]) == (24, 12)


def test_sanitize_rejects_non_svg_xml():
    with pytest.raises(UploadRejected):
        sanitize_svg(b"<html><svg/></html>")


def test_pixel_cap_is_checked_from_the_header():
    """9,400 × 9,400 (under Pillow's limit, ~930 MB to process before) is over our 52 MP cap: 413, nothing decoded."""
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(png_claiming(9400, 9400), name="huge.png"))
    assert exc.value.code == "decompression_bomb" and exc.value.http_status == 413
    assert "52,000,000 pixels for PNG" in exc.value.message


def test_pixel_cap_follows_each_formats_decode_cost(settings):
    """WebP costs ~18 bytes per decoded pixel, PNG ~4.5: under one memory budget WebP gets the lower cap."""
    settings.MEDIA_DECODE_BUDGET_BYTES = 18 * 10_000  # WEBP: 10,000 px; PNG: 40,000 px
    webp = make_image(150, 150, "WEBP")
    with pytest.raises(UploadRejected) as exc:
        inspect_upload(upload(webp, name="a.webp"))
    assert exc.value.http_status == 413 and "10,000 pixels for WEBP" in exc.value.message
    assert inspect_upload(upload(make_image(150, 150, "PNG"), name="a.png")).metadata["width"] == 150
    with pytest.raises(UploadRejected):
        inspect_upload(upload(make_image(250, 200, "PNG"), name="b.png"))


def test_the_published_media_types_are_every_type_an_upload_can_be_stored_as(api_client_for):
    """ACCEPTED_MEDIA_TYPES is what the upload's schema publishes for its file part: it names every media
    type this module can answer, and nothing else."""
    import re
    from pathlib import Path

    from media import validation

    source = Path(validation.__file__).read_text()
    literals = set(re.findall(r'"((?:image|video|audio|application|text)/[a-z0-9.+-]+)"', source))
    assert set(validation.ACCEPTED_MEDIA_TYPES) == literals
    schema = api_client_for("viewer").get("/api/schema/?format=json").json()
    body = schema["paths"]["/api/v1/media/assets/"]["post"]["requestBody"]["content"]
    published = body["multipart/form-data"]["encoding"]["file"]["contentType"]
    assert published.split(", ") == list(validation.ACCEPTED_MEDIA_TYPES)


@given(asset_files())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_file_the_contract_run_sends_as_valid_is_accepted(drawn):
    body, _ = drawn
    inspection = inspect_upload(io.BytesIO(body))
    assert inspection.mime_type in ACCEPTED_MEDIA_TYPES
