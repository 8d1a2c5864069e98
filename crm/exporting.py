"""Streaming CSV export with spreadsheet-formula injection neutralised."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from .models import Contact

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = [
    "email",
    "first_name",
    "last_name",
    "title",
    "phone",
    "company",
    "company_domain",
    "source",
    "lifecycle",
    "verification",
    "engagement_score",
    "engagement_tier",
    "tags",
    "created_at",
]


def neutralize_cell(value) -> str:
    """Prefix a quote when a spreadsheet could read the cell as a formula, also behind leading
    whitespace/control characters (`  =cmd|…`, `\\x00=…`)."""
    text = "" if value is None else str(value)
    stripped = text.lstrip(" \t\r\n\x00\x0b\x0c\x1c\x1d\x1e\x1f\u00a0")
    if text.startswith(FORMULA_TRIGGERS) or (stripped and stripped[0] in "=+-@"):
        return "'" + text
    return text


class _Echo:
    def write(self, value):
        return value


def csv_lines(rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([neutralize_cell(v) for v in row])


def contact_rows(queryset: QuerySet[Contact], custom_keys: list[str] | None = None) -> Iterator[list]:
    custom_keys = custom_keys or []
    yield [*EXPORT_COLUMNS, *[f"custom.{k}" for k in custom_keys]]
    qs = queryset.prefetch_related(None).select_related("company").order_by("pk")
    last = 0
    while True:  # keyset pagination: constant memory, one query per 2,000 rows, tags prefetched per page
        page = list(qs.filter(pk__gt=last).prefetch_related("tags")[:2000])
        if not page:
            return
        for c in page:
            yield [
                c.email,
                c.first_name,
                c.last_name,
                c.title,
                c.phone,
                c.company.name if c.company else "",
                c.company.domain if c.company else "",
                c.source,
                c.lifecycle,
                c.verification,
                c.engagement_score,
                c.engagement_tier,
                ";".join(sorted(t.name for t in c.tags.all())),
                c.created_at.isoformat(),
                *[(c.custom or {}).get(k, "") for k in custom_keys],
            ]
        last = page[-1].pk


def streaming_csv_response(rows: Iterable[Iterable], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def import_errors_response(run) -> StreamingHttpResponse:
    from .importing import import_errors_rows

    return streaming_csv_response(import_errors_rows(run), f"import-{run.pk}-errors.csv")
