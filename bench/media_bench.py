"""Media benchmarks: rendition throughput vs a raw Pillow loop; upload time and peak RSS of web and worker for
a 50 MP JPEG and for the largest accepted image (RGBA PNG at the pixel cap); duplicate lookup scaling.

    .venv/bin/python bench/media_bench.py [renditions|upload|lookup|all] [--images N] [--sizes 1000,10000,100000]

Each part runs against a throw-away SQLite database and MEDIA_ROOT in a temporary directory; the upload
part runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(tmp: Path) -> None:
    os.environ.setdefault("AICMO_ENV", "dev")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DJANGO_SETTINGS_MODULE"] = "aicmo.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def photo_jpeg(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """A photo-like JPEG (gradient, shapes, grain) generated with Pillow."""
    import random

    from PIL import Image, ImageDraw

    rnd = random.Random(seed)
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = rnd.randrange(width), rnd.randrange(height), rnd.randrange(width // 20, width // 5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rnd.randrange(256) for _ in range(3)))
    grain = Image.effect_noise((width // 4, height // 4), 25).resize((width, height)).convert("RGB")
    img = Image.blend(img, grain, 0.15)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


# --- renditions -----------------------------------------------------------------------------------------


def bench_renditions(n_images: int) -> dict:
    from PIL import Image

    from media import renditions as rd

    images = [photo_jpeg(4000, 3000, seed) for seed in range(n_images)]  # 12 MP camera-sized JPEGs
    specs = list(rd.SPECS.values())

    def raw_loop() -> float:
        start = time.perf_counter()
        for data in images:
            for spec in specs:
                img = Image.open(io.BytesIO(data))
                img.draft("RGB", (spec.width, spec.height))
                img.thumbnail((spec.width, spec.height), Image.Resampling.LANCZOS)
                img.save(io.BytesIO(), "WEBP", quality=82, method=4)
        return time.perf_counter() - start

    def ours() -> float:
        start = time.perf_counter()
        for data in images:
            for spec in specs:
                rd.render(io.BytesIO(data), spec, fmt="WEBP")
        return time.perf_counter() - start

    def ours_batch() -> float:
        """What asset_build_renditions does: decode once per image, render every spec from it."""
        start = time.perf_counter()
        for data in images:
            img = rd.prepare(io.BytesIO(data), specs)
            for spec in specs:
                rd.render_prepared(img, spec, fmt="WEBP")
        return time.perf_counter() - start

    raw_loop(), ours(), ours_batch()  # warm-up: codecs, caches
    raw_times, our_times, batch_times = [], [], []
    for _ in range(3):  # interleaved, best of three: the machine is shared, so noise hits all sides alike
        raw_times.append(raw_loop())
        our_times.append(ours())
        batch_times.append(ours_batch())
    raw, our, batch = min(raw_times), min(our_times), min(batch_times)
    renders = len(images) * len(specs)
    return {
        "images": len(images),
        "renditions": renders,
        "raw_pillow_s": round(raw, 3),
        "ours_render_s": round(our, 3),
        "raw_per_s": round(renders / raw, 1),
        "ours_per_s": round(renders / our, 1),
        "ratio_ours_vs_raw": round(raw / our, 3),
        "ours_batch_s": round(batch, 3),
        "ratio_batch_vs_raw": round(raw / batch, 3),
    }


def bench_service_renditions(n_images: int, tmp: Path) -> dict:
    """The full service path (storage, DB rows, Redis lock) on the same kind of images."""
    from django.core.files.base import ContentFile
    from django.test.utils import override_settings

    from aicmo.localredis import free_port, start_redis
    from aicmo.models import Workspace
    from media import services

    server = start_redis(port=free_port(), data_dir=tmp / "redis", persist=False)
    try:
        with override_settings(REDIS_URL=server.url):
            ws, _ = Workspace.objects.get_or_create(slug="bench-renditions", defaults={"name": "Bench"})
            library = services.library_create(workspace=ws, name=f"Renditions {time.time()}")
            assets = [
                services.asset_upload(
                    library=library,
                    file=ContentFile(photo_jpeg(4000, 3000, 100 + i), name="p.jpg"),
                    request_renditions=False,
                ).asset  # fmt: skip
                for i in range(n_images)
            ]
            start = time.perf_counter()
            built = sum(services.asset_build_renditions(asset_id=a.pk) for a in assets)
            elapsed = time.perf_counter() - start
            start = time.perf_counter()
            rebuilt = sum(services.asset_build_renditions(asset_id=a.pk) for a in assets)
            rerun = time.perf_counter() - start
    finally:
        server.stop()
    return {"built": built, "service_s": round(elapsed, 3), "service_per_s": round(built / elapsed, 1),
            "idempotent_rerun_built": rebuilt, "idempotent_rerun_s": round(rerun, 3)}  # fmt: skip


# --- upload and worker: time and peak RSS ---------------------------------------------------------------
#
# Three fresh processes per image, so each peak RSS is its own: the raw Pillow baseline, the web side
# (asset_upload, as the upload view calls it, with a real Redis as broker) and the worker side
# (asset_build_renditions, as build_renditions_task runs it).


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child_env(tmp: str) -> None:
    Path(tmp).mkdir(parents=True, exist_ok=True)
    setup_django(Path(tmp))


def _baseline_child(path: str) -> None:
    """Raw Pillow: open + draft (JPEG) + load — the least any validation of these bytes can cost."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    start = time.perf_counter()
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (256, 256))
        img.load()
    print(
        json.dumps(
            {"raw_open_draft_load_s": round(time.perf_counter() - start, 3), "peak_rss_mb": _peak_mb()}
        )
    )


