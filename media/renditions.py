"""Channel specs and the pure rendering step (source bytes → rendition bytes). No database, no storage."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, features

from . import imaging


@dataclass(frozen=True)
class Spec:
    name: str
    label: str
    width: int
    height: int
    crop: bool  # True: exact size, cropped around the focal point; False: fit inside, never upscaled
    formats: str = ""  # "": the configured modern format (output_format); "email": see EMAIL_FORMATS


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
# Built on request for email images: formats every mail client shows (Outlook shows no WebP/AVIF), at most
# 1200 px wide (twice a 600 px email column, for high-density screens).
EMAIL = Spec("email", "Email", 1200, 3600, crop=False, formats="email")
# The email spec's format is chosen per source: JPEG when opaque, PNG when any pixel may be transparent,
# GIF for an animation (the one animated format every mail client plays or shows the first frame of).
EMAIL_FORMATS = "JPEG|PNG|GIF"
ALL_SPECS: dict[str, Spec] = {**SPECS, OPTIMIZED.name: OPTIMIZED, EMAIL.name: EMAIL}
CHANNEL_SPECS = [name for name in SPECS if name != "thumbnail"]

SPEC_VERSION = 2  # 2: colour-managed sRGB, all transparency forms, animations kept
# Frames × pixels an animation may be decoded at for rendering (RGBA: 4 bytes each → 160 MB).
ANIMATION_PIXEL_BUDGET = 40_000_000


def output_format(spec: Spec | None = None) -> str:
    """WEBP by default; AVIF when configured (MEDIA_RENDITION_FORMAT=AVIF) and this Pillow can encode it.
    For an email spec: ``EMAIL_FORMATS`` (the concrete format is picked from the source when rendering)."""
    if spec is not None and spec.formats == "email":
        return EMAIL_FORMATS
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


@dataclass
class Prepared:
    """A decoded source ready to render: one display frame for a still, every frame for an animation."""

    frames: list[Image.Image]
    durations: list[int]
    loop: int = 0

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1

    @property
    def width(self) -> int:
        return self.frames[0].width

    @property
    def height(self) -> int:
        return self.frames[0].height


def prepare(source, specs: list[Spec]) -> Prepared:
    """Decode once for a set of specs through `imaging.to_display` (8-bit sRGB, transparency kept, EXIF
    orientation applied), shrunk in the source mode to the smallest size covering the largest spec.
    Animations keep every frame. Raises ValueError for an image over the pixel cap or an animation over
    `ANIMATION_PIXEL_BUDGET`; Pillow's errors (OSError, DecompressionBombError) pass through."""
    img = Image.open(source)
    if imaging.over_pixel_cap(img):
        raise ValueError(f"The image has more than {imaging.max_pixels(img.format):,} pixels.")
    w, h = img.size
    if imaging.orientation(img) in (5, 6, 7, 8):
        w, h = h, w
    need_w = need_h = 1
    for spec in specs:
        cw, ch = imaging.cover_size((w, h), (spec.width, spec.height), spec.crop)
        need_w, need_h = max(need_w, cw), max(need_h, ch)
    if not imaging.is_animated(img):
        return Prepared([imaging.to_display(img, min_size=(need_w, need_h))], [0])
    if img.n_frames * need_w * need_h > ANIMATION_PIXEL_BUDGET:
        raise ValueError(
            f"The animation has {img.n_frames} frames: too many to render at {need_w}×{need_h} "
            f"(budget {ANIMATION_PIXEL_BUDGET:,} pixels)."
        )
    frames, durations = [], []
    for frame, duration in imaging.frames(img, min_size=(need_w, need_h)):
        frames.append(frame)
        durations.append(duration)
    return Prepared(frames, durations, loop=int(img.info.get("loop", 0) or 0))


def _resize(img: Image.Image, spec: Spec, focal_x: float, focal_y: float) -> Image.Image:
    if spec.crop:
        return _focal_crop(img, spec.width, spec.height, focal_x, focal_y)
    scale = min(spec.width / img.width, spec.height / img.height, 1.0)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) if scale < 1 else img.copy()


def render_prepared(prepared: Prepared, spec: Spec, *, focal_x: float = 0.5, focal_y: float = 0.5,
                    fmt: str | None = None):  # fmt: skip
    """Render one spec from a prepared source without modifying it. Returns (bytes, width, height, format).
    Output is sRGB without an ICC profile (the sRGB default), alpha kept, an animation stays an animation;
    no EXIF, GPS or XMP is written."""
    fmt = fmt or output_format(spec)
    outs = [_resize(frame, spec, focal_x, focal_y) for frame in prepared.frames]
    if prepared.animated and any(out.mode == "RGBA" for out in outs):
        outs = [out.convert("RGBA") for out in outs]  # one mode for every frame of the animation
    if fmt == EMAIL_FORMATS:
        fmt = _email_format(prepared, outs)
    buffer = io.BytesIO()
    options: dict = {"quality": 82}
    if fmt == "JPEG":
        outs = [out.convert("RGB") for out in outs]
        options.update(optimize=True, progressive=True)
    elif fmt == "PNG":
        options = {"optimize": True}
    elif fmt == "GIF":
        options = {}
    elif fmt == "WEBP":
        options["method"] = 4
    elif fmt == "AVIF":
        options.update(quality=60, speed=8)
    if prepared.animated:
        options.update(save_all=True, append_images=outs[1:], duration=prepared.durations, loop=prepared.loop)
        if fmt == "WEBP":
            options["background"] = (0, 0, 0, 0)
    outs[0].save(buffer, fmt, **options)
    return buffer.getvalue(), outs[0].width, outs[0].height, fmt


def _email_format(prepared: Prepared, outs: list[Image.Image]) -> str:
    if prepared.animated:
        return "GIF"
    alpha = outs[0].getchannel("A") if outs[0].mode in ("RGBA", "LA") else None
    return "PNG" if alpha is not None and alpha.getextrema()[0] < 255 else "JPEG"


def render(source, spec: Spec, *, focal_x: float = 0.5, focal_y: float = 0.5, fmt: str | None = None):
    """Render one spec from a file-like source. Returns (bytes, width, height, format)."""
    return render_prepared(prepare(source, [spec]), spec, focal_x=focal_x, focal_y=focal_y, fmt=fmt)


def reencode_size(source, *, fmt: str = "WEBP", max_side: int = 2560) -> int:
    """Bytes of the file after actually re-encoding it (used to measure a suggestion's saving)."""
    data, _, _, _ = render(source, Spec("measure", "", max_side, max_side, crop=False), fmt=fmt)
    return len(data)
