"""Near-duplicate precision on a generated set: crops, recompressions and resizes of photos are look-alikes;
unrelated photos, flat colours and same-shape gradients in other colours are not."""

from __future__ import annotations

import io
import itertools

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from media import selectors
from media.fingerprints import MIN_DETAIL, colour_distance, fingerprint
from media.services import asset_upload
from tests.media.conftest import make_image


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _gradient(colour: tuple[int, int, int]) -> Image.Image:
    ramp = Image.linear_gradient("L").resize((400, 300))
    return Image.merge("RGB", [ramp.point(lambda v, c=c: v * c // 255) for c in colour])


def generated_set() -> tuple[dict[str, bytes], set[frozenset[str]]]:
    """name → bytes, and the set of pairs that truly are look-alikes (same source photo)."""
    files: dict[str, bytes] = {}
    groups: list[list[str]] = []
    for seed in range(1, 7):
        photo = Image.open(io.BytesIO(make_image(640, 480, seed=seed, quality=95)))
        w, h = photo.size
        variants = {
            f"p{seed}": _jpeg(photo, 95),
            f"p{seed}-recompressed": _jpeg(photo, 35),
            f"p{seed}-resized": _jpeg(photo.resize((w // 2, h // 2), Image.Resampling.LANCZOS)),
            f"p{seed}-crop": _jpeg(photo.crop((16, 12, w - 16, h - 12))),
            f"p{seed}-png": _png(photo),
        }
        files.update(variants)
        groups.append(list(variants))
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255), (250, 250, 250), (20, 20, 20), (0, 160, 0)]):
        files[f"flat{i}"] = _png(Image.new("RGB", (300, 200), colour))
        files[f"flat{i}-noise"] = _jpeg(Image.new("RGB", (300, 200), colour), 60)
    for i, colour in enumerate([(255, 60, 0), (0, 80, 255), (30, 200, 90)]):
        files[f"gradient{i}"] = _png(_gradient(colour))
    truth = {frozenset(pair) for group in groups for pair in itertools.combinations(group, 2)}
    return files, truth


def test_flat_images_get_no_perceptual_hash():
    flat = fingerprint(Image.new("RGB", (64, 64), (255, 0, 0)))
    other = fingerprint(Image.new("RGB", (64, 64), (0, 0, 255)))
    assert flat.phash == other.phash == "" and flat.detail < MIN_DETAIL
    assert colour_distance(flat.colour, other.colour) == 255


def test_near_duplicate_precision_on_generated_set(library):
    files, truth = generated_set()
    names = {}
    for name, data in files.items():
        asset = asset_upload(
            library=library,
            file=SimpleUploadedFile(name, data),
            request_renditions=False,
            compute_suggestions=False,
        ).asset
        names[asset.pk] = name
    reported = {
        frozenset((names[p.a.pk], names[p.b.pk]))
        for p in selectors.duplicate_pairs(workspace=library.workspace)
    }
    true_positive = reported & truth
    precision = len(true_positive) / len(reported)
    recall = len(true_positive) / len(truth)
    assert precision == 1.0, sorted(map(sorted, reported - truth))
    assert recall >= 0.8, sorted(map(sorted, truth - reported))
    # the per-asset lookup applies the same rule
    flat = next(pk for pk, name in names.items() if name == "flat0")
    gradient = next(pk for pk, name in names.items() if name == "gradient0")
    photo = next(pk for pk, name in names.items() if name == "p1")
    from media.models import MediaAsset

    assert selectors.near_duplicates(asset=MediaAsset.objects.get(pk=flat)) == []
    assert selectors.near_duplicates(asset=MediaAsset.objects.get(pk=gradient)) == []
    found = {names[m.asset.pk] for m in selectors.near_duplicates(asset=MediaAsset.objects.get(pk=photo))}
    assert found <= {"p1-recompressed", "p1-resized", "p1-crop", "p1-png"} and len(found) >= 3
