"""The one conversion path (`media.imaging.to_display`) over Pillow modes × formats × transparency × animation,
and the real-world cases m1 (CMYK + ICC), m3 (16-bit grey) and m5 (animated WebP) through upload, hashing,
renditions and suggestions."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageChops, ImageCms, ImageStat, features

from media import imaging
from media import renditions as rd
from media.models import AssetKind, Rendition, SuggestionCode

CASES = Path(__file__).parent / "cases"
W, H = 96, 64
A, B, HOLE = (200, 40, 40), (30, 90, 200), (0, 255, 0)
LEFT, RIGHT, IN_HOLE = (24, 40), (72, 32), (4, 4)


def _rgb() -> Image.Image:
    img = Image.new("RGB", (W, H), A)
    img.paste(B, (W // 2, 0, W, H))
    return img


def _grey(colour) -> int:
    return Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0))


def source(mode: str, transparency: str) -> tuple[Image.Image, tuple, tuple]:
    """(image in `mode`, expected display colour left, right). The 16×16 top-left hole is transparent
    when `transparency` is not "none"."""
    rgb = _rgb()
    if transparency == "key":
        rgb.paste(HOLE, (0, 0, 16, 16))
    if mode == "RGB":
        img, left, right = rgb, A, B
        if transparency == "key":
            img.info["transparency"] = HOLE
    elif mode == "RGBA":
        img, left, right = rgb.convert("RGBA"), A, B
    elif mode in ("L", "LA", "1"):
        grey = rgb.convert("L")
        if mode == "1":
            img = grey.point(lambda v: 255 if v > 100 else 0).convert("1")
            left, right = (
                (255,) * 3 if _grey(A) > 100 else (0,) * 3,
                (255,) * 3 if _grey(B) > 100 else (0,) * 3,
            )
            return img, left, right
        img, left, right = grey.convert(mode), (_grey(A),) * 3, (_grey(B),) * 3
        if transparency == "key":
            img.paste(7, (0, 0, 16, 16))
            img.info["transparency"] = 7
    elif mode == "P":
        img = Image.new("P", (W, H), 0)
        img.putpalette([*A, *B, *HOLE])
        img.paste(1, (W // 2, 0, W, H))
        left, right = A, B
        if transparency == "palette":
            img.paste(2, (0, 0, 16, 16))
            img.info["transparency"] = 2
    elif mode in ("I;16", "I"):
        img = Image.new("I", (W, H), _grey(A) * 257)
        img.paste(_grey(B) * 257, (W // 2, 0, W, H))
        if transparency == "key":
            img.paste(1234, (0, 0, 16, 16))
            img.info["transparency"] = 1234
        img = img.convert(mode) if mode != "I" else img
        if transparency == "key":
            img.info["transparency"] = 1234
        left, right = (_grey(A),) * 3, (_grey(B),) * 3
    elif mode == "CMYK":
        img, left, right = rgb.convert("CMYK"), A, B
    else:
        raise AssertionError(mode)
    if transparency == "alpha":
        alpha = Image.new("L", (W, H), 255)
        alpha.paste(0, (0, 0, 16, 16))
        img.putalpha(alpha)
    return img, left, right


# (format, mode, transparency, lossy)
SAVED = [
    ("PNG", "1", "none", False),
    ("PNG", "L", "none", False),
    ("PNG", "L", "key", False),
    ("PNG", "LA", "alpha", False),
    ("PNG", "P", "none", False),
    ("PNG", "P", "palette", False),
    ("PNG", "RGB", "none", False),
    ("PNG", "RGB", "key", False),
    ("PNG", "RGBA", "alpha", False),
    ("PNG", "I;16", "none", False),
    ("PNG", "I;16", "key", False),
    ("JPEG", "L", "none", True),
    ("JPEG", "RGB", "none", True),
    ("JPEG", "CMYK", "none", True),
    ("WEBP", "RGB", "none", True),
    ("WEBP", "RGBA", "alpha", True),
    ("GIF", "P", "none", False),
    ("GIF", "P", "palette", False),
    ("GIF", "L", "none", False),
]
if features.check("avif"):
    SAVED += [("AVIF", "RGB", "none", True), ("AVIF", "RGBA", "alpha", True)]
ANIMATED = [("GIF", "P", "palette"), ("GIF", "P", "none"), ("PNG", "RGBA", "alpha"), ("PNG", "RGB", "none"),
            ("WEBP", "RGBA", "alpha"), ("WEBP", "RGB", "none")]  # fmt: skip


def encode(img: Image.Image, fmt: str, *, frames: int = 1) -> bytes:
    out = io.BytesIO()
    options: dict = {"quality": 95} if fmt in ("JPEG", "WEBP", "AVIF") else {}
    if "transparency" in img.info:
        options["transparency"] = img.info["transparency"]
    if frames > 1:  # frames differ in one corner (identical frames would be merged by the encoder)
        others = []
        for i in range(1, frames):
            other = img.copy()
            other.paste(other.getpixel(LEFT), (80, 20, 80 + 4 * i, 20 + 4 * i))
            other.info = dict(img.info)
            others.append(other)
        options.update(
            save_all=True, append_images=others, duration=[80 + 10 * i for i in range(frames)], loop=0
        )
        if fmt == "WEBP":
            options["lossless"] = True
    img.save(out, fmt, **options)
    return out.getvalue()


def close(actual, expected, tolerance) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual[:3], expected[:3], strict=True))


def check_display(out: Image.Image, left, right, transparency: str, tolerance: int) -> None:
    assert out.mode == ("RGB" if transparency == "none" else "RGBA")
    assert "icc_profile" not in out.info
    assert close(out.getpixel(LEFT), left, tolerance), (out.getpixel(LEFT), left)
    assert close(out.getpixel(RIGHT), right, tolerance), (out.getpixel(RIGHT), right)
    if transparency != "none":
        assert out.getpixel(IN_HOLE)[3] == 0
        assert out.getpixel(LEFT)[3] == 255 and out.getpixel(RIGHT)[3] == 255


@pytest.mark.parametrize(("fmt", "mode", "transparency", "lossy"), SAVED, ids=lambda v: str(v))
def test_matrix_saved_formats(fmt, mode, transparency, lossy):
    img, left, right = source(mode, transparency)
    data = encode(img, fmt)
    tolerance = 14 if lossy else 1
    check_display(imaging.to_display(Image.open(io.BytesIO(data))), left, right, transparency, tolerance)
    # renditions keep the transparency form as alpha and the colours
    blob, width, height, out_fmt = rd.render(io.BytesIO(data), rd.SPECS["thumbnail"], fmt="WEBP")
    rendition = Image.open(io.BytesIO(blob))
    assert (width, height) == (W, H) and rendition.mode == ("RGB" if transparency == "none" else "RGBA")
    assert "icc_profile" not in rendition.info
    assert close(rendition.convert("RGBA").getpixel(LEFT), left, 16)
    if transparency != "none":
        assert rendition.getpixel(IN_HOLE)[3] == 0
    # the hash is computed from the same path: a copy in another mode/format hashes (almost) alike
    reference = imagehash.phash(
        imaging.to_display(Image.open(io.BytesIO(encode(*source("RGB", "none")[:1], "PNG"))))
    )
    if not lossy and mode not in ("1", "L", "LA", "I;16", "I") and transparency == "none":
        assert imagehash.phash(imaging.to_display(Image.open(io.BytesIO(data)))) - reference <= 4


@pytest.mark.parametrize(("fmt", "mode", "transparency"), ANIMATED, ids=lambda v: str(v))
def test_matrix_animations_stay_animations(fmt, mode, transparency):
    img, left, right = source(mode, transparency)
    data = encode(img, fmt, frames=3)
    opened = Image.open(io.BytesIO(data))
    assert imaging.is_animated(opened) and opened.n_frames == 3
    frames = list(imaging.frames(opened))
    assert len(frames) == 3 and [d for _, d in frames] == [80, 90, 100]
    for frame, _ in frames:
        check_display(frame, left, right, transparency, 14)
    blob, *_ = rd.render(io.BytesIO(data), rd.SPECS["og"], fmt="WEBP")
    out = Image.open(io.BytesIO(blob))
    assert out.n_frames == 3 and out.size == (1200, 630)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I;16", (0, 32896, 65535), (0, 128, 255)),
        ("I;16B", (0, 32896, 65535), (0, 128, 255)),
        ("I", (0, 32896, 65535), (0, 128, 255)),
        ("I", (-1000, 0, 1000), (0, 128, 255)),  # beyond 16 bits: its own range
        ("F", (0.0, 0.5, 1.0), (0, 128, 255)),
        ("F", (0.0, 128.0, 255.0), (0, 128, 255)),
        ("F", (-2.0, 0.0, 2.0), (0, 128, 255)),
    ],
)
def test_high_depth_is_scaled_not_clipped(mode, values, expected):
    img = Image.new("F" if mode == "F" else "I", (3, 1))
    for x, v in enumerate(values):
        img.putpixel((x, 0), v)
    if mode not in ("I", "F"):
        img = img.convert(mode)
    out = imaging.to_display(img)
    assert out.mode == "RGB" and [out.getpixel((x, 0))[0] for x in range(3)] == list(expected)


@pytest.mark.parametrize("mode", ["RGBa", "La", "HSV", "LAB", "YCbCr", "CMYK", "PA"])
def test_in_memory_modes_reach_rgb(mode):
    base = _rgb().convert("RGBA") if mode in ("RGBa", "La", "PA") else _rgb()
    if mode == "PA":
        img = base.convert("P").convert("PA")
    elif mode == "La":
        img = base.convert("LA").convert("La")
    else:
        img = base.convert(mode)
    out = imaging.to_display(img)
    assert out.mode in ("RGB", "RGBA") and "icc_profile" not in out.info


def test_reduction_happens_before_conversion_and_keeps_min_size():
    img = Image.new("I;16", (4000, 3000), 32896)
    out = imaging.to_display(img, min_size=(300, 200))
    assert 300 <= out.width < 600 and 200 <= out.height < 400 and out.getpixel((10, 10)) == (128, 128, 128)


def test_embedded_rgb_profile_goes_through_imagecms():
    """An RGB image carrying an (sRGB) profile goes through ImageCms, keeps its colours and drops the profile."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    img = _rgb()
    img.info["icc_profile"] = srgb.tobytes()
    out = imaging.to_display(img)
    assert close(out.getpixel(LEFT), A, 1) and "icc_profile" not in out.info


