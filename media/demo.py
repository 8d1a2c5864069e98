"""Demo media: a library of generated images (gradients and shapes), an SVG, a brief, usage and performance.

Idempotent: the same bytes are generated each run, so uploads dedupe by SHA-256 and rows are upserted.
"""

from __future__ import annotations

import datetime as dt
import io
import random

from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFilter

from . import services
from .models import AssetStatus, MediaLibrary

PALETTES = [
    ((255, 94, 77), (255, 195, 113)),
    ((34, 193, 195), (253, 187, 45)),
    ((63, 94, 251), (252, 70, 107)),
    ((15, 32, 39), (44, 83, 100)),
    ((131, 58, 180), (253, 29, 29)),
    ((0, 176, 155), (150, 201, 61)),
]

IMAGES = [
    # title, size, palette, seed, format, tags, category
    ("Spring launch hero", (1600, 900), 0, 1, "JPEG", ["launch", "hero"], "campaign"),
    ("Product square", (1080, 1080), 1, 2, "JPEG", ["product"], "product"),
    ("LinkedIn banner", (1200, 627), 2, 3, "JPEG", ["b2b"], "social"),
    ("Team offsite photo", (1400, 1000), 3, 4, "PNG", ["team"], "brand"),
    ("Webinar promo", (1080, 1350), 4, 5, "JPEG", ["webinar"], "campaign"),
    ("Small badge", (240, 240), 5, 6, "PNG", ["icon"], "brand"),
]

SVG_LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40"><rect width="120" height="40" rx="8" '
    b'fill="#3f5efb"/><text x="60" y="26" font-size="18" text-anchor="middle" fill="#fff">AICMO</text></svg>'
)
BRIEF = b"Spring launch creative brief\n\nAudience: marketing ops leads. Tone: confident, practical.\n"


def render_image(size: tuple[int, int], palette: int, seed: int, *, noisy: bool = False) -> Image.Image:
    rnd = random.Random(seed)
    width, height = size
    start, end = PALETTES[palette]
    gradient = Image.linear_gradient("L").resize(size)
    img = Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), gradient)
    draw = ImageDraw.Draw(img)
    for _ in range(8):
        x, y = rnd.randrange(width), rnd.randrange(height)
        r = rnd.randrange(min(size) // 12, min(size) // 4)
        colour = tuple(rnd.randrange(256) for _ in range(3))
        shape = draw.ellipse if rnd.random() < 0.6 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=colour)
    if noisy:  # photographic texture, so the PNG is a realistic "convert me" candidate
        noise = Image.frombytes("RGB", size, rnd.randbytes(width * height * 3))
        img = Image.blend(img, noise, 0.25).filter(ImageFilter.SMOOTH)
    return img


def _encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    return out.getvalue()


def _upload(library, data: bytes, name: str, by, **kwargs):
    return services.asset_upload(
        library=library,
        file=ContentFile(data, name=name),
        by=by,
        filename=name,
        request_renditions=False,
        compute_suggestions=False,
        **kwargs,
    ).asset


def seed(workspace, *, users: dict) -> None:
    marketer, reviewer = users.get("marketer"), users.get("reviewer")
    library = MediaLibrary.objects.for_workspace(workspace).filter(name="Brand library").first()
    if library is None:
        library = services.library_create(workspace=workspace, name="Brand library",
                                          description="Generated demo creatives.", by=marketer)  # fmt: skip
    assets = []
    for title, size, palette, seed_, fmt, tags, category in IMAGES:
        img = render_image(size, palette, seed_, noisy=fmt == "PNG")
        ext = "jpg" if fmt == "JPEG" else "png"
        alt = "" if title == "Team offsite photo" else f"{title} illustration"
        assets.append(_upload(library, _encode(img, fmt), f"{title.lower().replace(' ', '-')}.{ext}", marketer,
                              title=title, tags=tags, category=category, alt_text=alt))  # fmt: skip
    # A near duplicate: the hero, resized and recompressed.
    hero = render_image(IMAGES[0][1], IMAGES[0][2], IMAGES[0][3]).resize((1280, 720))
    _upload(library, _encode(hero, "JPEG"), "spring-launch-hero-small.jpg", marketer, title="Spring launch hero (small)",
            tags=["launch"], category="campaign", alt_text="Spring launch hero illustration")  # fmt: skip
    _upload(
        library,
        SVG_LOGO,
        "logo.svg",
        marketer,
        title="Logo",
        tags=["brand"],
        category="brand",
        alt_text="AICMO",
    )
    _upload(library, BRIEF, "brief.txt", marketer, title="Spring launch brief", category="campaign")

    for asset in assets[:4]:
        if asset.status == AssetStatus.DRAFT and reviewer is not None:
            services.asset_approve(asset=asset, by=reviewer, note="On brand.")
    if assets[0].status == AssetStatus.APPROVED:
        services.asset_publish(asset=assets[0], by=marketer)
    if assets[5].status == AssetStatus.DRAFT and reviewer is not None:
        services.asset_reject(asset=assets[5], by=reviewer, note="Too small for any channel.")

    rnd = random.Random(42)
    today = timezone.localdate()
    ctr_by_asset = [0.031, 0.018, 0.022, 0.006, 0.015]
    channels = ["linkedin", "x", "instagram"]
    for index, asset in enumerate(assets[:5]):
        services.asset_record_usage(asset=asset, ref=f"demo.content:{index + 1}", channel=channels[index % 3],
                                    campaign="Spring launch")  # fmt: skip
        for channel in channels:
            for day in range(14):
                impressions = rnd.randint(400, 1600)
                clicks = round(impressions * ctr_by_asset[index] * rnd.uniform(0.8, 1.2))
                services.asset_record_performance(
                    asset=asset, channel=channel, date=today - dt.timedelta(days=day), impressions=impressions,
                    clicks=clicks, engagements=clicks * 3, conversions=clicks // 8,
                )  # fmt: skip
    services.library_compute_suggestions(library=library)
