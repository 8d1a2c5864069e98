"""Order-history import: CSV/XLSX of (customer email or customer id, order id, date, amount, currency).

It reuses crm's import machinery — the streaming `RowSource` (encoding and delimiter detection, XLSX,
repeated headers), the content check and the header cleaning — and the core Job for progress, per-row
errors (`JobError`, item ``line N``) and cancel. Rows commit in atomic batches together with the Job's
``params.checkpoint_line``, so a re-run after a crash resumes after the last committed batch.

A customer not in the CRM is created as a contact (through crm's services) when ``create_contacts`` is on,
else the row is an error. An order id already stored with the same details is skipped; with different
details the row is an error (the stored order wins).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime

from aicmo.audit import audit_record
from aicmo.jobs import (
    ItemError,
    JobCancelled,
    failure_is_final,
    job_advance,
    job_check_cancelled,
    job_enqueue,
    job_fail,
    job_finish,
    job_mark_running,
    job_set_total,
    job_start,
)
from aicmo.models import Job, Workspace
from crm import services as crm_services
from crm.importing import SAMPLE_BYTES, RowSource, content_mismatch, file_format_for
from crm.models import Contact
from crm.normalize import InvalidEmail, normalize_email

from .models import Order, OrderSource
from .orders import clean_amount, clean_currency, clean_external_id
from .rollups import workspace_zone

JOB_KIND = "analytics.order_import"
BATCH_SIZE = 2000
FIELDS = ("order_id", "email", "customer_id", "ordered_at", "amount", "currency")
# Header spellings of common shop exports (Shopify, WooCommerce, Stripe) for each field.
ALIASES = {
    "order_id": {"order_id", "order", "order_number", "order_no", "name", "id", "transaction_id"},
    "email": {"email", "customer_email", "billing_email", "e_mail", "email_address"},
    "customer_id": {"customer_id", "contact_id", "customer"},
    "ordered_at": {"ordered_at", "date", "order_date", "created_at", "created", "paid_at", "processed_at"},
    "amount": {"amount", "total", "order_total", "total_price", "revenue", "value"},
    "currency": {"currency", "currency_code", "order_currency"},
}


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def auto_mapping(headers: list[str]) -> dict[str, str]:
    """field → header: the first header whose normalized name is one of the field's spellings."""
    mapping: dict[str, str] = {}
    for target in FIELDS:
        for header in headers:
            if _key(header) in ALIASES[target] and header not in mapping.values():
                mapping[target] = header
                break
    return mapping


def validate_mapping(mapping: dict, headers: list[str], *, has_default_currency: bool) -> dict[str, str]:
    errors = {}
    for target, header in mapping.items():
        if target not in FIELDS:
            errors[target] = f"Unknown field; one of {', '.join(FIELDS)}."
        elif header not in headers:
            errors[target] = f"No column {header!r} in the file."
    for required in ("order_id", "ordered_at", "amount"):
        if required not in mapping:
            errors.setdefault(required, "Map a column to this field.")
    if "email" not in mapping and "customer_id" not in mapping:
        errors["email"] = "Map the customer's email or customer id."
    if "currency" not in mapping and not has_default_currency:
        errors["currency"] = "Map a currency column or give a default currency."
    return errors


