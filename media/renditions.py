"""Channel specs and the pure rendering step (source bytes → rendition bytes). No database, no storage."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, features


@dataclass(frozen=True)
class Spec:
    name: str
    label: str
    width: int
    height: int
    crop: bool  # True: exact size, cropped around the focal point; False: fit inside, never upscaled


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("thumbnail", "Thumbnail", 320, 320, crop=False),
        Spec("instagram_square", "Instagram square", 1080, 1080, crop=True),
        Spec("instagram_portrait", "Instagram portrait", 1080, 1350, crop=True),
        Spec("linkedin", "LinkedIn", 1200, 627, crop=True),
        Spec("x", "X", 1600, 900, crop=True),
        Spec("og", "Open Graph", 1200, 630, crop=True),
    )
}
# Built on request only (suggestion "create optimized rendition"): same framing, modern format, capped size.
OPTIMIZED = Spec("optimized", "Optimized", 2560, 2560, crop=False)
ALL_SPECS: dict[str, Spec] = {**SPECS, OPTIMIZED.name: OPTIMIZED}
CHANNEL_SPECS = [name for name in SPECS if name != "thumbnail"]

SPEC_VERSION = 1


def output_format() -> str:
    """WEBP by default; AVIF when configured (MEDIA_RENDITION_FORMAT=AVIF) and this Pillow can encode it."""
    wanted = str(getattr(settings, "MEDIA_RENDITION_FORMAT", "WEBP")).upper()
    if wanted == "AVIF" and features.check("avif"):
        return "AVIF"
    return "WEBP"


def source_key(*, sha256: str, focal_x: float, focal_y: float, spec: Spec, fmt: str) -> str:
    """What a rendition was built from; a different key means the rendition is stale."""
    return f"v{SPEC_VERSION}:{sha256[:16]}:{focal_x:.3f}:{focal_y:.3f}:{spec.width}x{spec.height}:{fmt}"


def _focal_crop(img: Image.Image, width: int, height: int, fx: float, fy: float) -> Image.Image:
    """Cover width×height and keep the window centred on the focal point (clamped to the edges).

    The crop is expressed as a source box so only the kept region is resampled.
    """
    scale = max(width / img.width, height / img.height)
    box_w, box_h = width / scale, height / scale
    left = min(max(0.0, fx * img.width - box_w / 2), img.width - box_w)
    top = min(max(0.0, fy * img.height - box_h / 2), img.height - box_h)
    return img.resize((width, height), Image.Resampling.LANCZOS, box=(left, top, left + box_w, top + box_h),
                      reducing_gap=3.0)  # fmt: skip


def prepare(source, specs: list[Spec]) -> Image.Image:
    """Decode once for a set of specs: JPEGs at the smallest DCT scale covering the largest of them,
    EXIF orientation applied, converted to RGB/RGBA. Pillow's decompression-bomb limit stays in force."""
    img = Image.open(source)
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    orientation = img.getexif().get(0x0112, 1)
    if img.format == "JPEG":
        w, h = img.size
        need_w = need_h = 1
        for spec in specs:
            tw, th = (spec.height, spec.width) if orientation in (5, 6, 7, 8) else (spec.width, spec.height)
            scale = max(tw / w, th / h) if spec.crop else min(tw / w, th / h)
            need_w, need_h = max(need_w, math.ceil(w * scale)), max(need_h, math.ceil(h * scale))
        img.draft("RGB", (need_w, need_h))
    if orientation in range(2, 9):
        img = ImageOps.exif_transpose(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    wanted = "RGBA" if has_alpha else "RGB"
    if img.mode != wanted:
        img = img.convert(wanted)
    img.load()
    return img


def render_prepared(img: Image.Image, spec: Spec, *, focal_x: float = 0.5, focal_y: float = 0.5,
                    fmt: str | None = None):  # fmt: skip
    """Render one spec from a prepared image without modifying it. Returns (bytes, width, height, format).
    Only the ICC profile is carried over: no EXIF, GPS or XMP is written."""
    fmt = fmt or output_format()
    if spec.crop:
        out = _focal_crop(img, spec.width, spec.height, focal_x, focal_y)
    else:
        scale = min(spec.width / img.width, spec.height / img.height, 1.0)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        out = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) if scale < 1 else img.copy()
    icc = img.info.get("icc_profile")
    out.info = {}
    buffer = io.BytesIO()
    options: dict = {"quality": 82}
    if fmt == "WEBP":
        options["method"] = 4
    elif fmt == "AVIF":
        options.update(quality=60, speed=8)
    if icc:
        options["icc_profile"] = icc
    out.save(buffer, fmt, **options)
    return buffer.getvalue(), out.width, out.height, fmt


def render(source, spec: Spec, *, focal_x: float = 0.5, focal_y: float = 0.5, fmt: str | None = None):
    """Render one spec from a file-like source. Returns (bytes, width, height, format)."""
    return render_prepared(prepare(source, [spec]), spec, focal_x=focal_x, focal_y=focal_y, fmt=fmt)


def reencode_size(source, *, fmt: str = "WEBP", max_side: int = 2560) -> int:
    """Bytes of the file after actually re-encoding it (used to measure a suggestion's saving)."""
    data, _, _, _ = render(source, Spec("measure", "", max_side, max_side, crop=False), fmt=fmt)
    return len(data)