def _web_child(path: str, tmp: str, redis_url: str) -> None:
    os.environ["REDIS_URL"] = os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = (
        redis_url
    )
    _child_env(tmp)
    from django.core.files.uploadedfile import TemporaryUploadedFile

    from aicmo.models import Workspace
    from media import services

    ws, _ = Workspace.objects.get_or_create(slug="bench-upload", defaults={"name": "Bench"})
    library = services.library_create(workspace=ws, name=f"Upload {time.time()}")
    size = os.path.getsize(path)
    upload = TemporaryUploadedFile(Path(path).name, "application/octet-stream", size, None)
    with open(path, "rb") as src:  # what Django's upload handler does for a large body: a temp file on disk
        while chunk := src.read(1 << 20):
            upload.write(chunk)
    upload.seek(0)
    setup_mb = _peak_mb()
    start = time.perf_counter()
    result = services.asset_upload(
        library=library, file=upload
    )  # renditions + suggestions enqueued on commit
    upload_s = time.perf_counter() - start
    asset = result.asset
    print(json.dumps({"asset_id": asset.pk, "megapixels": round(asset.width * asset.height / 1e6, 1),
                      "mode": asset.color_mode, "file_mb": round(size / 1e6, 1), "upload_s": round(upload_s, 3),
                      "rss_after_setup_mb": setup_mb, "peak_rss_mb": _peak_mb()}))  # fmt: skip


def _worker_child(asset_id: str, tmp: str, redis_url: str) -> None:
    os.environ["REDIS_URL"] = os.environ["CELERY_BROKER_URL"] = os.environ["CELERY_RESULT_BACKEND"] = (
        redis_url
    )
    _child_env(tmp)
    from media import renditions as rd
    from media import services

    setup_mb = _peak_mb()
    start = time.perf_counter()
    built = services.asset_build_renditions(asset_id=int(asset_id))  # what the worker task runs
    build_s = time.perf_counter() - start
    assert built == len(rd.SPECS), built
    print(json.dumps({"build_all_renditions_s": round(build_s, 3), "rss_after_setup_mb": setup_mb,
                      "peak_rss_mb": _peak_mb()}))  # fmt: skip