def order_import_start(
    *,
    workspace: Workspace,
    fh,
    name: str,
    mapping: dict | None = None,
    create_contacts: bool = False,
    currency: str = "",
    by=None,
    enqueue: bool = True,
) -> Job:
    """Check and store the upload, open the Job and (after commit) queue the import. Bad files and
    mappings raise ValidationError (the API's 400) and store nothing."""
    file_format = file_format_for(name)
    raw = getattr(fh, "file", fh)
    raw.seek(0)
    if reason := content_mismatch(raw.read(SAMPLE_BYTES), file_format):
        raise ValidationError({"file": reason})
    raw.seek(0)
    try:
        headers = RowSource(raw, file_format).headers
    except Exception as exc:  # noqa: BLE001 - any unreadable upload is a 400 for the caller
        raise ValidationError({"file": f"Could not read the file: {exc}"}) from exc
    if not headers:
        raise ValidationError({"file": "The file is empty."})
    if currency:
        currency = clean_currency(currency)
    mapping = {k: v for k, v in (mapping or auto_mapping(headers)).items() if v}
    if errors := validate_mapping(mapping, headers, has_default_currency=bool(currency)):
        raise ValidationError({f"mapping.{k}": v for k, v in errors.items()})
    raw.seek(0)
    stored = default_storage.save(
        f"analytics/imports/{workspace.pk}/{uuid.uuid4().hex}.{file_format}", File(raw)
    )
    try:
        with transaction.atomic():
            job = job_start(
                workspace=workspace,
                kind=JOB_KIND,
                by=by,
                label=f"Order import {name}"[:200],
                params={
                    "file": stored,
                    "format": file_format,
                    "name": name[:255],
                    "mapping": mapping,
                    "create_contacts": bool(create_contacts),
                    "currency": currency,
                    "checkpoint_line": 0,
                },
            )
            audit_record(workspace=workspace, actor=by, verb="analytics.order_import.started", target=job)
            if enqueue:
                from .tasks import order_import_task

                job_enqueue(order_import_task, job.pk, job_id=job.pk)
    except Exception:
        default_storage.delete(stored)  # nothing left in storage without its job
        raise
    return job


@dataclass
class _Batch:
    rows: list[tuple[int, dict]] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    last_line: int = 0


def _error(line: int, column: str, message: str, value: str = "") -> ItemError:
    return ItemError(item=f"line {line}", message=message, details={"column": column, "value": value[:300]})


def _parse_when(value: str, zone) -> datetime:
    """ISO 8601 date-time (naive ones in the workspace zone) or a date (local midnight)."""
    text = value.strip()
    when = parse_datetime(text.replace(" ", "T", 1)) if len(text) > 10 else None
    if when is None:
        day = parse_date(text)
        if day is None:
            raise ValueError
        when = datetime.combine(day, time.min)
    return when if when.tzinfo else when.replace(tzinfo=zone)


def _parse_row(
    line: int, cells: list[str], columns: dict[str, int], params: dict, zone
) -> tuple[dict | None, list]:
    def cell(target: str) -> str:
        index = columns.get(target)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    errors = []
    row: dict = {}
    checks = (
        ("order_id", lambda v: clean_external_id(v)),
        ("amount", lambda v: clean_amount(v)),
        ("currency", lambda v: clean_currency(v or params["currency"])),
    )
    for target, clean in checks:
        try:
            row[target] = clean(cell(target))
        except ValidationError as exc:
            errors.append(_error(line, target, " ".join(exc.messages), cell(target)))
    try:
        row["ordered_at"] = _parse_when(cell("ordered_at"), zone)
    except (ValueError, TypeError):
        errors.append(_error(line, "ordered_at", "Not a date (YYYY-MM-DD or ISO 8601).", cell("ordered_at")))
    email, customer_id = cell("email"), cell("customer_id")
    if customer_id:
        if customer_id.isascii() and customer_id.isdigit() and len(customer_id) < 19:
            row["customer_id"] = int(customer_id)
        else:
            errors.append(_error(line, "customer_id", "Not a contact id.", customer_id))
    elif email:
        try:
            row["email"] = normalize_email(email)
        except InvalidEmail as exc:
            errors.append(_error(line, "email", str(exc), email))
    else:
        errors.append(_error(line, "email", "No customer email or id.", ""))
    return (None if errors else row), errors


def order_import_execute(*, job_id: int) -> int:
    """Run (or resume) the import of the job. Returns the number of rows processed in this call."""
    job = Job.objects.filter(pk=job_id, kind=JOB_KIND).first()
    if job is None or not job_mark_running(job_id=job_id):
        return 0
    try:
        processed = _execute(job)
    except JobCancelled:
        return 0
    except Exception as exc:
        if failure_is_final(exc):
            job_fail(job_id=job_id, message=f"Import stopped: {exc}")
        raise
    job.refresh_from_db()
    job_finish(job_id=job_id, result={**job.result, "file": job.params["name"]})
    return processed


