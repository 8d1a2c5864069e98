"""Media writes. Admin actions, API views, dashboard views, tasks, commands and other apps call these."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import statistics
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict
from aicmo.jobs import (
    ItemError,
    job_advance,
    job_enqueue,
    job_finish,
    job_mark_running,
    job_set_progress,
    job_start,
)
from aicmo.models import Job, Membership, Role, Workspace
from aicmo.roles import APPROVE, role_allows
from aicmo.workspaces import named_rows_ensure

from . import imaging, video
from . import renditions as rd
from .filenames import escape_original, safe_filename, safe_stem
from .fingerprints import HASH_INPUT, Fingerprint, fingerprint
from .models import (
    AssetKind,
    AssetPerformance,
    AssetStatus,
    AssetUsage,
    MediaAsset,
    MediaLibrary,
    Rendition,
    Suggestion,
    SuggestionCode,
    SuggestionStatus,
    Tag,
)
from .validation import Inspection, UploadRejected, inspect_upload

logger = logging.getLogger(__name__)

RENDITION_LOCK_TIMEOUT = 300  # seconds a builder waits for another one's lock on the same rendition
# Seconds a builder's lock outlives its last renewal. The holder renews it every third of that while it
# builds (however long), so a builder killed mid-build (SIGKILL, the OOM killer) holds the rendition back
# for at most this long instead of the whole wait.
RENDITION_LOCK_TTL = 15
UNUSED_AFTER_DAYS = 90
MIN_IMPRESSIONS = 1000
LOW_CTR_RATIO = 0.5
OVERSIZED_MIN_SAVING = 0.30
OVERSIZED_MIN_BYTES = 200 * 1024
SPEC_TOLERANCE = 0.02


class RenditionBusy(Exception):
    """Another builder holds the rendition lock longer than this caller is willing to wait."""


class AssetStateError(Conflict):
    """A lifecycle rule refused the operation (e.g. attaching an archived asset): a 409 in the API."""


@dataclass(frozen=True)
class UploadResult:
    asset: MediaAsset
    duplicate: bool


# --- libraries and tags ---------------------------------------------------------------------------------


def _clean_library_name(workspace_id: int, name: str, *, exclude: int | None = None) -> str:
    name = (name or "").replace("\x00", "").strip()
    if not name:
        raise ValidationError({"name": "Give the library a name."})
    if len(name) > 120:
        raise ValidationError({"name": "At most 120 characters."})
    clash = MediaLibrary.objects.filter(workspace_id=workspace_id, name=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationError({"name": "A library with this name already exists."})
    return name


@transaction.atomic
def library_create(*, workspace: Workspace, name: str, description: str = "", by=None) -> MediaLibrary:
    """A new library. ValidationError ``{"name": ...}`` for a blank, over-long or taken name."""
    name = _clean_library_name(workspace.pk, name)
    library = MediaLibrary.objects.create(workspace=workspace, name=name, description=description)
    audit_record(workspace=workspace, actor=by, verb="media.library.created", target=library)
    return library


@transaction.atomic
def library_update(*, library: MediaLibrary, by=None, **fields) -> MediaLibrary:
    """Rename / describe; ValidationError ``{"name": ...}`` as for ``library_create``. (Renaming the
    default library means the next upload without a library starts a new "Main library".)"""
    if "name" in fields:
        fields["name"] = _clean_library_name(library.workspace_id, fields["name"], exclude=library.pk)
    changes = {}
    for name in ("name", "description"):
        if name in fields and getattr(library, name) != fields[name]:
            changes[name] = [getattr(library, name), fields[name]]
            setattr(library, name, fields[name])
    if changes:
        library.save()
        audit_record(
            workspace=library.workspace,
            actor=by,
            verb="media.library.updated",
            target=library,
            changes=changes,
        )
    return library


@transaction.atomic
def library_archive(*, library: MediaLibrary, by=None) -> MediaLibrary:
    """Hide the library from upload and move choices and refuse uploads into it. Its assets are left as
    they are (status, files, usage); they stay listed, searchable and usable in content. The default
    library cannot be archived (ValidationError)."""
    if library.is_default:
        raise ValidationError("The default library uploads without a library go to cannot be archived.")
    if library.archived_at is None:
        library.archived_at = timezone.now()
        library.save(update_fields=["archived_at"])
        audit_record(workspace=library.workspace, actor=by, verb="media.library.archived", target=library)
    return library


@transaction.atomic
def library_unarchive(*, library: MediaLibrary, by=None) -> MediaLibrary:
    if library.archived_at is not None:
        library.archived_at = None
        library.save(update_fields=["archived_at"])
        audit_record(workspace=library.workspace, actor=by, verb="media.library.unarchived", target=library)
    return library


def library_get_default(*, workspace: Workspace) -> MediaLibrary:
    """The library uploads without one go to (API and dashboard alike), created on first use."""
    library, _ = MediaLibrary.objects.get_or_create(workspace=workspace, name=MediaLibrary.DEFAULT_NAME)
    return library


def tags_resolve(*, workspace: Workspace, names: Iterable[str]) -> list[Tag]:
    return named_rows_ensure(Tag, workspace=workspace, names=names)


# --- upload ---------------------------------------------------------------------------------------------


def _apply_inspection(asset: MediaAsset, inspection: Inspection) -> None:
    meta = inspection.metadata
    asset.kind = inspection.kind
    asset.mime_type = inspection.mime_type
    asset.sha256 = inspection.sha256
    asset.size_bytes = inspection.size_bytes
    asset.sanitized = inspection.sanitized
    for name in ("width", "height", "aspect_ratio", "duration_seconds", "page_count", "frame_count"):
        setattr(asset, name, meta.get(name))
    asset.format = meta.get("format", "") or ""
    asset.color_mode = meta.get("color_mode", "") or ""
    asset.has_alpha = bool(meta.get("has_alpha"))
    asset.exif_orientation_applied = bool(meta.get("exif_orientation_applied"))
    if inspection.fingerprint is not None:
        _apply_fingerprint(asset, inspection.fingerprint)


def _apply_fingerprint(asset: MediaAsset, prints: Fingerprint) -> None:
    asset.colour_moments, asset.detail, asset.phash = prints.colour, prints.detail, prints.phash
    bands = phash_bands(int(prints.phash, 16)) if prints.phash else (None, None, None, None)
    asset.phash_b0, asset.phash_b1, asset.phash_b2, asset.phash_b3 = bands


FINGERPRINT_FIELDS = ["phash", "phash_b0", "phash_b1", "phash_b2", "phash_b3", "colour_moments", "detail"]


def asset_refresh_fingerprint(*, asset: MediaAsset) -> bool:
    """Recompute pHash, colour moments and detail from the stored file through the current conversion path
    (for assets stored before migration media/0004). False when the file cannot be read as an image."""
    from PIL import Image

    try:
        with asset.file.open("rb") as source, Image.open(source) as img:
            prints = fingerprint(imaging.to_display(img, min_size=(HASH_INPUT, HASH_INPUT)))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.warning("fingerprint of asset %s failed: %s", asset.pk, exc)
        return False
    _apply_fingerprint(asset, prints)
    asset.save(update_fields=FINGERPRINT_FIELDS)
    return True


def phash_bands(value: int) -> tuple[int, int, int, int]:
    return ((value >> 48) & 0xFFFF, (value >> 32) & 0xFFFF, (value >> 16) & 0xFFFF, value & 0xFFFF)


def asset_upload(
    *,
    library: MediaLibrary,
    file,
    by=None,
    title: str = "",
    description: str = "",
    alt_text: str = "",
    category: str = "",
    tags: Iterable[str] = (),
    filename: str | None = None,
    request_renditions: bool = True,
    compute_suggestions: bool = True,
) -> UploadResult:
    """Validate by content, then store once per SHA-256 per workspace.

    An exact duplicate returns the existing asset with duplicate=True and stores nothing. A rejected file
    raises `UploadRejected` before anything is written.
    """
    workspace = library.workspace
    if library.archived_at is not None:
        raise UploadRejected(
            "library_archived", f"The library “{library.name}” is archived: restore it or pick another one."
        )
    inspection = inspect_upload(file)
    existing = MediaAsset.objects.for_workspace(workspace).filter(sha256=inspection.sha256).first()
    if existing is not None:
        return UploadResult(asset=existing, duplicate=True)

    name = filename or getattr(file, "name", "") or ""
    asset = MediaAsset(
        workspace=workspace,
        library=library,
        title=(title or safe_stem(name))[:200],
        description=description,
        alt_text=alt_text[:500],
        category=category[:60],
        uploaded_by=by if getattr(by, "is_authenticated", False) else None,
        original_filename=escape_original(name),
        filename=safe_filename(name, inspection.extension),
    )
    _apply_inspection(asset, inspection)
    if inspection.content is not None:
        content = ContentFile(inspection.content)
    else:
        file.seek(0)
        content = File(file)
    asset.file.save("upload" + inspection.extension, content, save=False)
    try:
        with transaction.atomic():
            asset.save()
            if tags:
                asset.tags.set(tags_resolve(workspace=workspace, names=tags))
            audit_record(
                workspace=workspace, actor=by, verb="media.asset.uploaded", target=asset,
                changes={"sha256": asset.sha256, "kind": asset.kind, "size_bytes": asset.size_bytes},
            )  # fmt: skip
    except IntegrityError:
        asset.file.delete(save=False)  # a concurrent upload of the same bytes won
        existing = MediaAsset.objects.for_workspace(workspace).filter(sha256=inspection.sha256).first()
        if existing is None:
            raise
        return UploadResult(asset=existing, duplicate=True)
    except BaseException:
        asset.file.delete(save=False)
        raise
    if request_renditions and rendition_specs(asset):
        asset_request_renditions(asset=asset, by=by)
    if compute_suggestions:
        _enqueue_asset_suggestions(asset.pk)
    return UploadResult(asset=asset, duplicate=False)


def _enqueue_asset_suggestions(asset_id: int) -> None:
    from .tasks import compute_asset_suggestions_task

    job_enqueue(compute_asset_suggestions_task, asset_id)


def asset_refresh_suggestions(*, asset_id: int) -> int:
    """Task body: recompute one asset's suggestions (re-encoding to measure savings happens here)."""
    asset = MediaAsset.objects.filter(pk=asset_id).select_related("library").first()
    return len(asset_compute_suggestions(asset=asset)) if asset is not None else 0


