"""The disk fills up while an upload or an import file is stored: a clean 507 with a message, no row, no
orphan or partial file; with space back, the same request succeeds.

The disk is real: a 256 KiB tmpfs mounted as MEDIA_ROOT (needs root, as in the CI container; skipped
otherwise), filled with a ballast file until less than the upload's size is left, so the kernel answers
``ENOSPC`` part-way through the write.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from aicmo.storage import FULL_CODE, FULL_MESSAGE, PARTIAL_PREFIX, is_storage_full
from crm.models import Contact, ImportRun
from media.models import MediaAsset
from tests.media.conftest import make_image

pytestmark = pytest.mark.django_db
DISK_BYTES = 256 * 1024
LEFT_FREE = 16 * 1024


@pytest.fixture
def small_disk(settings, tmp_path):
    """MEDIA_ROOT on a 256 KiB tmpfs; yields a function that fills it to ``LEFT_FREE`` bytes free."""
    root = tmp_path / "media"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(root)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {mounted.stderr.strip()}")
    settings.MEDIA_ROOT = root
    ballast = root / "ballast"

    def fill() -> None:
        stat = os.statvfs(root)
        free = stat.f_bavail * stat.f_frsize
        with ballast.open("ab") as out:
            out.write(b"\0" * max(0, free - LEFT_FREE))

    try:
        yield fill
    finally:
        subprocess.run(["umount", str(root)], check=True)


def files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def picture() -> bytes:
    """A JPEG of about 60 KiB: larger than what is left free, smaller than the disk."""
    data = make_image(400, 300, quality=100, seed=3)
    assert LEFT_FREE < len(data) < DISK_BYTES // 3, len(data)
    return data


def people_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "first_name", "notes"])
    for n in range(400):
        writer.writerow([f"person{n}@example.com", f"Person {n}", "x" * 80])
    data = out.getvalue().encode()
    assert LEFT_FREE < len(data) < DISK_BYTES // 3, len(data)
    return data


def api_media(client):
    file = SimpleUploadedFile("photo.jpg", picture(), content_type="image/jpeg")
    return client.post("/api/v1/media/assets/", {"file": file}, format="multipart")


def api_import(client):
    file = SimpleUploadedFile("people.csv", people_csv(), content_type="text/csv")
    return client.post("/api/v1/crm/imports/", {"file": file}, format="multipart")


def page_import(client):
    return client.post("/crm/imports/", {"file": SimpleUploadedFile("people.csv", people_csv())})


def page_media(client):
    """The drag-and-drop upload of the media page (one file, asking for JSON)."""
    file = SimpleUploadedFile("photo.jpg", picture(), content_type="image/jpeg")
    return client.post("/media/upload/", {"file": file}, HTTP_ACCEPT="application/json")


@pytest.mark.parametrize(
    ("door", "model"),
    [
        ("api_media", MediaAsset),
        ("page_media", MediaAsset),
        ("api_import", ImportRun),
        ("page_import", ImportRun),
    ],
)
def test_disk_full_while_storing_is_a_clean_507_with_nothing_kept(
    door, model, small_disk, settings, api_client_for, client_for
):
    client = api_client_for("marketer") if door.startswith("api") else client_for("marketer")
    send = globals()[door]
    small_disk()
    before = files_in(settings.MEDIA_ROOT)

    resp = send(client)

    assert resp.status_code == 507, resp.content[:500]
    assert resp["Retry-After"]
    if resp["Content-Type"].startswith("application/json"):
        assert resp.json()["error"] == {"code": FULL_CODE, "message": FULL_MESSAGE, "fields": {}}
    else:
        assert resp.content.decode() == FULL_MESSAGE
    assert model.objects.count() == 0 and Contact.objects.count() == 0
    after = files_in(settings.MEDIA_ROOT)
    assert after == before == ["ballast"], after  # no orphan, no partial (.partial-*) file

    (settings.MEDIA_ROOT / "ballast").unlink()
    again = send(client)
    assert again.status_code in {200, 201, 202, 302}, again.content[:500]
    assert model.objects.count() == 1
    assert not [f for f in files_in(settings.MEDIA_ROOT) if Path(f).name.startswith(PARTIAL_PREFIX)]


@pytest.mark.parametrize(
    ("exc", "full"),
    [
        (OSError(28, "No space left on device"), True),
        (OSError(122, "Disk quota exceeded"), True),
        (OSError(13, "Permission denied"), False),
        (OSError("no errno"), False),
        (RuntimeError("No space left on device"), False),
    ],
)
def test_only_enospc_and_edquot_count_as_storage_full(exc, full):
    assert is_storage_full(exc) is full