def _execute(job: Job) -> int:
    params = job.params
    zone = workspace_zone(job.workspace_id)
    processed = 0
    with default_storage.open(params["file"], "rb") as stored:
        lines = _count_lines(stored) if params["format"] == "csv" else None
        source = RowSource(stored, params["format"])
        rows = lines - 1 if lines is not None else getattr(source, "estimated_rows", 0)
        job_set_total(job_id=job.pk, total=max(0, rows))
        columns = {t: source.headers.index(h) for t, h in params["mapping"].items() if h in source.headers}
        batch = _Batch()
        for line, cells in source:
            if line <= params.get("checkpoint_line", 0):
                continue
            if not any(c.strip() for c in cells):
                continue
            batch.last_line = line
            row, errors = _parse_row(line, cells, columns, params, zone)
            batch.errors.extend(errors)
            if row is not None:
                batch.rows.append((line, row))
            if len(batch.rows) + len(batch.errors) >= BATCH_SIZE:
                processed += _commit(job, batch)
                batch = _Batch()
        if batch.last_line:
            processed += _commit(job, batch)
    return processed


def _count_lines(fh) -> int:
    """Line breaks in the file: the progress bar's total (a quoted cell with a line break makes it an
    estimate)."""
    total = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    fh.seek(0)
    return total


def _commit(job: Job, batch: _Batch) -> int:
    """One atomic batch: contacts resolved (and created when allowed), orders inserted, counters, errors
    and the checkpoint advanced together."""
    job_check_cancelled(job.pk)
    params = job.params
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        result = dict(locked.result or {})
        errors = list(batch.errors)
        emails = {r["email"] for _, r in batch.rows if "email" in r}
        ids = {r["customer_id"] for _, r in batch.rows if "customer_id" in r}
        contacts = Contact.objects.for_workspace(job.workspace_id)
        by_email = dict(contacts.filter(email__in=emails).values_list("email", "pk"))
        known_ids = set(contacts.filter(pk__in=ids).values_list("pk", flat=True))
        existing = {
            o.external_id: o
            for o in Order.objects.for_workspace(job.workspace_id).filter(
                external_id__in=[r["order_id"] for _, r in batch.rows]
            )
        }
        new: dict[str, Order] = {}
        skipped = created_contacts = 0
        for line, row in batch.rows:
            contact_id = row.get("customer_id")
            if "email" in row:
                contact_id = by_email.get(row["email"])
                if contact_id is None and params["create_contacts"]:
                    contact = crm_services.contact_create(
                        workspace=locked.workspace,
                        data={"email": row["email"]},
                        source="order-import",
                        typed=False,
                    )
                    contact_id = by_email[row["email"]] = contact.pk
                    created_contacts += 1
                if contact_id is None:
                    errors.append(
                        _error(
                            line,
                            "email",
                            "Unknown customer (allow creating contacts to add it).",
                            row["email"],
                        )
                    )
                    continue
            elif contact_id not in known_ids:
                errors.append(
                    _error(line, "customer_id", "No such contact in this workspace.", str(contact_id))
                )
                continue
            order = Order(
                workspace_id=job.workspace_id,
                contact_id=contact_id,
                external_id=row["order_id"],
                ordered_at=row["ordered_at"],
                amount=row["amount"],
                currency=row["currency"],
                source=OrderSource.IMPORT,
            )
            stored = existing.get(order.external_id) or new.get(order.external_id)
            if stored is None:
                new[order.external_id] = order
            elif (stored.contact_id, stored.ordered_at, stored.amount, stored.currency) == (
                order.contact_id,
                order.ordered_at,
                order.amount,
                order.currency,
            ):
                skipped += 1
            else:
                errors.append(
                    _error(
                        line, "order_id", "This order id exists with different details.", order.external_id
                    )
                )
        Order.objects.bulk_create(list(new.values()), batch_size=1000)
        failed = {e.item for e in errors}
        counts = {
            "created": len(new),
            "skipped": skipped,
            "failed": len(failed),
            "contacts_created": created_contacts,
        }
        for key, value in counts.items():
            result[key] = result.get(key, 0) + value
        params = {**locked.params, "checkpoint_line": batch.last_line}
        Job.objects.filter(pk=job.pk).update(params=params, result=result)
        lines = {line for line, _ in batch.rows} | {e.item for e in batch.errors}
        lines = {f"line {x}" if isinstance(x, int) else x for x in lines}
        job_advance(job_id=job.pk, done=len(lines - failed), failed=len(failed), errors=errors)
    job.params = params
    return len(lines)
