"""The one conversion path from a decoded image to what we hash, measure and render: 8-bit sRGB.

Validation (metadata, perceptual hashes), renditions and suggestions all call `to_display`, so every Pillow
mode is handled once:

- CMYK (and YCCK, which libjpeg hands Pillow as CMYK) and any image carrying an ICC profile are converted
  through that profile to sRGB with ImageCms (LittleCMS, perceptual intent); the result carries no profile,
  which browsers and encoders read as sRGB. CMYK without a profile falls back to Pillow's naive conversion.
- 16- and 32-bit modes are scaled to 8 bits, never clipped: `I;16*` by 1/257 (65535 → 255, 32896 → 128);
  `I` the same when its values fit 16 bits, else its own range; `F` from 0..1 (or 0..255, or its own range).
- Every transparency form ends as an alpha channel: RGBA/LA/PA/RGBa/La, palette transparency (`P` +
  `transparency`), and colour-key `tRNS` on RGB, L and 16-bit L. Output is "RGBA" exactly when the image has
  transparency, else "RGB" (a fully opaque alpha channel is dropped).
- Large images are shrunk in their source mode first (JPEG `draft`, integer `reduce`) so conversions work
  on the small image: memory follows the output size, not the source size.
- Animations (GIF, APNG, animated WebP) are iterated frame by frame with `frames`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageCms, ImageSequence

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # fmt: skip
_PROFILE_SPACE = {"CMYK": "CMYK", "RGB": "RGB", "RGBA": "RGB", "L": "GRAY", "LA": "GRAY"}


def is_animated(img: Image.Image) -> bool:
    return getattr(img, "n_frames", 1) > 1


def has_transparency(img: Image.Image) -> bool:
    """Alpha channel, palette transparency or a colour key (Pillow's `has_transparency_data`)."""
    return img.has_transparency_data


def orientation(img: Image.Image) -> int:
    """EXIF orientation tag (1..8), 1 when absent or invalid."""
    value = img.getexif().get(0x0112, 1)
    return value if value in range(1, 9) else 1


def draft_for(img: Image.Image, size: tuple[int, int] | None) -> None:
    """JPEG not yet loaded: decode at the smallest DCT scale (1/2, 1/4, 1/8) still covering `size`."""
    if size is not None and img.format == "JPEG" and img.tile:
        img.draft(img.mode if img.mode in ("CMYK", "L") else "RGB", size)


def _alpha_from_key(img: Image.Image) -> Image.Image:
    """Palette transparency and 8-bit colour keys (`tRNS`) → a real alpha channel, before any resampling."""
    if img.mode in ("P", "PA"):
        return img.convert("RGBA") if has_transparency(img) else img.convert("RGB")
    if img.mode == "1":
        return img.convert("L")
    if img.mode in ("L", "RGB") and img.info.get("transparency") is not None:
        return img.convert("LA" if img.mode == "L" else "RGBA")
    return img


def _scaled_to_8bit(img: Image.Image, source_mode: str) -> Image.Image:
    """I/F → L with the scale described in the module docstring."""
    if source_mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    else:
        low, high = img.getextrema()
        if img.mode == "I" and low >= 0 and high <= 65535:
            low, high = 0.0, 65535.0
        elif img.mode == "F" and low >= 0 and high <= 1.0:
            low, high = 0.0, 1.0
        elif img.mode == "F" and low >= 0 and high <= 255.0:
            low, high = 0.0, 255.0
    span = (high - low) or 1.0
    scale = 255.0 / span
    work = img if img.mode == "F" else img.convert("I")
    return work.point(lambda v: v * scale - low * scale + 0.5).convert("L")  # +0.5: round, not truncate


def _key_mask(img: Image.Image) -> Image.Image | None:
    """Alpha ("L": 0 where the pixel equals the colour key, else 255) for 16/32-bit greyscale with `tRNS`."""
    key = img.info.get("transparency")
    if not isinstance(key, int) or img.mode not in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return None
    opaque = np.asarray(img.convert("I")) != key
    return Image.fromarray(opaque.astype(np.uint8) * 255, "L")


STRIP_ROWS = 512


def _reduce_in_strips(img: Image.Image, factor: int) -> Image.Image:
    """Box-reduce by `factor`, `STRIP_ROWS` source rows at a time, with palette/colour-key transparency
    turned into alpha per strip. Pillow's reduce/resize premultiply RGBA and convert P through a full-size
    copy; strips keep the extra memory to one strip instead of a second full image."""
    width, height = img.size
    step = factor * max(1, STRIP_ROWS // factor)
    out: Image.Image | None = None
    for top in range(0, height, step):
        strip = _alpha_from_key(img.crop((0, top, width, min(height, top + step))))
        if strip.mode.startswith("I;16"):  # no I;16 reduce kernel; BOX resize is the same box filter
            small = strip.resize(
                (math.ceil(width / factor), math.ceil(strip.height / factor)), Image.Resampling.BOX
            )
        else:
            small = strip.reduce(factor)
        if out is None:
            out = Image.new(small.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        out.paste(small, (0, top // factor))
    return out


def _icc_to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert through the embedded profile to sRGB; the result carries no profile."""
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    base = img.convert({"RGBA": "RGB", "LA": "L"}.get(img.mode, img.mode)) if alpha is not None else img
    out = None
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            space = profile.profile.xcolor_space.strip()
            if space == _PROFILE_SPACE.get(base.mode, "").strip():
                out = ImageCms.profileToProfile(
                    base, profile, ImageCms.createProfile("sRGB"), outputMode="RGB",
                    renderingIntent=ImageCms.Intent.PERCEPTUAL,
                )  # fmt: skip
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            out = None
    if out is None:
        out = base.convert("RGB")
    out.info.pop("icc_profile", None)
    if alpha is not None:
        out.putalpha(alpha)
    return out


def reduce_factor(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """Largest integer box-reduction that keeps both sides at or above `target` (1 when none)."""
    if target is None:
        return 1
    return max(1, min(size[0] // max(1, target[0]), size[1] // max(1, target[1])))


def to_display(
    img: Image.Image, *, min_size: tuple[int, int] | None = None, transpose: bool = True
) -> Image.Image:
    """The current frame of `img` as 8-bit sRGB "RGB" or "RGBA" (see module docstring).

    `min_size`: the output may be shrunk (JPEG draft, integer reduce) as long as it stays at least this
    large on both sides; callers resample to the exact size themselves. `transpose`: apply EXIF
    orientation (then `min_size` is in displayed orientation). Raises what Pillow raises on a bad file
    (OSError, ValueError, DecompressionBombError).
    """
    rotate = transpose and orientation(img) in (5, 6, 7, 8)
    target = (min_size[1], min_size[0]) if (min_size and rotate) else min_size
    draft_for(img, target)
    img.load()
    icc = img.info.get("icc_profile")
    source_mode = img.mode
    mask = _key_mask(img)
    factor = reduce_factor(img.size, target)
    if factor > 1:
        work = _reduce_in_strips(img, factor)
        if mask is not None:
            mask = _reduce_in_strips(mask, factor)
    else:
        work = _alpha_from_key(img)
    if work.mode.startswith("I;16"):
        work = work.convert("I")
    if work.mode in ("I", "F"):
        work = _scaled_to_8bit(work, source_mode)
    if work.mode == "La":  # premultiplied grey: Pillow only un-premultiplies through RGBa
        grey, alpha = work.split()
        work = Image.merge("RGBa", (grey, grey, grey, alpha))
    if work.mode == "RGBa":
        work = work.convert("RGBA")
    if work.mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
        work = work.convert("RGBA" if "A" in work.getbands() else "RGB")
    out = _icc_to_srgb(work, icc)
    if mask is not None:
        out.putalpha(mask)
    if out.mode == "RGBA" and out.getchannel("A").getextrema() == (255, 255):
        out = out.convert("RGB")  # e.g. animated WebP frames always decode as RGBA
    out.info = {}
    method = _TRANSPOSE.get(orientation(img)) if transpose else None
    if method is not None:
        out = out.transpose(method)
        out.info = {}
    return out


def frames(img: Image.Image, *, min_size: tuple[int, int] | None = None) -> Iterator[tuple[Image.Image, int]]:
    """Every frame as (display image, duration in ms), composited by Pillow (GIF disposal, APNG blend)."""
    for frame in ImageSequence.Iterator(img):
        frame.load()  # WebP sets the frame's duration while decoding it
        duration = int(frame.info.get("duration") or img.info.get("duration") or 100)
        yield to_display(frame, min_size=min_size), duration


def cover_size(size: tuple[int, int], box: tuple[int, int], crop: bool) -> tuple[int, int]:
    """Source pixels needed to render `box`: cover it (crop) or fit inside it, never upscaled."""
    w, h = size
    scale = max(box[0] / w, box[1] / h) if crop else min(box[0] / w, box[1] / h)
    scale = min(scale, 1.0)
    return max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))


DEFAULT_MAX_PIXELS = 52_000_000
DEFAULT_DECODE_BUDGET = 240 * 1024 * 1024
# Peak memory of decoding one pixel with Pillow 13, by container (measured on 10 MP files: RSS growth over
# the pixel count; RGB is held as 4 bytes). JPEG: libjpeg's progressive coefficient buffer (draft() decodes
# baseline files at 1/8 scale); GIF: the palette frame plus the RGBA frame Pillow composites from frame 2 on;
# WebP and AVIF: the decoder's own buffers and a copy, several bytes per pixel beyond the image itself.
DECODE_BYTES_PER_PIXEL = {"JPEG": 3.0, "PNG": 4.5, "GIF": 5.5, "WEBP": 18.0, "AVIF": 13.0}


def max_pixels(fmt: str | None = None) -> int:
    """Largest accepted image in pixels for a container format.

    `MEDIA_MAX_IMAGE_PIXELS` (default 52 MP: a 50 MP camera frame with margin), lowered per format so that
    decoding stays within `MEDIA_DECODE_BUDGET_BYTES` (default 240 MB): with Django and our imports at about
    155 MB, the web process and a worker stay under 400 MB peak RSS on the largest accepted image
    (bench/media_bench.py upload; docs/BENCHMARKS.md). Pillow's own bomb limit stays in force as well."""
    from django.conf import settings

    cap = int(getattr(settings, "MEDIA_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))
    budget = int(getattr(settings, "MEDIA_DECODE_BUDGET_BYTES", DEFAULT_DECODE_BUDGET))
    cost = DECODE_BYTES_PER_PIXEL.get(fmt or "", 4.5)
    return min(cap, int(budget / cost))


def over_pixel_cap(img: Image.Image) -> bool:
    """Header-only: the declared size is over `max_pixels(img.format)` (nothing is decoded)."""
    return img.width * img.height > max_pixels(img.format)
