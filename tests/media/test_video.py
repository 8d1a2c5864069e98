"""Video: ffprobe metadata, a poster frame and an H.264 web rendition built by the worker service; without
ffmpeg nothing is built and the page says so. Real ffmpeg/ffprobe (Debian's package, installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from aicmo.models import Job
from media import services, video
from media.models import AssetKind, MediaAsset, Rendition

pytestmark = pytest.mark.skipif(not video.available(), reason="ffmpeg/ffprobe are installed by .ci/run")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    """3 s of test pattern + tone, 320×240, MPEG-4 Part 2 video (not H.264, so the web rendition transcodes)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    subprocess.run(  # noqa: S603
        [shutil.which("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=10",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:v", "mpeg4", "-c:a", "aac", "-shortest",
         str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def _upload(workspace, data: bytes) -> MediaAsset:
    library = services.library_create(workspace=workspace, name="Videos")
    return services.asset_upload(library=library, file=SimpleUploadedFile("clip.mp4", data)).asset


def test_worker_builds_poster_and_web_rendition(client_for, other_workspace, clip, media_redis):
    client = client_for("viewer")
    asset = _upload(client.workspace, clip)
    assert asset.kind == AssetKind.VIDEO and asset.duration_seconds == pytest.approx(3, abs=0.1)
    job = services.asset_request_renditions(asset=asset)
    assert services.asset_build_renditions(asset_id=asset.pk, job_id=job.pk) == 2  # what the task runs
    asset.refresh_from_db()
    assert (asset.video_codec, asset.width, asset.height) == ("mpeg4", 320, 240)
    assert asset.aspect_ratio == pytest.approx(4 / 3, abs=1e-3)
    poster = Rendition.objects.get(asset=asset, spec="poster")
    assert poster.format == "JPEG" and (poster.width, poster.height) == (320, 240)
    assert Image.open(poster.file.path).format == "JPEG"
    web = Rendition.objects.get(asset=asset, spec="web")
    made = video.probe(web.file.path)
    assert web.format == "MP4" and made.codec == "h264" and (made.width, made.height) == (320, 240)
    assert made.duration_seconds == pytest.approx(3, abs=0.2)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.done == 2
    assert services.asset_build_renditions(asset_id=asset.pk) == 0  # idempotent re-run

    grid = client.get("/media/?kind=video")
    assert f"/media/assets/{asset.pk}/renditions/poster/".encode() in grid.content
    page = client.get(f"/media/assets/{asset.pk}/")
    assert b"<video" in page.content and b"mpeg4" in page.content and b"video-no-ffmpeg" not in page.content
    resp = client.get(f"/media/assets/{asset.pk}/renditions/web/")
    assert resp.status_code == 200 and resp["Content-Type"] == "video/mp4"
    assert resp["X-Content-Type-Options"] == "nosniff"
    api = client.get(f"/api/v1/media/renditions/{asset.pk}/poster/")
    assert api.status_code == 200 and api["Content-Type"] == "image/jpeg"
    assert client.get(f"/media/assets/{asset.pk}/renditions/thumbnail/").status_code == 404

    theirs = _upload(other_workspace, clip + b"\0")
    services.asset_build_renditions(asset_id=theirs.pk)
    assert client.get(f"/media/assets/{theirs.pk}/renditions/web/").status_code == 404
    assert client.get(f"/api/v1/media/renditions/{theirs.pk}/web/").status_code == 404


def test_video_rendition_is_never_built_in_the_request(client_for, clip, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"subprocess in a request: {args[0]!r}")

    monkeypatch.setattr("media.video.subprocess.run", forbidden)
    monkeypatch.setattr("media.validation.subprocess.run", forbidden)
    client = client_for("viewer")
    asset = _upload(client.workspace, clip)
    assert asset.duration_seconds == pytest.approx(3, abs=0.1)  # from the mvhd box
    resp = client.get(f"/media/assets/{asset.pk}/renditions/web/")
    assert resp.status_code == 503 and resp["Retry-After"]
    assert not Rendition.objects.filter(asset=asset).exists()


def test_without_ffmpeg_nothing_is_built_and_the_page_says_so(client_for, clip, monkeypatch, tmp_path):
    client = client_for("viewer")
    asset = _upload(client.workspace, clip)  # upload still works: duration from the MP4 header
    assert asset.duration_seconds == pytest.approx(3, abs=0.1)
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg/ffprobe on PATH
    assert not video.available()
    job = services.asset_request_renditions(asset=asset)
    assert services.asset_build_renditions(asset_id=asset.pk, job_id=job.pk) == 0
    job = Job.objects.get(pk=job.pk)
    assert "ffmpeg is not installed" in job.message
    page = client.get(f"/media/assets/{asset.pk}/")
    assert b"video-no-ffmpeg" in page.content and b"ffmpeg, which is not installed" in page.content


def test_corrupt_video_is_a_per_item_job_error(workspace, media_redis):
    library = services.library_create(workspace=workspace, name="V")
    fake = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000  # an MP4 signature and nothing decodable
    asset = services.asset_upload(library=library, file=SimpleUploadedFile("x.mp4", fake)).asset
    job = services.asset_request_renditions(asset=asset)
    assert services.asset_build_renditions(asset_id=asset.pk, job_id=job.pk) == 0
    job.refresh_from_db()
    [error] = job.errors.all()
    assert job.failed == 2 and error.item == "probe" and "ffprobe" in error.message


def test_live_worker_builds_video_renditions_after_upload(live_celery_worker, workspace, clip):
    from aicmo.models import JobStatus
    from tests.media.test_worker import _wait

    asset = _upload(workspace, clip)  # enqueued on commit, run by the real worker
    job = Job.objects.get(kind="media.renditions", params__asset_id=asset.pk)
    assert job.params["specs"] == list(video.SPECS)
    assert _wait(lambda: Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, timeout=120)
    assert Job.objects.get(pk=job.pk).result == {"built": 2}
    assert set(Rendition.objects.filter(asset=asset).values_list("spec", flat=True)) == {"poster", "web"}
    assert MediaAsset.objects.get(pk=asset.pk).video_codec == "mpeg4"


def test_webm_duration_and_size_come_from_the_worker(workspace, media_redis, tmp_path):
    path = tmp_path / "clip.webm"
    subprocess.run(  # noqa: S603
        [shutil.which("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=160x90:rate=10",
         "-c:v", "libvpx", "-b:v", "200k", str(path)],
        check=True,
    )  # fmt: skip
    asset = _upload(workspace, path.read_bytes())
    assert asset.mime_type == "video/webm" and asset.duration_seconds is None
    assert services.asset_build_renditions(asset_id=asset.pk) == 2
    asset.refresh_from_db()
    assert asset.duration_seconds == pytest.approx(2, abs=0.15)
    assert (asset.video_codec, asset.width, asset.height) == ("vp8", 160, 90)
    web = video.probe(Rendition.objects.get(asset=asset, spec="web").file.path)
    assert (web.codec, web.width, web.height) == ("h264", 160, 90)