def _run(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_upload(tmp: Path) -> dict:
    from aicmo.localredis import free_port, start_redis

    images = {
        "jpeg_50mp": tmp / "50mp.jpg",
        "png_rgba_at_cap": tmp / "cap.png",
        "webp_rgba_at_cap": tmp / "cap.webp",
    }
    for name, path in images.items():  # generated in their own processes: not counted against anyone
        subprocess.run([sys.executable, __file__, "_make", name, str(path)], check=True)
    server = start_redis(port=free_port(), data_dir=tmp / "redis", persist=False)
    report: dict = {}
    try:
        for name, path in images.items():
            work = str(tmp / f"upload-{name}")
            baseline = min(
                (_run("_baseline", str(path)) for _ in range(3)), key=lambda r: r["raw_open_draft_load_s"]
            )
            webs = [_run("_web", str(path), f"{work}-{i}", server.url) for i in range(3)]
            web = min(webs, key=lambda r: r["upload_s"])
            worker = _run("_worker", str(web["asset_id"]), f"{work}-{webs.index(web)}", server.url)
            report[name] = {
                "megapixels": web["megapixels"], "mode": web["mode"], "file_mb": web["file_mb"],
                "raw_open_draft_load_s": baseline["raw_open_draft_load_s"], "upload_s": web["upload_s"],
                "upload_vs_raw": round(web["upload_s"] / baseline["raw_open_draft_load_s"], 2),
                "web_peak_rss_mb": web["peak_rss_mb"], "web_rss_after_setup_mb": web["rss_after_setup_mb"],
                "build_all_renditions_s": worker["build_all_renditions_s"],
                "worker_peak_rss_mb": worker["peak_rss_mb"], "worker_rss_after_setup_mb": worker["rss_after_setup_mb"],
            }  # fmt: skip
    finally:
        server.stop()
    return report


def _make_child(name: str, path: str) -> None:
    os.environ.setdefault("AICMO_ENV", "dev")
    os.environ["DJANGO_SETTINGS_MODULE"] = "aicmo.settings"
    import django

    django.setup()
    if name == "jpeg_50mp":
        Path(path).write_bytes(photo_jpeg(8660, 5774, 7, quality=85))
        return
    from PIL import Image

    from media.imaging import max_pixels

    fmt = "PNG" if name.startswith("png") else "WEBP"
    width = 8800 if fmt == "PNG" else 4600
    height = max_pixels(fmt) // width  # the largest accepted image of the format: RGBA, at its cap
    img = Image.open(io.BytesIO(photo_jpeg(width // 4, height // 4, 3))).resize((width, height))
    img.putalpha(Image.linear_gradient("L").resize((width, height)))
    img.save(path, fmt, **({"compress_level": 1} if fmt == "PNG" else {"method": 0, "quality": 80}))


# --- duplicate lookups ----------------------------------------------------------------------------------


def bench_lookup(sizes: list[int]) -> list[dict]:
    import random

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from aicmo.models import Workspace
    from media import selectors, services
    from media.models import MediaAsset, MediaLibrary

    rnd = random.Random(1)
    ws, _ = Workspace.objects.get_or_create(slug="bench-lookup", defaults={"name": "Bench"})
    library, _ = MediaLibrary.objects.get_or_create(workspace=ws, name="Lookup")
    results = []
    have = 0
    for target in sizes:
        batch = []
        for i in range(have, target):
            value = rnd.getrandbits(64)
            b = services.phash_bands(value)
            batch.append(MediaAsset(
                workspace=ws, library=library, kind="image", mime_type="image/jpeg", sha256=f"{i:064x}",
                file=f"bench/{i}.jpg", phash=f"{value:016x}", phash_b0=b[0], phash_b1=b[1], phash_b2=b[2],
                phash_b3=b[3], size_bytes=1000,
            ))  # fmt: skip
        MediaAsset.objects.bulk_create(batch, batch_size=2000)
        have = target
        probes = list(MediaAsset.objects.filter(workspace=ws).order_by("?")[:200])
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            for probe in probes:
                selectors.near_duplicates(asset=probe)
            near_ms = (time.perf_counter() - start) * 1000 / len(probes)
        near_queries = len(ctx) / len(probes)
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            for probe in probes:
                MediaAsset.objects.for_workspace(ws).filter(sha256=probe.sha256).first()
            exact_ms = (time.perf_counter() - start) * 1000 / len(probes)
        results.append({"assets": target, "near_dup_ms": round(near_ms, 3), "near_dup_queries": near_queries,
                        "exact_dup_ms": round(exact_ms, 3), "exact_dup_queries": len(ctx) / len(probes)})  # fmt: skip
    return results


def main() -> None:
    children = {
        "_make": _make_child,
        "_baseline": _baseline_child,
        "_web": _web_child,
        "_worker": _worker_child,
    }
    if len(sys.argv) > 1 and sys.argv[1] in children:
        return children[sys.argv[1]](*sys.argv[2:])
    parser = argparse.ArgumentParser()
    parser.add_argument("part", nargs="?", default="all", choices=["renditions", "upload", "lookup", "all"])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        setup_django(tmp)
        report: dict = {}
        if args.part in ("renditions", "all"):
            report["renditions"] = bench_renditions(args.images)
            report["renditions_service"] = bench_service_renditions(args.images, tmp)
        if args.part in ("upload", "all"):
            report["upload"] = bench_upload(tmp)
        if args.part in ("lookup", "all"):
            report["lookup"] = bench_lookup([int(s) for s in args.sizes.split(",")])
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