ASSET_EDITABLE = ("title", "description", "alt_text", "category", "focal_x", "focal_y")


@transaction.atomic
def asset_update(
    *, asset: MediaAsset, by=None, library: MediaLibrary | None = None, tags=None, **fields
) -> MediaAsset:
    changes: dict = {}
    for name, value in fields.items():
        if name not in ASSET_EDITABLE:
            raise ValueError(f"{name} cannot be edited")
        if getattr(asset, name) != value:
            changes[name] = [getattr(asset, name), value]
            setattr(asset, name, value)
    for name in ("focal_x", "focal_y"):
        if not 0 <= float(getattr(asset, name)) <= 1:
            raise ValidationError({name: "The focal point must be between 0 and 1."})
    if library is not None and library.pk != asset.library_id:
        if library.workspace_id != asset.workspace_id:
            raise ValidationError({"library": "Unknown library."})
        if library.archived_at is not None:
            raise ValidationError({"library": f"The library “{library.name}” is archived."})
        changes["library"] = [asset.library_id, library.pk]
        asset.library = library
    asset.save()
    if tags is not None:
        asset.tags.set(tags_resolve(workspace=asset.workspace, names=tags))
        changes["tags"] = sorted(tags)
    if changes:
        audit_record(
            workspace=asset.workspace, actor=by, verb="media.asset.updated", target=asset, changes=changes
        )
    return asset


