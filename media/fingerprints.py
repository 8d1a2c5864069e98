"""Near-duplicate signatures of a display image (`imaging.to_display` output).

- pHash (imagehash, 64-bit DCT hash): structure. Two images are look-alikes when it is within
  `selectors.NEAR_DUPLICATE_DISTANCE` bits *and* their colour moments agree.
- Colour moments: mean and standard deviation of R, G and B over a 32×32 thumbnail (Stricker & Orengo,
  "Similarity of color images", SPIE 1995), six bytes as 12 hex digits. pHash ignores colour, so a red and a
  blue copy of the same gradient share it; the moments tell them apart.
- Detail: the standard deviation of the 32×32 greyscale thumbnail (0..127.5). pHash of a flat or almost
  flat image is noise around zero bits, so every pair of such images looks identical: below `MIN_DETAIL`
  no perceptual hash is stored and the image takes no part in near-duplicate matching (exact duplicates
  are still found by SHA-256).
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import scipy.fftpack  # noqa: F401 - imagehash.phash imports it lazily: 1.5 s on the first upload otherwise
from PIL import Image, ImageStat

MIN_DETAIL = 6.0
MAX_COLOUR_DISTANCE = 24  # largest per-moment difference (0..255) still counted as the same colours
HASH_INPUT = 256  # the display image is shrunk to at least this before hashing (pHash reads 32×32)


@dataclass(frozen=True)
class Fingerprint:
    phash: str  # 16 hex digits, "" for a low-detail image
    colour: str  # 12 hex digits: mean R, G, B then stddev R, G, B
    detail: float


def fingerprint(display: Image.Image) -> Fingerprint:
    """Signatures of an RGB/RGBA display image; transparent pixels are composited on white first."""
    rgb = display
    if display.mode == "RGBA":
        rgb = Image.new("RGB", display.size, (255, 255, 255))
        rgb.paste(display, mask=display.getchannel("A"))
    small = rgb.convert("RGB").resize((32, 32), Image.Resampling.BOX)
    stat = ImageStat.Stat(small)
    moments = [round(v) for v in stat.mean] + [round(min(v, 255)) for v in stat.stddev]
    detail = ImageStat.Stat(small.convert("L")).stddev[0]
    phash = str(imagehash.phash(rgb)) if detail >= MIN_DETAIL else ""
    return Fingerprint(phash=phash, colour="".join(f"{v:02x}" for v in moments), detail=round(detail, 2))


def colour_distance(a: str, b: str) -> int | None:
    """Largest difference between corresponding colour moments; None when either is unknown."""
    if len(a) != 12 or len(b) != 12:
        return None
    return max(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) for i in range(0, 12, 2))


def colours_agree(a: str, b: str) -> bool:
    distance = colour_distance(a, b)
    return distance is None or distance <= MAX_COLOUR_DISTANCE
