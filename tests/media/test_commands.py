"""manage.py media_import goes through asset_upload: SHA-256, duplicates and rejections like every door."""

from __future__ import annotations

import hashlib
import io

from django.core.management import call_command

from media.models import MediaAsset
from tests.media.conftest import make_image


def test_media_import_folder(tmp_path, workspace):
    folder = tmp_path / "in"
    folder.mkdir()
    data = make_image(120, 80)
    (folder / "a.jpg").write_bytes(data)
    (folder / "copy-of-a.jpg").write_bytes(data)
    (folder / "broken.jpg").write_bytes(data[:500])
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "media_import",
        str(folder),
        workspace="acme",
        library="Imports",
        tags="import",
        stdout=out,
        stderr=err,
    )
    assert "1 new, 1 duplicates, 1 rejected." in out.getvalue() and "broken.jpg" in err.getvalue()
    asset = MediaAsset.objects.get()
    assert asset.sha256 == hashlib.sha256(data).hexdigest() and asset.library.name == "Imports"
    assert [t.name for t in asset.tags.all()] == ["import"]


def test_media_fingerprints_backfills_assets_stored_before_colour_moments(workspace):
    """Two flat images stored with the old rule (pHash only) were 0-bit near-duplicates; after the backfill
    neither has a pHash and the photo keeps its own."""
    from PIL import Image

    from media import selectors, services

    library = services.library_create(workspace=workspace, name="Old")

    def png(colour):
        out = io.BytesIO()
        Image.new("RGB", (64, 64), colour).save(out, "PNG")
        return out.getvalue()

    from django.core.files.uploadedfile import SimpleUploadedFile

    red, blue, photo = (
        services.asset_upload(library=library, file=SimpleUploadedFile(n, d), request_renditions=False).asset
        for n, d in (
            ("r.png", png((255, 0, 0))),
            ("b.png", png((0, 0, 255))),
            ("p.jpg", make_image(200, 150)),
        )
    )
    photo_hash = photo.phash
    zero = services.phash_bands(0)
    MediaAsset.objects.filter(pk__in=[red.pk, blue.pk]).update(
        phash="0" * 16, phash_b0=zero[0], phash_b1=zero[1], phash_b2=zero[2], phash_b3=zero[3],
        colour_moments="", detail=None,
    )  # fmt: skip
    MediaAsset.objects.filter(pk=photo.pk).update(colour_moments="")
    assert len(selectors.duplicate_pairs(workspace=workspace)) == 1  # the old false positive
    out = io.StringIO()
    call_command("media_fingerprints", workspace="acme", stdout=out)
    assert "3 fingerprinted, 0 failed." in out.getvalue()
    assert selectors.duplicate_pairs(workspace=workspace) == []
    assert set(MediaAsset.objects.filter(pk__in=[red.pk, blue.pk]).values_list("phash", flat=True)) == {""}
    photo.refresh_from_db()
    assert photo.phash == photo_hash and len(photo.colour_moments) == 12
    call_command("media_fingerprints", workspace="acme", stdout=(again := io.StringIO()))
    assert "0 fingerprinted" in again.getvalue()  # only what is missing