def asset_delete(*, asset: MediaAsset, by=None) -> None:
    files = [asset.file.name, *asset.renditions.values_list("file", flat=True)]
    storage = asset.file.storage
    with transaction.atomic():
        audit_record(
            workspace=asset.workspace,
            actor=by,
            verb="media.asset.deleted",
            target=asset,
            changes={"sha256": asset.sha256},
        )
        asset.delete()
    transaction.on_commit(lambda: [storage.delete(name) for name in files if name])


# --- lifecycle ------------------------------------------------------------------------------------------


def _role_of(workspace: Workspace, user) -> str | None:
    if getattr(user, "is_superuser", False):
        return Role.ADMIN
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(workspace=workspace, user=user).values_list("role", flat=True).first()


def _require_reviewer(asset: MediaAsset, by, role: str | None) -> None:
    role = role if role is not None else _role_of(asset.workspace, by)
    if not role_allows(role, APPROVE):
        raise PermissionDenied("Only reviewers may approve or reject assets.")


def _transition(
    asset: MediaAsset, *, to: str, allowed_from: Iterable[str], by, verb: str, note: str = "", **extra
):
    with transaction.atomic():
        locked = MediaAsset.objects.select_for_update().get(pk=asset.pk)
        if locked.status == to:
            return locked
        if locked.status not in allowed_from:
            raise AssetStateError(
                f"A {locked.get_status_display().lower()} asset cannot become {AssetStatus(to).label.lower()}."
            )
        before = locked.status
        locked.status = to
        for name, value in extra.items():
            setattr(locked, name, value)
        locked.save()
        changes = {"status": [before, to]}
        if note:
            changes["note"] = note
        audit_record(workspace=locked.workspace, actor=by, verb=verb, target=locked, changes=changes)
    asset.refresh_from_db()
    return asset


def asset_approve(*, asset: MediaAsset, by, note: str = "", role: str | None = None) -> MediaAsset:
    _require_reviewer(asset, by, role)
    return _transition(
        asset, to=AssetStatus.APPROVED, allowed_from=(AssetStatus.DRAFT, AssetStatus.REJECTED), by=by,
        verb="media.asset.approved", note=note, review_note=note, reviewed_by=_user(by), reviewed_at=timezone.now(),
    )  # fmt: skip


def asset_reject(*, asset: MediaAsset, by, note: str, role: str | None = None) -> MediaAsset:
    _require_reviewer(asset, by, role)
    if not note.strip():
        raise ValidationError({"note": "Say why the asset is rejected."})
    return _transition(
        asset, to=AssetStatus.REJECTED, allowed_from=(AssetStatus.DRAFT, AssetStatus.APPROVED), by=by,
        verb="media.asset.rejected", note=note, review_note=note, reviewed_by=_user(by), reviewed_at=timezone.now(),
    )  # fmt: skip


