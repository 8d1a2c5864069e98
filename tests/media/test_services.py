"""Media services: upload/dedupe, lifecycle with audit, usage, performance, renditions, suggestions."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from PIL import Image

from aicmo.models import AuditEvent, Job, JobStatus
from media import renditions as rd
from media import selectors, services
from media.models import AssetStatus, MediaAsset, Rendition, Suggestion, SuggestionCode, SuggestionStatus
from media.validation import UploadRejected
from tests.media.conftest import make_image, stored_files, upload


def test_upload_stores_once_per_sha256(library, marketer, media_root):
    data = make_image(400, 300)
    first = services.asset_upload(
        library=library, file=upload(data, "Summer Sale.jpg"), by=marketer, tags=["summer"]
    )
    assert first.duplicate is False
    asset = first.asset
    assert asset.sha256 == hashlib.sha256(data).hexdigest()
    assert asset.kind == "image" and asset.status == AssetStatus.DRAFT and asset.title == "Summer Sale"
    assert "Summer" not in asset.file.name and asset.file.name.endswith(".jpg")  # generated storage name
    assert [t.name for t in asset.tags.all()] == ["summer"]
    assert AuditEvent.objects.filter(verb="media.asset.uploaded", target_id=str(asset.pk)).exists()
    files_before = stored_files(media_root)

    again = services.asset_upload(library=library, file=upload(data, "copy.jpg"), by=marketer)
    assert again.duplicate is True and again.asset.pk == asset.pk
    assert MediaAsset.objects.count() == 1 and stored_files(media_root) == files_before


def test_same_bytes_in_another_workspace_is_not_a_duplicate(library, other_workspace):
    data = make_image(200, 200)
    services.asset_upload(library=library, file=upload(data))
    other_lib = services.library_create(workspace=other_workspace, name="Brand")
    result = services.asset_upload(library=other_lib, file=upload(data))
    assert result.duplicate is False and result.asset.workspace_id == other_workspace.pk


def test_rejected_upload_stores_nothing(library, media_root):
    data = make_image(800, 600)
    with pytest.raises(UploadRejected):
        services.asset_upload(library=library, file=upload(data[:3000]))
    assert MediaAsset.objects.count() == 0 and stored_files(media_root) == []


def test_upload_enqueues_renditions_after_commit(library, django_capture_on_commit_callbacks, monkeypatch):
    calls = []
    from media import tasks

    monkeypatch.setattr(tasks.build_renditions_task, "delay", lambda *a: calls.append(a))
    with django_capture_on_commit_callbacks(execute=True):
        result = services.asset_upload(library=library, file=upload(make_image()))
    job = Job.objects.get(kind="media.renditions")
    assert calls == [(result.asset.pk, job.pk, list(rd.SPECS), False)]


def test_lifecycle_and_audit(library, marketer, reviewer):
    asset = services.asset_upload(library=library, file=upload(make_image())).asset
    with pytest.raises(PermissionDenied):
        services.asset_approve(asset=asset, by=marketer)
    with pytest.raises(ValidationError):
        services.asset_reject(asset=asset, by=reviewer, note=" ")
    services.asset_reject(asset=asset, by=reviewer, note="Logo too small")
    assert asset.status == AssetStatus.REJECTED and asset.review_note == "Logo too small"
    with pytest.raises(services.AssetStateError):
        services.asset_attach(asset=asset, ref="publishing.content:1")
    with pytest.raises(services.AssetStateError):
        services.asset_publish(asset=asset)
    services.asset_approve(asset=asset, by=reviewer, note="Fixed")
    assert asset.status == AssetStatus.APPROVED and asset.reviewed_by == reviewer
    services.asset_publish(asset=asset)
    assert asset.status == AssetStatus.PUBLISHED and asset.published_at
    services.asset_archive(asset=asset, by=marketer)
    with pytest.raises(services.AssetStateError):
        services.asset_attach(asset=asset, ref="publishing.content:2")
    verbs = list(
        AuditEvent.objects.filter(target_type="media.mediaasset", target_id=str(asset.pk))
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs == [
        "media.asset.uploaded", "media.asset.rejected", "media.asset.approved", "media.asset.published",
        "media.asset.archived",
    ]  # fmt: skip


def test_api_key_role_is_honoured(library, marketer):
    asset = services.asset_upload(library=library, file=upload(make_image())).asset
    services.asset_approve(asset=asset, by=marketer, role="reviewer")
    assert asset.status == AssetStatus.APPROVED


def test_usage_is_idempotent_and_tracks_last_use(library):
    asset = services.asset_upload(library=library, file=upload(make_image())).asset
    when = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    services.asset_attach(asset=asset, ref="publishing.content:7", channel="linkedin", campaign="Spring")
    services.asset_record_usage(asset=asset, ref="publishing.content:7", channel="linkedin", used_at=when)
    assert asset.usages.count() == 1
    services.asset_record_usage(asset=asset, ref="publishing.content:8", channel="x")
    asset.refresh_from_db()
    assert asset.usages.count() == 2 and asset.last_used_at > when


def test_performance_upsert_per_day(library):
    asset = services.asset_upload(library=library, file=upload(make_image())).asset
    day = dt.date(2026, 3, 1)
    services.asset_record_performance(asset=asset, channel="x", date=day, impressions=100, clicks=5)
    services.asset_record_performance(asset=asset, channel="x", date=day, impressions=120, clicks=6)
    assert asset.performance.get().impressions == 120
    with pytest.raises(ValidationError):
        services.asset_record_performance(asset=asset, channel="x", date=day, impressions=1, clicks=2)


def _jpeg_with_gps(width=2400, height=1600) -> bytes:
    img = Image.open(io.BytesIO(make_image(width, height)))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x0112] = 1
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def test_renditions_sizes_format_and_no_exif(library, media_redis):
    data = _jpeg_with_gps()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the source really carries GPS
    asset = services.asset_upload(library=library, file=upload(data), request_renditions=False).asset
    built = services.asset_build_renditions(asset_id=asset.pk)
    assert built == len(rd.SPECS)
    for r in Rendition.objects.filter(asset=asset):
        spec = rd.SPECS[r.spec]
        with r.file.open("rb") as fh, Image.open(fh) as img:
            assert img.format == "WEBP" == r.format
            assert img.size == (r.width, r.height)
            assert not img.getexif() and "exif" not in img.info and "xmp" not in img.info
        if spec.crop:
            assert (r.width, r.height) == (spec.width, spec.height)
        else:
            assert max(r.width, r.height) == 320 and r.width == 320  # 3:2 fit inside 320×320
    assert services.asset_build_renditions(asset_id=asset.pk) == 0  # idempotent re-run


def test_rendition_rebuilt_when_focal_point_moves(library, media_redis):
    asset = services.asset_upload(
        library=library, file=upload(make_image(1600, 800)), request_renditions=False
    ).asset
    services.asset_build_renditions(asset_id=asset.pk, specs=["instagram_square"])
    first = Rendition.objects.get(asset=asset)
    services.asset_update(asset=asset, focal_x=0.0)
    assert services.asset_build_renditions(asset_id=asset.pk, specs=["instagram_square"]) == 1
    second = Rendition.objects.get(asset=asset)
    assert second.source_key != first.source_key and second.file.name != first.file.name


def test_exif_orientation_applied_to_renditions(library, media_redis):
    img = Image.new("RGB", (1200, 600), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    asset = services.asset_upload(
        library=library, file=upload(out.getvalue()), request_renditions=False
    ).asset
    rendition = services.rendition_get_or_build(asset=asset, spec="thumbnail")
    assert (rendition.width, rendition.height) == (160, 320)


def test_build_job_progress(library, media_redis):
    asset = services.asset_upload(library=library, file=upload(make_image()), request_renditions=False).asset
    job = services.asset_request_renditions(asset=asset, specs=["thumbnail", "og"])
    services.asset_build_renditions(asset_id=asset.pk, job_id=job.pk, specs=["thumbnail", "og"])
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.done == 2 and job.result == {"built": 2}


@pytest.mark.django_db(transaction=True)
def test_on_demand_build_under_lock_runs_once(workspace, media_redis, monkeypatch):
    """A request and a worker asking for the same rendition at once: one render, both get the same row."""
    library = services.library_create(workspace=workspace, name="Lock")
    asset = services.asset_upload(library=library, file=upload(make_image()), request_renditions=False).asset
    renders = []
    real_render = rd.render
    gate = threading.Event()

    def slow_render(*args, **kwargs):
        renders.append(1)
        gate.wait(2)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(rd, "render", slow_render)
    results = []

    def worker():
        try:
            results.append(services.rendition_get_or_build(asset=asset, spec="og").pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    threading.Timer(0.5, gate.set).start()
    for t in threads:
        t.join(10)
    assert len(renders) == 1
    assert len(results) == 2 and results[0] == results[1]
    assert Rendition.objects.filter(asset=asset, spec="og").count() == 1


def test_near_duplicates_use_band_index(library):
    base = make_image(800, 600, seed=3)
    img = Image.open(io.BytesIO(base))
    tweaked = io.BytesIO()
    img.resize((640, 480)).save(tweaked, "JPEG", quality=60)  # same picture, smaller and recompressed
    a = services.asset_upload(library=library, file=upload(base), request_renditions=False).asset
    b = services.asset_upload(
        library=library, file=upload(tweaked.getvalue()), request_renditions=False
    ).asset
    different = services.asset_upload(
        library=library, file=upload(make_image(800, 600, seed=99)), request_renditions=False
    ).asset
    near = selectors.near_duplicates(asset=a)
    assert [m.asset.pk for m in near] == [b.pk]
    assert near[0].distance <= selectors.NEAR_DUPLICATE_DISTANCE
    assert different.pk not in [m.asset.pk for m in selectors.near_duplicates(asset=a)]
    pairs = selectors.duplicate_pairs(workspace=library.workspace)
    assert {(p.a.pk, p.b.pk) for p in pairs} == {(min(a.pk, b.pk), max(a.pk, b.pk))}


def test_near_duplicate_query_is_indexed(library, django_assert_max_num_queries):
    a = services.asset_upload(
        library=library, file=upload(make_image(seed=5)), request_renditions=False
    ).asset
    with django_assert_max_num_queries(1) as ctx:
        selectors.near_duplicates(asset=a)
    sql = ctx.captured_queries[0]["sql"]
    assert "phash_b0" in sql and "phash_b3" in sql


def _perf(asset, channel, impressions, clicks, days=3):
    for d in range(days):
        services.asset_record_performance(
            asset=asset, channel=channel, date=dt.date(2026, 2, 1) + dt.timedelta(days=d),
            impressions=impressions, clicks=clicks, engagements=clicks * 2, conversions=clicks // 10,
        )  # fmt: skip


def test_high_and_low_performers_against_channel_median(library):
    assets = [
        services.asset_upload(
            library=library, file=upload(make_image(seed=s)), request_renditions=False
        ).asset
        for s in range(5)
    ]
    for asset, clicks in zip(assets[:4], (10, 20, 22, 60), strict=True):
        _perf(asset, "linkedin", 1000, clicks)
    _perf(assets[4], "linkedin", 50, 40)  # tiny sample: ignored
    ranked = selectors.performers(workspace=library.workspace, channel="linkedin")
    assert [r.asset_id for r in ranked.high] == [assets[3].pk]
    assert [r.asset_id for r in ranked.low] == [assets[0].pk]
    assert ranked.median_ctr == pytest.approx(0.021)
    assert assets[4].pk not in [r.asset_id for r in ranked.high + ranked.low]


def photo(width: int, height: int) -> Image.Image:
    """Colour noise over a gradient: compresses like a photograph (badly as PNG)."""
    bands = [Image.effect_noise((width, height), 40 + 10 * i) for i in range(3)]
    return Image.blend(Image.merge("RGB", bands), make_rgb_gradient(width, height), 0.5)


def make_rgb_gradient(width: int, height: int) -> Image.Image:
    return Image.open(io.BytesIO(make_image(width, height, "PNG", seed=7))).convert("RGB")


def test_suggestions_from_real_numbers(library, monkeypatch):
    # A big photographic PNG without alpha, off every channel ratio, no alt text.
    out = io.BytesIO()
    photo(1100, 1100).save(out, "PNG")
    big = services.asset_upload(
        library=library, file=upload(out.getvalue(), "noise.png"), request_renditions=False
    )
    asset = big.asset
    codes = {s.code: s for s in services.asset_compute_suggestions(asset=asset)}
    assert SuggestionCode.MISSING_ALT in codes and SuggestionCode.CONVERT_FORMAT in codes
    oversized = codes[SuggestionCode.OVERSIZED]
    assert 0 < oversized.details["reencoded_bytes"] < asset.size_bytes
    assert oversized.saving_bytes == asset.size_bytes - oversized.details["reencoded_bytes"]
    assert SuggestionCode.DIMENSIONS not in codes  # 1100×1100 covers instagram_square
    # Dismissal survives recomputation; fixing the alt text removes that suggestion.
    services.suggestion_dismiss(suggestion=codes[SuggestionCode.CONVERT_FORMAT])
    services.asset_update(asset=asset, alt_text="Grey noise")
    codes = {s.code: s for s in services.asset_compute_suggestions(asset=asset)}
    assert SuggestionCode.MISSING_ALT not in codes
    assert codes[SuggestionCode.CONVERT_FORMAT].status == SuggestionStatus.DISMISSED


def test_small_efficient_jpeg_is_not_oversized(library):
    asset = services.asset_upload(
        library=library, file=upload(make_image(300, 200)), request_renditions=False
    ).asset
    codes = {s.code for s in services.asset_compute_suggestions(asset=asset)}
    assert SuggestionCode.OVERSIZED not in codes
    assert SuggestionCode.DIMENSIONS in codes  # 300×200 is too small for every channel spec


def test_low_ctr_and_unused_suggestions(library):
    assets = [
        services.asset_upload(
            library=library, file=upload(make_image(seed=s)), request_renditions=False
        ).asset
        for s in range(3)
    ]
    for asset, clicks in zip(assets, (3, 20, 25), strict=True):
        _perf(asset, "x", 1000, clicks)
    MediaAsset.objects.filter(pk=assets[1].pk).update(created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    services.library_compute_suggestions(library=library)
    low = Suggestion.objects.filter(code=SuggestionCode.LOW_CTR)
    assert [s.asset_id for s in low] == [assets[0].pk]
    assert low[0].details["channels"][0]["median"] == pytest.approx(0.02)
    unused = Suggestion.objects.filter(code=SuggestionCode.UNUSED)
    assert [s.asset_id for s in unused] == [assets[1].pk]


def test_act_on_suggestion_builds_optimized_rendition(
    library, media_redis, django_capture_on_commit_callbacks
):
    out = io.BytesIO()
    photo(700, 700).save(out, "PNG")
    asset = services.asset_upload(
        library=library, file=upload(out.getvalue()), request_renditions=False
    ).asset
    suggestion = next(
        s for s in services.asset_compute_suggestions(asset=asset) if s.code == SuggestionCode.OVERSIZED
    )
    job = services.suggestion_act(suggestion=suggestion)
    services.asset_build_renditions(asset_id=asset.pk, job_id=job.pk, specs=job.params["specs"])
    optimized = Rendition.objects.get(asset=asset, spec="optimized")
    assert optimized.size_bytes < asset.size_bytes and (optimized.width, optimized.height) == (700, 700)
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.DONE
    missing_alt = Suggestion.objects.get(asset=asset, code=SuggestionCode.MISSING_ALT)
    with pytest.raises(services.AssetStateError):
        services.suggestion_act(suggestion=missing_alt)


def test_on_demand_build_gives_up_when_lock_is_held(library, media_redis, settings, client_for):
    asset = services.asset_upload(library=library, file=upload(make_image()), request_renditions=False).asset
    lock = media_redis.lock(f"aicmo:media:rendition:{asset.pk}:og", timeout=30)
    assert lock.acquire()
    settings.MEDIA_RENDITION_WAIT_SECONDS = 0.3
    try:
        with pytest.raises(services.RenditionBusy):
            services.rendition_get_or_build(asset=asset, spec="og")
        client = client_for("viewer")
        asset_other = services.asset_upload(
            library=services.library_create(workspace=client.workspace, name="Mine"),
            file=upload(make_image(seed=42)), request_renditions=False,
        ).asset  # fmt: skip
        held = media_redis.lock(f"aicmo:media:rendition:{asset_other.pk}:og", timeout=30)
        assert held.acquire()
        resp = client.get(f"/media/assets/{asset_other.pk}/renditions/og/")
        assert resp.status_code == 503 and resp["Retry-After"] == "5"
        held.release()
    finally:
        lock.release()
    assert not Rendition.objects.filter(asset=asset).exists()


def test_rendition_lock_is_renewed_while_held_and_a_dead_holders_lapses(media_redis, monkeypatch):
    """A build longer than the lock's TTL keeps its lock; a holder that died (SIGKILL: nobody renews its
    lock) holds the rendition back for at most the TTL, not the whole wait (tests/reliability)."""
    monkeypatch.setattr(services, "RENDITION_LOCK_TTL", 1)
    key = "aicmo:media:rendition:1:og"
    with services._rendition_lock(1, "og", wait=0):
        time.sleep(2.5)  # a slow build: more than twice the TTL
        assert media_redis.pttl(key) > 0
        with pytest.raises(services.RenditionBusy), services._rendition_lock(1, "og", wait=0):
            pass
    assert not media_redis.exists(key)

    media_redis.set(key, "token-of-a-dead-worker", px=1000)
    with services._rendition_lock(1, "og", wait=5):
        assert media_redis.get(key) != b"token-of-a-dead-worker"


def test_upload_enqueues_suggestions(library, django_capture_on_commit_callbacks, monkeypatch):
    from media import tasks

    sent = []
    monkeypatch.setattr(tasks.compute_asset_suggestions_task, "delay", lambda asset_id: sent.append(asset_id))
    with django_capture_on_commit_callbacks(execute=True):
        asset = services.asset_upload(
            library=library, file=upload(make_image()), request_renditions=False
        ).asset
    assert sent == [asset.pk]
    assert services.asset_refresh_suggestions(asset_id=asset.pk) >= 1
    assert services.asset_refresh_suggestions(asset_id=10**9) == 0


def test_unreachable_broker_keeps_upload_and_fails_the_job(
    library, django_capture_on_commit_callbacks, monkeypatch
):
    from media import tasks

    def broken(*args):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.build_renditions_task, "delay", broken)
    monkeypatch.setattr(tasks.compute_asset_suggestions_task, "delay", broken)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.asset_upload(library=library, file=upload(make_image()))
    assert MediaAsset.objects.filter(pk=result.asset.pk).exists()
    job = Job.objects.get(kind="media.renditions")
    assert job.status == JobStatus.FAILED and "queue (broker) is unreachable" in job.message


def test_avif_renditions_when_configured(library, media_redis, settings):
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow cannot encode AVIF")
    settings.MEDIA_RENDITION_FORMAT = "AVIF"
    asset = services.asset_upload(
        library=library, file=upload(make_image(800, 600)), request_renditions=False
    ).asset
    rendition = services.rendition_get_or_build(asset=asset, spec="linkedin")
    with rendition.file.open("rb") as fh, Image.open(fh) as img:
        assert img.format == "AVIF" and img.size == (1200, 627)
    settings.MEDIA_RENDITION_FORMAT = "WEBP"
    assert (
        services.asset_build_renditions(asset_id=asset.pk, specs=["linkedin"]) == 1
    )  # format change → stale


def test_daily_refresh_creates_one_job_per_workspace(library, other_workspace, django_capture_on_commit_callbacks,
                                                     monkeypatch):  # fmt: skip
    from django_celery_beat.models import PeriodicTask

    from media import tasks

    assert PeriodicTask.objects.get(task="media.tasks.refresh_all_suggestions_task").enabled
    monkeypatch.setattr(
        tasks.compute_suggestions_task, "delay", lambda job_id: services.suggestions_refresh(job_id=job_id)
    )
    services.asset_upload(library=library, file=upload(make_image()), request_renditions=False)
    services.library_create(workspace=other_workspace, name="Theirs")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.refresh_all_suggestions_task() == 2
    jobs = Job.objects.filter(kind="media.suggestions")
    assert jobs.count() == 2 and set(jobs.values_list("status", flat=True)) == {"succeeded"}
    assert Suggestion.objects.filter(code="missing_alt").count() == 1
