"""Media fixtures: storage in tmp_path, generated images (never files from the repository)."""

from __future__ import annotations

import io
import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def make_image(
    width: int = 640, height: int = 480, fmt: str = "JPEG", *, seed: int = 1, mode: str = "RGB", **save
) -> bytes:
    """A deterministic picture: gradient background plus a few shapes chosen by `seed`."""
    rnd = random.Random(seed)
    img = Image.linear_gradient("L").resize((width, height)).convert(mode)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        x1, y1 = x0 + rnd.randrange(20, max(21, width // 2)), y0 + rnd.randrange(20, max(21, height // 2))
        colour = tuple(rnd.randrange(256) for _ in range(len(mode)))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


def upload(data: bytes, name: str = "picture.jpg", content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def library(workspace):
    from media.services import library_create

    return library_create(workspace=workspace, name="Brand")


@pytest.fixture
def reviewer(workspace, member_factory):
    return member_factory(workspace, "reviewer")


@pytest.fixture
def marketer(workspace, member_factory):
    return member_factory(workspace, "marketer")


@pytest.fixture
def media_redis(redis_client):
    """A real, empty Redis with settings.REDIS_URL pointing at it (rendition locks live there)."""
    return redis_client