# --- the real-world cases -------------------------------------------------------------------------------


def _upload(library, name: str):
    from media.services import asset_upload

    data = (CASES / name).read_bytes()
    return asset_upload(library=library, file=SimpleUploadedFile(name, data), request_renditions=False).asset


def test_m1_cmyk(library, media_redis):
    """CMYK JPEG with an embedded SWOP profile: renditions go through the profile to sRGB, no CMYK profile."""
    src = Image.open(CASES / "m1-cmyk.jpg")
    expected = ImageCms.profileToProfile(
        src, ImageCms.ImageCmsProfile(io.BytesIO(src.info["icc_profile"])), ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    )  # fmt: skip
    naive = Image.open(CASES / "m1-cmyk.jpg").convert("RGB")
    asset = _upload(library, "m1-cmyk.jpg")
    assert asset.color_mode == "CMYK" and asset.kind == AssetKind.IMAGE
    from media.services import asset_build_renditions

    assert asset_build_renditions(asset_id=asset.pk, specs=["thumbnail"]) == 1
    thumb = Rendition.objects.get(asset=asset, spec="thumbnail")
    out = Image.open(thumb.file.path)
    assert out.mode == "RGB" and "icc_profile" not in out.info
    x, y = 5 * out.width // 600, 5 * out.height // 400
    got = out.getpixel((x, y))
    assert close(got, expected.getpixel((5, 5)), 12), (got, expected.getpixel((5, 5)))
    assert not close(got, naive.getpixel((5, 5)), 12)  # the naive conversion is visibly different
    diff = ImageChops.difference(out, expected.resize(out.size, Image.Resampling.LANCZOS))
    assert max(ImageStat.Stat(diff).mean) < 4  # the whole picture, not one pixel


