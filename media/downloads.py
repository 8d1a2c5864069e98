"""Serving user media safely: never sniffed, raster images inline, everything else as an attachment."""

from __future__ import annotations

from django.http import FileResponse

INLINE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "video/mp4"}
RENDITION_TYPES = {"WEBP": ("image/webp", "webp"), "AVIF": ("image/avif", "avif"), "JPEG": ("image/jpeg", "jpg"),
                   "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif"), "MP4": ("video/mp4", "mp4")}  # fmt: skip


def file_response(field_file, *, content_type: str, filename: str) -> FileResponse:
    """A streamed response with `nosniff`; SVG and non-images are downloads with a locked-down CSP."""
    inline = content_type in INLINE_TYPES
    response = FileResponse(
        field_file.open("rb"),
        content_type=content_type,
        as_attachment=not inline,
        filename=filename or "download",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def asset_response(asset):
    return file_response(asset.file, content_type=asset.mime_type, filename=asset.filename or "download")


def rendition_response(rendition):
    content_type, ext = RENDITION_TYPES.get(rendition.format, ("application/octet-stream", "bin"))
    return file_response(
        rendition.file, content_type=content_type, filename=f"{rendition.asset_id}-{rendition.spec}.{ext}"
    )
