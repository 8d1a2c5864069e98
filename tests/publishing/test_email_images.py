"""Email images are served as media's ``email`` rendition: JPEG when opaque, PNG with transparency, GIF when
animated, never WebP/AVIF, at most 1200 px wide and never upscaled."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from django.test import Client
from PIL import Image

from aicmo.models import Role
from media import renditions as rd
from media import services as media_services
from media.models import Rendition
from publishing.services.content import email_render
from tests.media.conftest import make_image, upload

from .conftest import make_content

pytestmark = pytest.mark.django_db


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (1600, 400), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def transparent_png(width=800, height=600, *, opaque=False) -> bytes:
    img = Image.open(io.BytesIO(make_image(width, height, "PNG"))).convert("RGBA")
    if not opaque:
        img.putalpha(Image.linear_gradient("L").resize(img.size))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def palette_gif_with_transparency() -> bytes:
    img = Image.new("P", (300, 200), 0)
    img.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    img.paste(1, (50, 50, 250, 150))
    out = io.BytesIO()
    img.save(out, "GIF", transparency=0)
    return out.getvalue()


@pytest.mark.parametrize(
    ("source", "fmt", "size"),
    [
        (make_image(2400, 1600, "JPEG"), "JPEG", (1200, 800)),
        (make_image(640, 480, "WEBP"), "JPEG", (640, 480)),  # WebP in, no WebP out; never upscaled
        (make_image(1300, 5000, "PNG"), "JPEG", (936, 3600)),  # tall: height capped too
        (transparent_png(), "PNG", (800, 600)),
        (transparent_png(2000, 1000, opaque=True), "JPEG", (1200, 600)),  # alpha channel, all opaque
        (palette_gif_with_transparency(), "PNG", (300, 200)),
        (animated_gif(), "GIF", (1200, 300)),
    ],
)
def test_email_spec_picks_a_format_every_client_shows(source, fmt, size):
    data, width, height, out_fmt = rd.render(io.BytesIO(source), rd.EMAIL)
    decoded = Image.open(io.BytesIO(data))
    assert (out_fmt, decoded.format, (width, height), decoded.size) == (fmt, fmt, size, size)
    assert width <= 1200
    if fmt == "GIF":
        assert decoded.n_frames == 2


def test_every_email_rendition_is_a_mail_safe_format_at_most_1200_wide():
    """Property over modes and sizes: the format is always JPEG/PNG/GIF and the width ≤ 1200."""
    for mode, fmt in (
        ("RGB", "JPEG"),
        ("L", "PNG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("P", "GIF"),
        ("RGB", "WEBP"),
    ):
        for width in (1, 599, 1200, 1201, 3000):
            img = Image.new(mode, (width, 40))
            out = io.BytesIO()
            img.save(out, fmt)
            _, w, _, out_fmt = rd.render(io.BytesIO(out.getvalue()), rd.EMAIL)
            assert out_fmt in ("JPEG", "PNG", "GIF") and w == min(width, 1200), (mode, fmt, width)


@pytest.fixture
def approved(workspace, member_factory, settings, tmp_path, redis_client):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    library = media_services.library_get_default(workspace=workspace)
    reviewer = member_factory(workspace, Role.REVIEWER)

    def build(data: bytes, name: str):
        asset = media_services.asset_upload(
            library=library, file=upload(data, name), request_renditions=False, compute_suggestions=False
        ).asset
        return media_services.asset_approve(asset=asset, by=reviewer)

    return build


def image_path(workspace, asset, settings) -> str:
    content = make_content(workspace, html=f'<p>Hi</p><img src="asset:{asset.pk}" alt="x">')
    html = email_render(content.versions.get(), {}, unsubscribe_url="https://u.example/").html
    url = unescape(re.search(r'<img src="([^"]+)"', html).group(1))
    return url[len(settings.PUBLIC_BASE_URL) :]


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (make_image(2400, 1600, "WEBP"), "wide.webp", "image/jpeg"),
        (transparent_png(), "logo.png", "image/png"),
    ],
)
def test_image_url_serves_the_email_rendition(workspace, approved, settings, data, name, content_type):
    asset = approved(data, name)
    path = image_path(workspace, asset, settings)
    response = Client().get(path)
    assert response.status_code == 200 and response["Content-Type"] == content_type
    served = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert served.width == min(1200, Image.open(io.BytesIO(data)).width)
    assert Rendition.objects.filter(asset=asset, spec="email").count() == 1
    assert Client().get(path).status_code == 200  # served again from the stored rendition
    assert Rendition.objects.filter(asset=asset, spec="email").count() == 1


def test_saving_content_requests_the_email_rendition(
    workspace, approved, settings, django_capture_on_commit_callbacks
):
    from aicmo.models import Job

    asset = approved(make_image(800, 600, "JPEG"), "a.jpg")
    make_content(workspace, html=f'<img src="asset:{asset.pk}" alt="x">')
    job = Job.objects.get(kind="media.renditions")
    assert job.params == {"asset_id": asset.pk, "specs": ["email"], "force": False}
