"""Upload inspection: the type comes from the bytes, never from the name or the Content-Type.

`inspect_upload` reads the file (streaming for the hash), decides the kind, enforces the allowlist and the
size limit of that kind, extracts metadata and the perceptual hash, and returns what should be stored.
It writes nothing; a rejected file raises `UploadRejected` and leaves no trace.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import struct
import subprocess  # noqa: S404 - ffprobe, argument list only, never a shell
import warnings
import wave
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, tostring  # noqa: S405 - serializing our own sanitized tree

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from django.conf import settings
from PIL import Image, UnidentifiedImageError

from . import imaging
from .fingerprints import HASH_INPUT, Fingerprint, fingerprint
from .models import AssetKind

CHUNK = 1024 * 1024
MB = 1024 * 1024

DEFAULT_MAX_BYTES = {
    AssetKind.IMAGE: 40 * MB,
    AssetKind.GIF: 20 * MB,
    AssetKind.SVG: 2 * MB,
    AssetKind.VIDEO: 500 * MB,
    AssetKind.AUDIO: 100 * MB,
    AssetKind.DOCUMENT: 50 * MB,
    AssetKind.OTHER: 10 * MB,
}

RASTER_FORMATS = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
    "WEBP": ("image/webp", ".webp"),
    "GIF": ("image/gif", ".gif"),
    "AVIF": ("image/avif", ".avif"),
}

# Every media type `inspect_upload` can store, as the upload's schema publishes them (the multipart
# ``file`` part's ``contentType``); tests/media/test_validation.py holds it to this module's literals.
ACCEPTED_MEDIA_TYPES = (
    *(mime for mime, _ in RASTER_FORMATS.values()),
    "image/svg+xml",
    "application/pdf",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/x-msvideo",
    "audio/mp4",
    "audio/mpeg",
    "audio/wav",
    "audio/ogg",
    "audio/flac",
    "text/plain",
)


class UploadRejected(Exception):
    """The file is refused. `code` is machine-readable; the message is safe to show to the uploader."""

    def __init__(self, code: str, message: str, http_status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass
class Inspection:
    kind: str
    mime_type: str
    extension: str
    sha256: str
    size_bytes: int
    content: bytes | None = None  # replacement content (sanitized SVG); None → store the upload as-is
    sanitized: bool = False
    metadata: dict = field(default_factory=dict)
    fingerprint: Fingerprint | None = None


def max_bytes_for(kind: str) -> int:
    overrides = getattr(settings, "MEDIA_MAX_BYTES", {}) or {}
    return int(overrides.get(kind, DEFAULT_MAX_BYTES[kind]))


def sha256_of(fileobj) -> tuple[str, int]:
    """Streaming SHA-256 and byte count: chunks, never the whole file in memory."""
    digest = hashlib.sha256()
    size = 0
    fileobj.seek(0)
    chunks = fileobj.chunks(CHUNK) if hasattr(fileobj, "chunks") else iter(lambda: fileobj.read(CHUNK), b"")
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    fileobj.seek(0)
    return digest.hexdigest(), size


def _head(fileobj, n: int = 4096) -> bytes:
    fileobj.seek(0)
    data = fileobj.read(n)
    fileobj.seek(0)
    return data


def sniff(head: bytes) -> tuple[str, str, str] | None:
    """(kind, mime, extension) for non-raster containers recognized by magic bytes."""
    if head.startswith(b"%PDF-"):
        return AssetKind.DOCUMENT, "application/pdf", ".pdf"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return AssetKind.AUDIO, "audio/mp4", ".m4a"
        if brand == b"qt  ":
            return AssetKind.VIDEO, "video/quicktime", ".mov"
        if brand in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
            return None  # still images in an ISO container: Pillow decides
        return AssetKind.VIDEO, "video/mp4", ".mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return AssetKind.VIDEO, "video/webm", ".webm"
        return AssetKind.VIDEO, "video/x-matroska", ".mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AssetKind.VIDEO, "video/x-msvideo", ".avi"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return AssetKind.AUDIO, "audio/wav", ".wav"
    if head.startswith(b"OggS"):
        return AssetKind.AUDIO, "audio/ogg", ".ogg"
    if head.startswith(b"fLaC"):
        return AssetKind.AUDIO, "audio/flac", ".flac"
    if head.startswith(b"ID3") or (
        len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06
    ):
        return AssetKind.AUDIO, "audio/mpeg", ".mp3"
    return None


_SVG_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<svg[\s>]", re.S | re.I)


def looks_like_svg(head: bytes) -> bool:
    head = head.removeprefix(b"\xef\xbb\xbf")
    return bool(_SVG_START.match(head)) or (b"<svg" in head[:1024] and head.lstrip()[:1] == b"<")


def _is_plain_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a multi-byte character cut by the head window
    return True


# --- raster images --------------------------------------------------------------------------------------


def _open_image(fileobj) -> Image.Image:
    """Open (header only) with our pixel cap and Pillow's decompression-bomb limit in force (a warning is
    treated as the error)."""
    fileobj.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fileobj)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels() from exc
    if imaging.over_pixel_cap(img):
        raise _too_many_pixels(img.format)
    return img


def _too_many_pixels(fmt: str | None = None) -> UploadRejected:
    return UploadRejected(
        "decompression_bomb",
        f"The image's declared dimensions exceed the safety limit of {imaging.max_pixels(fmt):,} pixels"
        + (f" for {fmt} images." if fmt else "."),
        http_status=413,
    )


def _inspect_raster(fileobj) -> tuple[str, dict, Fingerprint]:
    """Verify, decode once at reduced scale (JPEG `draft`, every byte still decoded so truncation shows),
    read metadata and fingerprint the display image from `imaging.to_display`."""
    try:
        img = _open_image(fileobj)
        fmt = img.format
        if fmt not in RASTER_FORMATS:
            raise UploadRejected("unsupported_type", f"Images in {fmt} format are not accepted.", 415)
        img.verify()
        img = _open_image(fileobj)
        width, height = img.size
        mode = img.mode
        frames = getattr(img, "n_frames", 1)
        orientation = imaging.orientation(img)
        has_alpha = imaging.has_transparency(img)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            display = imaging.to_display(img, min_size=(HASH_INPUT, HASH_INPUT))
        prints = fingerprint(display)
    except UploadRejected:
        raise
    except UnidentifiedImageError as exc:
        raise UploadRejected("unsupported_type", "This file type is not accepted.", 415) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels() from exc
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise UploadRejected("corrupt_file", f"The image is truncated or corrupt ({exc}).", 400) from exc
    finally:
        fileobj.seek(0)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    meta = {
        "width": width,
        "height": height,
        "aspect_ratio": round(width / height, 4) if height else None,
        "format": fmt,
        "color_mode": mode,
        "has_alpha": has_alpha,
        "frame_count": frames,
        "exif_orientation_applied": orientation != 1,
    }
    return fmt, meta, prints


# --- SVG ------------------------------------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
SVG_ELEMENTS = {
    "svg", "g", "defs", "title", "desc", "symbol", "use", "path", "rect", "circle", "ellipse", "line",
    "polyline", "polygon", "text", "tspan", "textPath", "linearGradient", "radialGradient", "stop",
    "clipPath", "mask", "pattern", "marker", "filter", "feGaussianBlur", "feOffset", "feBlend",
    "feColorMatrix", "feFlood", "feComposite", "feMerge", "feMergeNode", "feDropShadow",
}  # fmt: skip
SVG_ATTRIBUTES = {
    "id", "class", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "width", "height",
    "d", "points", "transform", "viewBox", "preserveAspectRatio", "version", "fill", "fill-opacity",
    "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap", "stroke-linejoin",
    "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "clip-path", "clip-rule",
    "mask", "filter", "font-family", "font-size", "font-weight", "font-style", "text-anchor",
    "dominant-baseline", "letter-spacing", "offset", "stop-color", "stop-opacity", "gradientUnits",
    "gradientTransform", "fx", "fy", "spreadMethod", "patternUnits", "patternTransform",
    "markerWidth", "markerHeight", "refX", "refY", "orient", "markerUnits", "dx", "dy", "stdDeviation",
    "in", "in2", "result", "mode", "values", "type", "operator", "flood-color", "flood-opacity",
    "clipPathUnits", "maskUnits", "maskContentUnits", "filterUnits", "primitiveUnits", "href",
    "style", "visibility", "display", "color", "startOffset", "textLength", "lengthAdjust",
}  # fmt: skip
_DANGEROUS_VALUE = re.compile(
    r"(javascript:|vbscript:|data:|expression\s*\(|@import|url\s*\(\s*['\"]?(?!#)|://|^\s*//)", re.I
)


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def sanitize_svg(data: bytes) -> tuple[bytes, bool, dict]:
    """Parse without DTDs/entities/external references and keep only allowlisted elements and attributes.

    Returns (clean bytes, whether anything was removed, metadata). Raises UploadRejected when the document
    cannot be parsed safely or is not an SVG.
    """
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UploadRejected(
            "unsafe_svg", "SVG files with DTDs, entities or external references are refused."
        ) from exc
    except SafeET.ParseError as exc:
        raise UploadRejected("corrupt_file", f"The SVG is not well-formed XML ({exc}).") from exc
    ns, name = _local(root.tag)
    if name != "svg" or ns not in ("", SVG_NS):
        raise UploadRejected("unsupported_type", "The XML document is not an SVG image.", 415)
    removed: list[str] = []

    def clean(el: Element) -> Element:
        out = Element(_local(el.tag)[1])
        for key, value in el.attrib.items():
            a_ns, a_name = _local(key)
            if a_ns not in ("", XLINK_NS) or a_name not in SVG_ATTRIBUTES or a_name.lower().startswith("on"):
                removed.append(f"@{a_name}")
                continue
            if a_name == "href" and not value.startswith("#"):
                removed.append("@href")
                continue
            if _DANGEROUS_VALUE.search(value):
                removed.append(f"@{a_name}")
                continue
            out.set(a_name, value)
        out.text = el.text
        out.tail = el.tail
        for child in el:
            c_ns, c_name = _local(child.tag) if isinstance(child.tag, str) else ("", "")
            if c_ns not in ("", SVG_NS) or c_name not in SVG_ELEMENTS:
                removed.append(c_name or "comment")
                if child.tail and child.tail.strip():
                    if len(out):
                        out[-1].tail = (out[-1].tail or "") + child.tail
                    else:
                        out.text = (out.text or "") + child.tail
                continue
            out.append(clean(child))
        return out

    cleaned = clean(root)
    cleaned.set("xmlns", SVG_NS)
    body = tostring(cleaned, encoding="unicode")
    meta: dict = {"format": "SVG"}
    width, height = _svg_size(cleaned)
    if width and height:
        meta.update(width=width, height=height, aspect_ratio=round(width / height, 4))
    return body.encode("utf-8"), bool(removed), {**meta, "removed": sorted(set(removed))}


def _svg_size(root: Element) -> tuple[int | None, int | None]:
    def num(value: str | None) -> float | None:
        match = re.match(r"\s*([0-9.]+)\s*(px)?\s*$", value or "")
        return float(match.group(1)) if match else None

    width, height = num(root.get("width")), num(root.get("height"))
    if not (width and height) and root.get("viewBox"):
        parts = re.split(r"[\s,]+", root.get("viewBox", "").strip())
        if len(parts) == 4:
            try:
                width, height = float(parts[2]), float(parts[3])
            except ValueError:
                width = height = None
    if width and height:
        return round(width), round(height)
    return None, None


# --- audio / video / documents --------------------------------------------------------------------------


def _ffprobe_duration(fileobj) -> float | None:
    """Duration from ffprobe when it is installed (reads the temporary upload file by path)."""
    exe = shutil.which("ffprobe")
    path = getattr(fileobj, "temporary_file_path", None)
    if not exe or path is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603
            [exe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path()],
            capture_output=True, timeout=30, check=False, text=True,
        )  # fmt: skip
        return round(float(out.stdout.strip()), 3) if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _mp4_duration(fileobj) -> float | None:
    """Read moov/mvhd (timescale, duration) by walking ISO-BMFF boxes; no full read of the file."""
    fileobj.seek(0)
    try:
        end = None
        while True:
            header = fileobj.read(8)
            if len(header) < 8:
                return None
            size, box = struct.unpack(">I4s", header)
            offset = 8
            if size == 1:
                size = struct.unpack(">Q", fileobj.read(8))[0]
                offset = 16
            if box == b"moov":
                end = fileobj.tell() + size - offset
                continue  # descend into moov
            if box == b"mvhd":
                version = fileobj.read(1)[0]
                fileobj.read(3)
                if version == 1:
                    fileobj.read(16)
                    timescale, duration = struct.unpack(">IQ", fileobj.read(12))
                else:
                    fileobj.read(8)
                    timescale, duration = struct.unpack(">II", fileobj.read(8))
                return round(duration / timescale, 3) if timescale else None
            if size < offset or (end is not None and fileobj.tell() > end):
                return None
            fileobj.seek(size - offset, io.SEEK_CUR)
    except (struct.error, IndexError, OSError):
        return None
    finally:
        fileobj.seek(0)


def _wav_duration(fileobj) -> float | None:
    fileobj.seek(0)
    try:
        with wave.open(fileobj) as w:
            return round(w.getnframes() / float(w.getframerate()), 3) if w.getframerate() else None
    except (wave.Error, EOFError, OSError):
        raise UploadRejected("corrupt_file", "The WAV file is corrupt.") from None
    finally:
        fileobj.seek(0)


_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_COUNT = re.compile(rb"/Count\s+(\d+)")


def pdf_page_count(fileobj) -> int | None:
    """Pages counted streaming (objects with /Type /Page); falls back to the page tree's largest /Count."""
    fileobj.seek(0)
    pages, best_count, tail = 0, 0, b""
    saw_eof = False
    for chunk in iter(lambda: fileobj.read(CHUNK), b""):
        window = tail + chunk
        cut = max(0, len(window) - 64)
        pages += sum(1 for m in _PAGE.finditer(window) if m.start() < cut)
        best_count = max([best_count, *(int(m) for m in _COUNT.findall(window))])
        saw_eof = saw_eof or b"%%EOF" in window[-2048:]
        tail = window[cut:]
    pages += len(_PAGE.findall(tail))
    fileobj.seek(0)
    if not saw_eof:
        raise UploadRejected("corrupt_file", "The PDF is truncated (no end-of-file marker).")
    return pages or best_count or None


