"""Video derivatives with ffmpeg/ffprobe (worker only): metadata, a poster frame and an H.264 web rendition.

ffmpeg is optional: `available()` says whether both binaries are on PATH (Debian's `ffmpeg` package; `.ci/run`
installs it). Every call takes paths and an argument list, never a shell string.
"""

from __future__ import annotations

import json
import shutil
import subprocess  # noqa: S404 - argument lists only, never a shell
from dataclasses import dataclass
from pathlib import Path

SPECS = ("poster", "web")
SPEC_VERSION = 1
WEB_MAX = (1280, 720)  # the web rendition fits inside this box (never upscaled), even dimensions for H.264
PROBE_TIMEOUT = 60
ENCODE_TIMEOUT = 20 * 60


class VideoToolError(Exception):
    """ffmpeg/ffprobe failed on this file (corrupt, unsupported codec) or timed out. Message is for operators."""


@dataclass(frozen=True)
class VideoInfo:
    duration_seconds: float | None
    codec: str  # ffprobe codec_name of the first video stream, e.g. "h264", "vp9"
    width: int | None
    height: int | None


def available() -> bool:
    return bool(shutil.which("ffmpeg") and shutil.which("ffprobe"))


def _run(argv: list[str], timeout: int) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, text=True)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise VideoToolError(f"{Path(argv[0]).name} timed out after {timeout} s") from exc
    except OSError as exc:
        raise VideoToolError(f"{Path(argv[0]).name} could not run: {exc}") from exc
    if out.returncode != 0:
        raise VideoToolError(f"{Path(argv[0]).name} failed: {out.stderr.strip()[-300:]}")
    return out.stdout


def probe(path: str) -> VideoInfo:
    """Duration (container, seconds), codec and display size (rotation applied) of the first video stream."""
    raw = _run(
        [shutil.which("ffprobe") or "ffprobe", "-v", "error", "-print_format", "json", "-show_format",
         "-show_streams", "-select_streams", "v:0", path],
        PROBE_TIMEOUT,
    )  # fmt: skip
    data = json.loads(raw or "{}")
    streams = data.get("streams") or []
    if not streams:
        raise VideoToolError("ffprobe found no video stream")
    stream = streams[0]
    width, height = stream.get("width"), stream.get("height")
    rotation = 0
    for side in stream.get("side_data_list") or []:
        rotation = int(side.get("rotation", rotation) or 0)
    if width and height and abs(rotation) % 180 == 90:
        width, height = height, width
    duration = (data.get("format") or {}).get("duration") or stream.get("duration")
    return VideoInfo(
        duration_seconds=round(float(duration), 3) if duration not in (None, "N/A") else None,
        codec=str(stream.get("codec_name") or ""),
        width=int(width) if width else None,
        height=int(height) if height else None,
    )


def poster(path: str, out: str, *, duration: float | None) -> None:
    """One JPEG frame at 1 s (or the middle of a shorter clip), full display size."""
    at = 1.0 if duration is None or duration > 2 else max(0.0, (duration or 0) / 2)
    _run(
        [shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", "-ss", f"{at:.3f}", "-i", path,
         "-frames:v", "1", "-q:v", "3", out],
        PROBE_TIMEOUT,
    )  # fmt: skip


def web_rendition(path: str, out: str) -> None:
    """H.264 (yuv420p, CRF 23) + AAC in MP4 with the index up front (`+faststart`), inside `WEB_MAX`."""
    box_w, box_h = WEB_MAX
    scale = (
        f"scale='min({box_w},iw)':'min({box_h},ih)':force_original_aspect_ratio=decrease,"
        "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    )
    _run(
        [shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", "-i", path, "-map", "0:v:0", "-map", "0:a:0?",
         "-vf", scale, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", out],
        ENCODE_TIMEOUT,
    )  # fmt: skip


def source_key(*, sha256: str, spec: str) -> str:
    return f"video{SPEC_VERSION}:{sha256[:16]}:{spec}"
