"""CSV downloads of report figures: ``?format=csv`` on every analytics endpoint streams the same rows the
JSON carries (nested values flattened to ``parent.child`` columns, formula cells neutralized)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rest_framework.renderers import BaseRenderer, JSONRenderer

from crm.exporting import streaming_csv_response


class CSVRenderer(BaseRenderer):
    """Selects the CSV answer in content negotiation; views stream it themselves (`csv_download`).
    Errors are never rendered as CSV: `CSVAwareMixin` answers them as JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


def flatten(row: dict, prefix: str = "") -> dict:
    out: dict = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = "/".join("" if v is None else str(v) for v in value)
        else:
            out[name] = value
    return out


def table(rows: Iterable[dict], columns: list[str] | None = None) -> Iterator[list]:
    """Header then values. Columns: given, else the first row's keys (later rows' extra keys appended
    only if they appear in the first row; missing cells empty)."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        yield columns or []
        return
    first = flatten(first)
    header = columns or list(first)
    yield header
    yield [first.get(c, "") for c in header]
    for row in iterator:
        flat = flatten(row)
        yield [flat.get(c, "") for c in header]


def csv_download(rows: Iterable[dict], filename: str, columns: list[str] | None = None):
    return streaming_csv_response(
        ([("" if v is None else v) for v in line] for line in table(rows, columns)), filename
    )


class CSVAwareMixin:
    """Adds the CSV renderer; an error answer asked for as CSV is rendered as the JSON error object."""

    def get_renderers(self):
        return [*super().get_renderers(), CSVRenderer()]

    def wants_csv(self) -> bool:
        return (
            getattr(self.request, "accepted_renderer", None) is not None
            and self.request.accepted_renderer.format == "csv"
        )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            getattr(response, "accepted_renderer", None) is not None
            and response.accepted_renderer.format == "csv"
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return response