# --- entry point ----------------------------------------------------------------------------------------


def inspect_upload(fileobj) -> Inspection:
    head = _head(fileobj)
    if not head:
        raise UploadRejected("empty_file", "The file is empty.")
    digest, size = sha256_of(fileobj)
    sniffed = sniff(head)
    svg = sniffed is None and looks_like_svg(head)

    if sniffed is None and not svg:
        try:
            fmt, meta, prints = _inspect_raster(fileobj)
        except UploadRejected as exc:
            if exc.code != "unsupported_type" or not _is_plain_text(head):
                raise
        else:
            # Animations are one kind whatever the container: GIF, APNG and animated WebP alike.
            kind = AssetKind.GIF if fmt == "GIF" or meta["frame_count"] > 1 else AssetKind.IMAGE
            _check_size(kind, size)
            mime, ext = RASTER_FORMATS[fmt]
            return Inspection(kind, mime, ext, digest, size, metadata=meta, fingerprint=prints)

    if svg:
        _check_size(AssetKind.SVG, size)
        fileobj.seek(0)
        data = fileobj.read(max_bytes_for(AssetKind.SVG) + 1)
        fileobj.seek(0)
        clean, changed, meta = sanitize_svg(data)
        clean_digest = hashlib.sha256(clean).hexdigest() if changed else digest
        return Inspection(
            AssetKind.SVG, "image/svg+xml", ".svg", clean_digest, len(clean) if changed else size,
            content=clean if changed else None, sanitized=changed, metadata=meta,
        )  # fmt: skip

    if sniffed is not None:
        kind, mime, ext = sniffed
        _check_size(kind, size)
        meta: dict = {"format": ext.lstrip(".").upper()}
        if kind == AssetKind.DOCUMENT:
            meta["page_count"] = pdf_page_count(fileobj)
        elif mime == "audio/wav":
            meta["duration_seconds"] = _wav_duration(fileobj)
        else:
            # Videos: header only here (ffprobe runs in the worker with the renditions); audio: ffprobe.
            duration = _ffprobe_duration(fileobj) if kind == AssetKind.AUDIO else None
            if duration is None and ext in (".mp4", ".mov", ".m4a"):
                duration = _mp4_duration(fileobj)
            meta["duration_seconds"] = duration
        return Inspection(kind, mime, ext, digest, size, metadata=meta)

    if _is_plain_text(head):
        _check_size(AssetKind.OTHER, size)
        return Inspection(AssetKind.OTHER, "text/plain", ".txt", digest, size, metadata={"format": "TEXT"})
    raise UploadRejected("unsupported_type", "This file type is not accepted.", 415)


def _check_size(kind: str, size: int) -> None:
    limit = max_bytes_for(kind)
    if size > limit:
        raise UploadRejected(
            "too_large", f"{AssetKind(kind).label} files may be at most {limit // MB} MB (this one is {size:,} bytes).",
            413,
        )  # fmt: skip