def asset_publish(*, asset: MediaAsset, by=None) -> MediaAsset:
    """Called by publishing when content using the asset goes out. Only approved assets can be published."""
    return _transition(
        asset, to=AssetStatus.PUBLISHED, allowed_from=(AssetStatus.APPROVED,), by=by,
        verb="media.asset.published", published_at=timezone.now(),
    )  # fmt: skip


def asset_archive(*, asset: MediaAsset, by=None) -> MediaAsset:
    return _transition(
        asset, to=AssetStatus.ARCHIVED,
        allowed_from=(AssetStatus.DRAFT, AssetStatus.APPROVED, AssetStatus.REJECTED, AssetStatus.PUBLISHED),
        by=by, verb="media.asset.archived", archived_at=timezone.now(),
    )  # fmt: skip


def _user(by):
    return by if getattr(by, "is_authenticated", False) else None


# --- usage and performance ------------------------------------------------------------------------------


def asset_record_usage(
    *, asset: MediaAsset, ref: str, channel: str = "", campaign: str = "", used_at: dt.datetime | None = None
) -> AssetUsage:
    """Record (idempotently per ref+channel) that content uses the asset."""
    used_at = used_at or timezone.now()
    usage, _ = AssetUsage.objects.update_or_create(
        asset=asset, ref=ref[:120], channel=channel[:40],
        defaults={"workspace_id": asset.workspace_id, "campaign": campaign[:200], "used_at": used_at},
    )  # fmt: skip
    MediaAsset.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=used_at), pk=asset.pk).update(
        last_used_at=used_at
    )
    return usage


def asset_attach(
    *, asset: MediaAsset, ref: str, channel: str = "", campaign: str = "", by=None
) -> AssetUsage:
    """Attach an asset to new content. Archived and rejected assets refuse."""
    current = MediaAsset.objects.only("status").get(pk=asset.pk)
    if current.status in (AssetStatus.ARCHIVED, AssetStatus.REJECTED):
        raise AssetStateError(
            f"A {current.get_status_display().lower()} asset cannot be attached to new content."
        )
    usage = asset_record_usage(asset=asset, ref=ref, channel=channel, campaign=campaign)
    audit_record(
        workspace=asset.workspace,
        actor=by,
        verb="media.asset.attached",
        target=asset,
        changes={"ref": ref, "channel": channel, "campaign": campaign},
    )
    return usage


def asset_record_performance(
    *,
    asset: MediaAsset,
    channel: str,
    date: dt.date,
    impressions: int = 0,
    clicks: int = 0,
    engagements: int = 0,
    conversions: int = 0,
) -> AssetPerformance:
    """Set the day's totals for one channel (re-pulling a day's metrics replaces them: idempotent)."""
    values = {
        "impressions": impressions,
        "clicks": clicks,
        "engagements": engagements,
        "conversions": conversions,
    }
    if any(v < 0 for v in values.values()):
        raise ValidationError("Performance counts cannot be negative.")
    if clicks > impressions:
        raise ValidationError("Clicks cannot exceed impressions.")
    row, _ = AssetPerformance.objects.update_or_create(
        asset=asset, channel=channel[:40], date=date, defaults={"workspace_id": asset.workspace_id, **values}
    )
    return row


# --- renditions -----------------------------------------------------------------------------------------


def asset_request_renditions(
    *, asset: MediaAsset, by=None, specs: Iterable[str] | None = None, force=False
) -> Job:
    """A Job plus a Celery task enqueued after commit; the task builds only what is missing."""
    from .tasks import build_renditions_task

    names = list(specs or (video.SPECS if asset.kind == AssetKind.VIDEO else rd.SPECS))
    with transaction.atomic():
        job = job_start(
            workspace=asset.workspace, kind="media.renditions", total=len(names), by=by,
            label=f"Renditions for {asset}"[:200], params={"asset_id": asset.pk, "specs": names, "force": force},
        )  # fmt: skip
        job_id, asset_id = job.pk, asset.pk
        job_enqueue(build_renditions_task, asset_id, job_id, names, force, job_id=job_id)
    return job


def renditions_missing(asset: MediaAsset, specs: Iterable[str], existing: dict[str, Rendition]) -> list[str]:
    missing = []
    for name in specs:
        spec = rd.ALL_SPECS[name]
        key = rd.source_key(
            sha256=asset.sha256,
            focal_x=asset.focal_x,
            focal_y=asset.focal_y,
            spec=spec,
            fmt=rd.output_format(spec),
        )
        current = existing.get(name)
        if current is None or current.source_key != key:
            missing.append(name)
    return missing


