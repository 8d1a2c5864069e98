"""Serving user media safely: never sniffed, raster images inline, everything else as an attachment."""

from __future__ import annotations

from django.http import FileResponse

INLINE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"}


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
    fmt = rendition.format.lower()
    return file_response(
        rendition.file, content_type=f"image/{fmt}", filename=f"{rendition.asset_id}-{rendition.spec}.{fmt}"
    )
