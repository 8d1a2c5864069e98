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