def test_m3_gray16(library, media_redis):
    """16-bit gradient: mid-grey stays mid-grey in renditions and the hash equals the 8-bit version's."""
    asset = _upload(library, "m3-gray16.png")
    src = Image.open(CASES / "m3-gray16.png")
    assert asset.color_mode == "I;16"
    display = imaging.to_display(src)
    assert display.getpixel((src.width // 2, src.height // 2)) == (128, 128, 128)
    eight_bit = Image.open(CASES / "m3-gray16.png").convert("I").point(lambda v: v / 257 + 0.5).convert("L")
    assert asset.phash == str(imagehash.phash(eight_bit.convert("RGB")))
    from media.services import asset_build_renditions

    asset_build_renditions(asset_id=asset.pk, specs=["thumbnail"])
    thumb = Image.open(Rendition.objects.get(asset=asset, spec="thumbnail").file.path).convert("RGB")
    assert close(thumb.getpixel((thumb.width // 2, thumb.height // 2)), (128, 128, 128), 3)


def test_m5_anim(library, media_redis):
    """12-frame animated WebP: an animation everywhere GIFs are — animated renditions, no one-frame saving."""
    from media.services import asset_build_renditions, asset_compute_suggestions

    asset = _upload(library, "m5-anim.webp")
    assert asset.kind == AssetKind.GIF and asset.frame_count == 12 and asset.format == "WEBP"
    assert asset_build_renditions(asset_id=asset.pk) == len(rd.SPECS)
    for rendition in Rendition.objects.filter(asset=asset):
        out = Image.open(rendition.file.path)
        assert out.n_frames == 12, rendition.spec
    codes = {s.code for s in asset_compute_suggestions(asset=asset)}
    assert SuggestionCode.OVERSIZED not in codes and SuggestionCode.DIMENSIONS not in codes
    # the measured re-encode is of the whole animation, not of one frame
    with asset.file.open("rb") as fh:
        whole = rd.reencode_size(fh)
    one_frame = len(rd.render_prepared(rd.Prepared([imaging.to_display(Image.open(CASES / "m5-anim.webp"))], [0]),
                                       rd.Spec("m", "", 2560, 2560, crop=False), fmt="WEBP")[0])  # fmt: skip
    assert whole > 6 * one_frame


@pytest.mark.parametrize(
    ("mode", "transparency"),
    [("P", "palette"), ("P", "none"), ("RGB", "key"), ("L", "key"), ("I;16", "key"), ("I;16", "none"),
     ("RGBA", "alpha"), ("LA", "alpha"), ("CMYK", "none")],
)  # fmt: skip
def test_large_sources_are_reduced_in_strips_with_the_same_result(mode, transparency):
    """×12 the matrix picture: reduced back in strips (several strips of STRIP_ROWS) it reads the same."""
    img, left, right = source(mode, transparency)
    big = img.resize((W * 12, H * 12), Image.Resampling.NEAREST)
    assert big.height > imaging.STRIP_ROWS
    out = imaging.to_display(big, min_size=(W, H))
    assert out.size == (W, H)
    check_display(out, left, right, transparency, 1)