@contextlib.contextmanager
def _rendition_lock(asset_id: int, spec: str, wait: float = RENDITION_LOCK_TIMEOUT) -> Iterator[None]:
    """One builder per (asset, spec) across web requests and workers: a Redis lock of `RENDITION_LOCK_TTL`
    seconds, renewed by a thread while the body runs. Raises RenditionBusy after `wait` seconds."""
    from aicmo.redis import get_redis

    lock = get_redis().lock(
        f"aicmo:media:rendition:{asset_id}:{spec}",
        timeout=RENDITION_LOCK_TTL,
        blocking_timeout=wait,
        thread_local=False,  # the token is renewed from another thread
    )
    if not lock.acquire():
        raise RenditionBusy(f"Rendition {spec} of asset {asset_id} is locked by another builder.")
    done = threading.Event()

    def renew() -> None:
        while not done.wait(RENDITION_LOCK_TTL / 3):
            try:
                lock.reacquire()
            except Exception as exc:  # noqa: BLE001 - Redis gone or the lock lapsed: the build goes on
                logger.warning("rendition lock %s of asset %s not renewed: %s", spec, asset_id, exc)

    keeper = threading.Thread(target=renew, name=f"rendition-lock-{asset_id}-{spec}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()
        with contextlib.suppress(Exception):
            lock.release()


def _build_one(
    asset: MediaAsset,
    spec_name: str,
    *,
    force: bool = False,
    prepared=None,
    wait: float = RENDITION_LOCK_TIMEOUT,
) -> tuple[Rendition, bool]:
    """Build one rendition under the lock unless an up-to-date one exists. Returns (rendition, built).

    `prepared` (a callable returning an already decoded source) lets a batch decode the source once.
    """
    spec = rd.ALL_SPECS[spec_name]
    with _rendition_lock(asset.pk, spec_name, wait):
        current = Rendition.objects.filter(asset_id=asset.pk, spec=spec_name).first()
        fmt = rd.output_format(spec)
        key = rd.source_key(
            sha256=asset.sha256, focal_x=asset.focal_x, focal_y=asset.focal_y, spec=spec, fmt=fmt
        )
        if current is not None and current.source_key == key and not force:
            return current, False
        if prepared is not None:
            data, width, height, fmt = rd.render_prepared(
                prepared(), spec, focal_x=asset.focal_x, focal_y=asset.focal_y, fmt=fmt
            )
        else:
            with asset.file.open("rb") as source:
                data, width, height, fmt = rd.render(
                    source, spec, focal_x=asset.focal_x, focal_y=asset.focal_y, fmt=fmt
                )
        old_name = current.file.name if current is not None else None
        rendition = current or Rendition(workspace_id=asset.workspace_id, asset_id=asset.pk, spec=spec_name)
        rendition.file.save(f"{spec_name}.{fmt.lower()}", ContentFile(data), save=False)
        rendition.width, rendition.height, rendition.format = width, height, fmt
        rendition.size_bytes, rendition.source_key = len(data), key
        rendition.save()
        if old_name and old_name != rendition.file.name:
            rendition.file.storage.delete(old_name)
        return rendition, True


def asset_build_renditions(
    *, asset_id: int, job_id: int | None = None, specs: Iterable[str] | None = None, force: bool = False
) -> int:
    """Idempotent: builds only missing or stale renditions (all requested when force). Returns how many."""
    asset = MediaAsset.objects.filter(pk=asset_id).first()
    names = [n for n in (specs or rd.SPECS) if n in rd.ALL_SPECS]
    if job_id is not None and not job_mark_running(job_id=job_id):
        return 0
    if asset is not None and asset.kind == AssetKind.VIDEO:
        return _build_video_renditions(asset, job_id=job_id, force=force)
    if asset is None or not asset.is_raster:
        if job_id is not None:
            job_finish(
                job_id=job_id, message="Asset is gone or has no raster renditions.", result={"built": 0}
            )
        return 0
    existing = {r.spec: r for r in Rendition.objects.filter(asset_id=asset_id)}
    todo = names if force else renditions_missing(asset, names, existing)
    built = 0
    decoded: list = []

    def prepared():
        if not decoded:
            with asset.file.open("rb") as source:
                decoded.append(rd.prepare(source, [rd.ALL_SPECS[n] for n in todo]))
        return decoded[0]

    if job_id is not None:
        # Counted from what exists, not added to: a redelivered task (its worker was killed) must not count
        # the renditions its first run finished a second time.
        job_set_progress(job_id=job_id, done=len(names) - len(todo))
    for name in names:
        if name not in todo:
            continue
        try:
            _, did = _build_one(asset, name, force=force, prepared=prepared)
        except (OSError, ValueError, RenditionBusy) as exc:
            logger.warning("rendition %s of asset %s failed: %s", name, asset_id, exc)
            if job_id is not None:
                job_advance(job_id=job_id, failed=1, errors=[ItemError(item=name, message=str(exc))])
            continue
        built += int(did)
        if job_id is not None:
            job_advance(job_id=job_id, done=1)
    if job_id is not None:
        job_finish(job_id=job_id, result={"built": built})
    return built


def rendition_specs(asset: MediaAsset) -> tuple[str, ...]:
    """Specs an asset can have: the image specs for rasters, poster + web for videos, none otherwise."""
    if asset.is_raster:
        return tuple(rd.ALL_SPECS)
    if asset.kind == AssetKind.VIDEO:
        return video.SPECS
    return ()


def _build_video_renditions(asset: MediaAsset, *, job_id: int | None, force: bool) -> int:
    """Worker only: ffprobe metadata onto the asset, then the poster (JPEG) and web (H.264 MP4) renditions
    that are missing or stale. Without ffmpeg nothing is built and the job says why."""
    if not video.available():
        if job_id is not None:
            job_finish(job_id=job_id, message="ffmpeg is not installed: no poster or web rendition.",
                       result={"built": 0})  # fmt: skip
        return 0
    built = 0
    with _rendition_lock(asset.pk, "video"), tempfile.TemporaryDirectory(prefix="aicmo-video-") as tmp:
        source = Path(tmp) / ("source" + Path(asset.file.name).suffix)
        with asset.file.open("rb") as src, open(source, "wb") as dst:
            for chunk in src.chunks() if hasattr(src, "chunks") else iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
        try:
            info = video.probe(str(source))
        except video.VideoToolError as exc:
            if job_id is not None:
                job_advance(job_id=job_id, failed=len(video.SPECS),
                            errors=[ItemError(item="probe", message=str(exc))])  # fmt: skip
                job_finish(job_id=job_id, result={"built": 0})
            return 0
        MediaAsset.objects.filter(pk=asset.pk).update(
            duration_seconds=info.duration_seconds if info.duration_seconds is not None else asset.duration_seconds,
            video_codec=info.codec[:40], width=info.width, height=info.height,
            aspect_ratio=round(info.width / info.height, 4) if info.width and info.height else None,
        )  # fmt: skip
        existing = {r.spec: r for r in Rendition.objects.filter(asset_id=asset.pk)}
        for spec in video.SPECS:
            key = video.source_key(sha256=asset.sha256, spec=spec)
            current = existing.get(spec)
            if current is not None and current.source_key == key and not force:
                if job_id is not None:
                    job_advance(job_id=job_id, done=1)
                continue
            out = Path(tmp) / ("poster.jpg" if spec == "poster" else "web.mp4")
            try:
                if spec == "poster":
                    video.poster(str(source), str(out), duration=info.duration_seconds)
                else:
                    video.web_rendition(str(source), str(out))
                made = video.probe(str(out)) if spec == "web" else None
            except video.VideoToolError as exc:
                logger.warning("video rendition %s of asset %s failed: %s", spec, asset.pk, exc)
                if job_id is not None:
                    job_advance(job_id=job_id, failed=1, errors=[ItemError(item=spec, message=str(exc))])
                continue
            if made is None:
                from PIL import Image

                with Image.open(out) as img:
                    width, height = img.size
            else:
                width, height = made.width or 0, made.height or 0
            rendition = current or Rendition(workspace_id=asset.workspace_id, asset_id=asset.pk, spec=spec)
            old_name = current.file.name if current is not None else None
            with open(out, "rb") as fh:
                rendition.file.save(out.name, File(fh), save=False)
            rendition.width, rendition.height = width, height
            rendition.format = "JPEG" if spec == "poster" else "MP4"
            rendition.size_bytes, rendition.source_key = out.stat().st_size, key
            rendition.save()
            if old_name and old_name != rendition.file.name:
                rendition.file.storage.delete(old_name)
            built += 1
            if job_id is not None:
                job_advance(job_id=job_id, done=1)
    if job_id is not None:
        job_finish(job_id=job_id, result={"built": built})
    return built


def rendition_get_or_build(*, asset: MediaAsset, spec: str, wait: float | None = None) -> Rendition:
    """On-demand rendition for a request: returns the current one or builds it under the shared lock.
    Video renditions are never built in a request: the current one, or `RenditionBusy` until the worker
    has built it.

    Raises `RenditionBusy` when another builder holds the lock for longer than `wait` seconds."""
    if asset.kind == AssetKind.VIDEO and spec in video.SPECS:
        current = Rendition.objects.filter(asset_id=asset.pk, spec=spec).first()
        if current is None:
            raise RenditionBusy(f"The {spec} rendition of asset {asset.pk} is built by the worker.")
        return current
    if spec not in rd.ALL_SPECS:
        raise ValidationError({"spec": f"Unknown rendition spec {spec!r}."})
    if not asset.is_raster:
        raise AssetStateError("Only raster images have renditions.")
    if wait is None:
        wait = float(getattr(settings, "MEDIA_RENDITION_WAIT_SECONDS", 30))
    rendition, _ = _build_one(asset, spec, wait=wait)
    return rendition


# --- suggestions ----------------------------------------------------------------------------------------


def _measure_reencode(asset: MediaAsset) -> int | None:
    try:
        with asset.file.open("rb") as source:
            return rd.reencode_size(source)
    except (OSError, ValueError):
        return None


def _photographic(asset: MediaAsset) -> bool:
    """Many distinct colours in a small sample: a photo, which PNG compresses poorly."""
    from PIL import Image

    from .imaging import to_display

    try:
        with asset.file.open("rb") as source, Image.open(source) as img:
            display = to_display(img, min_size=(128, 128))
            display.thumbnail((128, 128))
            colours = display.convert("RGB").getcolors(maxcolors=128 * 128)
    except (OSError, ValueError):
        return False
    return colours is None or len(colours) > 2048


def _library_ctr_medians(library_id: int) -> dict[str, float]:
    rows = (
        AssetPerformance.objects.filter(asset__library_id=library_id)
        .values("asset_id", "channel")
        .annotate(impr=Sum("impressions"), clk=Sum("clicks"))
        .filter(impr__gte=MIN_IMPRESSIONS)
    )
    by_channel: dict[str, list[float]] = {}
    for row in rows:
        by_channel.setdefault(row["channel"], []).append(row["clk"] / row["impr"])
    return {ch: statistics.median(values) for ch, values in by_channel.items() if len(values) >= 2}


def asset_compute_suggestions(
    *, asset: MediaAsset, medians: dict[str, float] | None = None
) -> list[Suggestion]:
    """Recompute an asset's suggestions from measured numbers. Dismissed/done ones stay dismissed/done."""
    now = timezone.now()
    found: dict[str, tuple[str, dict, int | None]] = {}
    if asset.kind == AssetKind.IMAGE:
        if not asset.alt_text.strip():
            found[SuggestionCode.MISSING_ALT] = ("Add alt text so the image is accessible.", {}, None)
        if asset.size_bytes >= OVERSIZED_MIN_BYTES:
            reencoded = _measure_reencode(asset)
            if reencoded is not None and reencoded <= asset.size_bytes * (1 - OVERSIZED_MIN_SAVING):
                saving = asset.size_bytes - reencoded
                found[SuggestionCode.OVERSIZED] = (
                    f"Re-encoding as WEBP saves {saving * 100 // asset.size_bytes}% ({saving:,} bytes).",
                    {"original_bytes": asset.size_bytes, "reencoded_bytes": reencoded, "format": "WEBP"},
                    saving,
                )
        if asset.format == "PNG" and not asset.has_alpha and _photographic(asset):
            found[SuggestionCode.CONVERT_FORMAT] = (
                "Photographic PNG without transparency: JPEG or WEBP is far smaller.", {"from": "PNG", "to": "WEBP"},
                None,
            )  # fmt: skip
        if asset.width and asset.height:
            misses = []
            for name in rd.CHANNEL_SPECS:
                spec = rd.SPECS[name]
                ratio = spec.width / spec.height
                off_ratio = abs(asset.aspect_ratio - ratio) / ratio > SPEC_TOLERANCE
                too_small = asset.width < spec.width or asset.height < spec.height
                if off_ratio or too_small:
                    misses.append(
                        {"spec": name, "size": f"{spec.width}x{spec.height}", "too_small": too_small}
                    )
            if len(misses) == len(rd.CHANNEL_SPECS):
                found[SuggestionCode.DIMENSIONS] = (
                    f"{asset.width}×{asset.height} matches no channel spec; create cropped renditions.",
                    {"misses": misses}, None,
                )  # fmt: skip
    if asset.status != AssetStatus.ARCHIVED:
        reference = asset.last_used_at or asset.created_at
        if reference and reference < now - dt.timedelta(days=UNUSED_AFTER_DAYS):
            found[SuggestionCode.UNUSED] = (
                f"Not used since {reference:%Y-%m-%d}; archive it or put it to work.", {"since": reference.isoformat()},
                None,
            )  # fmt: skip
    medians = _library_ctr_medians(asset.library_id) if medians is None else medians
    perf = (
        AssetPerformance.objects.filter(asset=asset).values("channel")
        .annotate(impr=Sum("impressions"), clk=Sum("clicks"))
    )  # fmt: skip
    low = []
    for row in perf:
        median = medians.get(row["channel"])
        if median and row["impr"] >= MIN_IMPRESSIONS and row["clk"] / row["impr"] < median * LOW_CTR_RATIO:
            low.append(
                {
                    "channel": row["channel"],
                    "ctr": round(row["clk"] / row["impr"], 5),
                    "median": round(median, 5),
                }
            )
    if low:
        worst = low[0]
        found[SuggestionCode.LOW_CTR] = (
            f"CTR on {worst['channel']} is {worst['ctr']:.2%} against a library median of {worst['median']:.2%}: "
            "consider a design refresh.", {"channels": low}, None,
        )  # fmt: skip

    with transaction.atomic():
        current = {s.code: s for s in Suggestion.objects.select_for_update().filter(asset=asset)}
        for code, suggestion in current.items():
            if code not in found and suggestion.status == SuggestionStatus.OPEN:
                suggestion.delete()
        for code, (message, details, saving) in found.items():
            row = current.get(code)
            if row is None:
                Suggestion.objects.create(
                    workspace_id=asset.workspace_id, asset=asset, code=code, message=message[:300], details=details,
                    saving_bytes=saving, computed_at=now,
                )  # fmt: skip
            else:
                row.message, row.details, row.saving_bytes, row.computed_at = (
                    message[:300],
                    details,
                    saving,
                    now,
                )
                row.save(update_fields=["message", "details", "saving_bytes", "computed_at"])
    return list(Suggestion.objects.filter(asset=asset))


def library_compute_suggestions(*, library: MediaLibrary) -> int:
    medians = _library_ctr_medians(library.pk)
    count = 0
    for asset in MediaAsset.objects.filter(library=library).exclude(status=AssetStatus.ARCHIVED).iterator():
        count += len(asset_compute_suggestions(asset=asset, medians=medians))
    return count


def suggestions_request_refresh(*, workspace: Workspace, by=None) -> Job:
    """Recompute every library's suggestions in the background (re-encoding to measure savings is slow)."""
    from .tasks import compute_suggestions_task

    with transaction.atomic():
        libraries = list(MediaLibrary.objects.for_workspace(workspace).values_list("pk", flat=True))
        job = job_start(workspace=workspace, kind="media.suggestions", total=len(libraries), by=by,
                        label="Recompute media suggestions")  # fmt: skip
        job_id = job.pk
        job_enqueue(compute_suggestions_task, job_id, job_id=job_id)
    return job


def suggestions_refresh_all() -> int:
    """Beat entry point: one refresh job per workspace that has a media library. Returns how many."""
    workspace_ids = MediaLibrary.objects.values_list("workspace_id", flat=True).distinct()
    count = 0
    for workspace in Workspace.objects.filter(pk__in=workspace_ids):
        suggestions_request_refresh(workspace=workspace)
        count += 1
    return count


def suggestions_refresh(*, job_id: int) -> int:
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not job_mark_running(job_id=job_id):
        return 0
    # A retried or redelivered attempt recomputes every library: its progress starts over, not on top.
    Job.objects.filter(pk=job_id).update(done=0, failed=0)
    total = 0
    for library in MediaLibrary.objects.for_workspace(job.workspace_id):
        total += library_compute_suggestions(library=library)
        job_advance(job_id=job_id, done=1)
    job_finish(job_id=job_id, result={"suggestions": total})
    return total


@transaction.atomic
def suggestion_dismiss(*, suggestion: Suggestion, by=None) -> Suggestion:
    suggestion.status = SuggestionStatus.DISMISSED
    suggestion.resolved_by, suggestion.resolved_at = _user(by), timezone.now()
    suggestion.save(update_fields=["status", "resolved_by", "resolved_at"])
    audit_record(
        workspace=suggestion.asset.workspace,
        actor=by,
        verb="media.suggestion.dismissed",
        target=suggestion.asset,
        changes={"code": suggestion.code},
    )
    return suggestion


@transaction.atomic
def suggestion_act(*, suggestion: Suggestion, by=None) -> Job:
    """Act on an actionable suggestion: build the optimized rendition or the channel crops."""
    if not suggestion.actionable:
        raise AssetStateError(
            "This suggestion needs a person (e.g. alt text, a design refresh), not an action."
        )
    specs = [rd.OPTIMIZED.name] if suggestion.code != SuggestionCode.DIMENSIONS else rd.CHANNEL_SPECS
    job = asset_request_renditions(asset=suggestion.asset, by=by, specs=specs)
    Suggestion.objects.filter(pk=suggestion.pk).update(
        status=SuggestionStatus.DONE, resolved_by=_user(by), resolved_at=timezone.now()
    )
    audit_record(
        workspace=suggestion.asset.workspace,
        actor=by,
        verb="media.suggestion.acted",
        target=suggestion.asset,
        changes={"code": suggestion.code, "job": job.pk},
    )
    return job


__all__ = [
    "AssetStateError",
    "RenditionBusy",
    "UploadRejected",
    "UploadResult",
    "asset_approve",
    "asset_archive",
    "asset_attach",
    "asset_build_renditions",
    "asset_compute_suggestions",
    "asset_delete",
    "asset_publish",
    "asset_record_performance",
    "asset_record_usage",
    "asset_refresh_fingerprint",
    "asset_reject",
    "asset_request_renditions",
    "asset_update",
    "asset_upload",
    "library_compute_suggestions",
    "library_archive",
    "library_create",
    "library_unarchive",
    "rendition_get_or_build",
    "rendition_specs",
    "suggestion_act",
    "suggestion_dismiss",
]
