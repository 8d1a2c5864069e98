"""Contact import: streaming CSV/XLSX readers, header mapping, batched atomic upserts with a resumable checkpoint.

One service (`import_create` + `import_execute`) sits behind the management command, the API upload, the admin
entry point and the dashboard wizard. Memory is bounded by the batch size, never by the file size.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from aicmo.audit import audit_record
from aicmo.jobs import (
    failure_is_final,
    job_advance,
    job_enqueue,
    job_fail,
    job_finish,
    job_mark_running,
    job_set_total,
    job_start,
)
from aicmo.models import Workspace

from .models import Company, Contact, CustomFieldDefinition, ImportRowError, ImportRun, ImportStatus, Tag
from .normalize import (
    InvalidEmail,
    _coerce_custom,
    domain_clean,
    normalize_email,
    placeholder_domain,
    strip_invisible,
)
from .services.consent import contacts_unsubscribe
from .services.gdpr import erasure_check, erasure_refusal

BATCH_SIZE = 5000
SAMPLE_BYTES = 64 * 1024
POLICIES = ("update", "skip", "fill_blanks")
CORE_TARGETS = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "title",
    "phone",
    "company",
    "company_domain",
    "tags",
    "source",
    "unsubscribed",
)


def _target_fields() -> dict:
    """Target → the model field its value is stored in: row values are checked against these fields' own
    length limits, so a new or resized column is covered without a second table of limits."""
    contact = {
        n: Contact._meta.get_field(n)
        for n in ("email", "first_name", "last_name", "title", "phone", "source")
    }
    return {
        **contact,
        "company": Company._meta.get_field("name"),
        "company_domain": Company._meta.get_field("domain"),
        "tags": Tag._meta.get_field("name"),
    }


TARGET_FIELDS = _target_fields()

SYNONYMS: dict[str, set[str]] = {
    "email": {
        "email",
        "emailaddress",
        "mail",
        "emailid",
        "primaryemail",
        "workemail",
        "businessemail",
        "contactemail",
        "emailaddr",
        "courriel",
        "adressecourriel",
        "adresseemail",
        "adressemail",
        "emailadresse",
        "mailadresse",
        "correo",
        "correoelectronico",
        "direcciondecorreo",
        "direcciondecorreoelectronico",
        "emailaddresse",
    },
    "first_name": {
        "firstname",
        "first",
        "givenname",
        "fname",
        "forename",
        "prenom",
        "vorname",
        "nombre",
        "nombrepila",
    },
    "last_name": {
        "lastname",
        "last",
        "surname",
        "familyname",
        "lname",
        "nom",
        "nachname",
        "familienname",
        "apellido",
        "apellidos",
        "nomdefamille",
    },
    "full_name": {"name", "fullname", "contactname", "displayname"},
    "title": {
        "title",
        "jobtitle",
        "position",
        "jobposition",
        "role",
        "designation",
        "titel",
        "berufsbezeichnung",
        "poste",
        "fonction",
        "cargo",
        "puesto",
    },
    "phone": {
        "phone",
        "phonenumber",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "telephone",
        "tel",
        "workphone",
        "cellphone",
        "directphone",
        "telefon",
        "telefonnummer",
        "handy",
        "mobil",
        "mobiltelefon",
        "portable",
        "telefono",
        "movil",
        "celular",
    },
    "company": {
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "account",
        "accountname",
        "employer",
        "business",
        "firma",
        "firmenname",
        "unternehmen",
        "societe",
        "entreprise",
        "organisme",
        "empresa",
        "compania",
        "organizacion",
    },
    "company_domain": {
        "companydomain",
        "domain",
        "website",
        "companywebsite",
        "url",
        "companyurl",
        "webseite",
        "sitweb",
        "siteweb",
        "sitioweb",
        "dominio",
        "domaine",
    },
    "tags": {
        "tags",
        "tag",
        "labels",
        "label",
        "segments",
        "groups",
        "interests",
        "etiketten",
        "schlagworte",
        "etiquettes",
        "etiquetas",
    },
    "source": {"source", "leadsource", "origin", "quelle", "herkunft", "origine", "fuente", "origen"},
    # An email opt-out as CRM exports write it: Salesforce "Email Opt Out" (API HasOptedOutOfEmail), HubSpot
    # "Unsubscribed from all email", Pipedrive/Zoho "Email opt out", Mailchimp's unsubscribed export.
    "unsubscribed": {
        "unsubscribed",
        "emailoptout",
        "hasoptedoutofemail",
        "optout",
        "optedout",
        "unsubscribedfromallemail",
        "unsubscribedfromemail",
        "emailunsubscribed",
        "donotemail",
        "donotmail",
    },
}

# Values of the "unsubscribed" column: a yes opts the contact out of email; a no or a blank changes
# nothing (only fresh consent lifts an opt-out: crm.services.contact_resubscribe). Compared after
# _norm_header.
OPT_OUT_YES = frozenset(
    {"1", "true", "t", "yes", "y", "x", "unsubscribed", "optedout", "optout", "ja", "oui", "si"}
)
OPT_OUT_NO = frozenset({"", "0", "false", "f", "no", "n", "subscribed", "optedin", "optin", "nein", "non"})


def _norm_header(value: str) -> str:
    """Letters and digits only, accents dropped: "E-Mail" → "email", "Prénom" → "prenom"."""
    decomposed = unicodedata.normalize("NFKD", (value or "").casefold())
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def auto_mapping(headers: list[str], workspace: Workspace | int) -> dict[str, str]:
    """Header → target field. Each target is used once (first matching column wins); unknown headers unmapped."""
    custom = {}
    for d in CustomFieldDefinition.objects.for_workspace(workspace).only("key", "label"):
        custom[_norm_header(d.key)] = f"custom.{d.key}"
        custom[_norm_header(d.label)] = f"custom.{d.key}"
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        key = _norm_header(header)
        target = next((t for t, names in SYNONYMS.items() if key in names), None) or custom.get(key)
        if target and target not in used:
            mapping[header] = target
            used.add(target)
    return mapping


def validate_mapping(mapping: dict, headers: list[str], workspace: Workspace | int) -> dict[str, str]:
    """Errors keyed by header for an explicit mapping (unknown target, missing header, email unmapped)."""
    errors = {}
    keys = set(CustomFieldDefinition.objects.for_workspace(workspace).values_list("key", flat=True))
    seen: set[str] = set()
    for header, target in mapping.items():
        if target and target in seen:
            errors[header] = f"Another column is already mapped to {target!r}."
        seen.add(target)
        if header in errors:
            continue
        if header not in headers:
            errors[header] = "No such column in the file."
        elif (
            target
            and target not in CORE_TARGETS
            and not (target.startswith("custom.") and target[7:] in keys)
        ):
            errors[header] = f"Unknown target field {target!r}."
    if "email" not in mapping.values():
        errors["email"] = "Map one column to email."
    return errors


# ---------------------------------------------------------------- readers


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4 and len(sample) >= SAMPLE_BYTES:
            return "utf-8"  # a multi-byte character cut by the sample boundary
    best = from_bytes(sample, cp_isolation=["utf_8", "utf_16", "cp1252", "latin_1"]).best()
    if best is None or best.encoding in {"ascii"}:
        return "cp1252"
    return best.encoding


def _binary(fh):
    raw = getattr(fh, "file", fh)
    return raw if hasattr(raw, "readable") else fh


class _Unclosable(io.BufferedIOBase):
    """Lets a TextIOWrapper read the stored file without closing it when the wrapper goes away."""

    def __init__(self, raw):
        super().__init__()
        self.raw = raw

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        return self.raw.read(size)

    def read1(self, size=-1):
        return self.raw.read(size)

    def readinto(self, b):
        data = self.raw.read(len(b))
        b[: len(data)] = data
        return len(data)


def _clean_header(value) -> str:
    """A header as a mapping key: no invisible characters at the ends, no NUL (no database text holds one)."""
    return "" if value is None else strip_invisible(str(value)).replace("\x00", "")


def unique_headers(headers: list[str]) -> list[str]:
    """Each column its own name: a repeated header gets its position among its namesakes ("Phone (2)"), so
    a mapping addresses every column and the first of the same name is the one auto-mapping picks."""
    taken = set(headers)
    seen: dict[str, int] = {}
    out = []
    for header in headers:
        count = seen[header] = seen.get(header, 0) + 1
        name = header
        while count > 1 and name in taken:
            name = f"{header} ({count})"
            count += 1
        taken.add(name)
        out.append(name)
    return out


class RowSource:
    """Streams (line_number, cells) with the header read first; bounded memory for CSV and XLSX."""

    def __init__(self, fh, file_format: str):
        self.fh = _binary(fh)
        self.file_format = file_format
        self.encoding = ""
        self.delimiter = ""
        self.headers: list[str] = []
        self._rows: Iterator[tuple[int, list[str]]] = iter(())
        if file_format == "xlsx":
            self._open_xlsx()
        else:
            self._open_csv()

    def _open_csv(self) -> None:
        sample = self.fh.read(SAMPLE_BYTES)
        self.fh.seek(0)
        self.encoding = detect_encoding(sample)
        text_sample = sample.decode(self.encoding, errors="ignore")
        lines = text_sample.splitlines()[:21]
        if len(sample) >= SAMPLE_BYTES and len(lines) > 1:
            lines = lines[:-1]  # the last line may be cut by the sample boundary
        try:
            self.delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
        except csv.Error:
            self.delimiter = ","
        text = io.TextIOWrapper(_Unclosable(self.fh), encoding=self.encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=self.delimiter)
        try:
            self.headers = unique_headers([_clean_header(h) for h in next(reader)])
        except StopIteration:
            self.headers = []

        def rows():
            while True:
                first_line = (
                    reader.line_num + 1
                )  # a quoted cell may span lines: report where the record starts
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # e.g. a cell over csv.field_size_limit(): this record only
                    cells = UnreadableRow(str(exc))
                yield first_line, cells

        self._rows = rows()

    def _open_xlsx(self) -> None:
        from openpyxl import load_workbook

        workbook = load_workbook(self.fh, read_only=True, data_only=True)
        sheet = workbook.active
        self.encoding, self.delimiter = "xlsx", ""
        iterator = sheet.iter_rows(values_only=True)
        first = next(iterator, None)
        self.headers = unique_headers([_clean_header(h) for h in (first or ())])
        self.estimated_rows = max(0, (sheet.max_row or 1) - 1)

        def cell(v) -> str:
            if v is None:
                return ""
            if hasattr(v, "isoformat"):
                return v.isoformat()[:10] if getattr(v, "hour", 0) == 0 else v.isoformat()
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v)

        def rows():
            for i, values in enumerate(iterator, start=2):
                yield i, [cell(v) for v in values]
            workbook.close()

        self._rows = rows()

    def __iter__(self):
        return self._rows


# Leading bytes of formats people upload by mistake under a .csv/.xlsx name (file signatures as listed by
# each format's specification: JFIF/EXIF, PNG, GIF87a/89a, PDF, ZIP/OOXML, OLE2 (.xls), gzip, RIFF (WebP/AVI),
# ISO BMFF (MP4/HEIC, after a 4-byte box size)).
_SIGNATURES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel (.xls) or Office file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"RIFF", "a RIFF media file"),
)


_BINARY_BYTES = (
    *range(9),
    11,
    *range(14, 27),
    *range(28, 32),
)  # C0 controls but TAB, LF, FF, CR, SUB (cp1252 EOF)


def content_mismatch(head: bytes, file_format: str) -> str:
    """Why the first bytes of an upload are not the `file_format` its name claims ("" when they can be)."""
    found = next((label for sig, label in _SIGNATURES if head.startswith(sig)), "")
    if not found and head[4:8] == b"ftyp":
        found = "a video or HEIC image"
    if file_format == "xlsx":
        if head.startswith(b"PK\x03\x04"):
            return ""
        return f"The file is named .xlsx but its content is {found or 'not an Excel workbook'}."
    if found:
        return (
            f"The file is named .csv but its content is {found}, not text. Export it as CSV and upload that."
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ""
    controls = sum(head.count(bytes([c])) for c in _BINARY_BYTES)
    if head and controls * 20 > len(head):  # > 5 % control bytes: no CSV export looks like that
        return "The file is named .csv but its content is binary, not text. Export it as CSV and upload that."
    return ""


def file_format_for(name: str) -> str:
    return "xlsx" if Path(name or "").suffix.lower() in {".xlsx", ".xlsm"} else "csv"


def import_preview(
    *, workspace: Workspace, fh, name: str, mapping: dict | None = None, rows: int = 5
) -> dict:
    """Headers, detected encoding/delimiter, proposed mapping and the first rows as the wizard shows them.

    Raises ValidationError on ``file`` when the content is not what the name says (a JPEG named .csv)."""
    file_format = file_format_for(name)
    raw = _binary(fh)
    head = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    if reason := content_mismatch(head, file_format):
        raise ValidationError({"file": reason})
    source = RowSource(fh, file_format)
    sample = []
    for _, cells in source:
        sample.append(cells)
        if len(sample) >= rows:
            break
    proposed = mapping or auto_mapping(source.headers, workspace)
    return {
        "headers": source.headers,
        "encoding": source.encoding,
        "delimiter": source.delimiter,
        "mapping": proposed,
        "mapping_errors": validate_mapping(proposed, source.headers, workspace),
        "rows": sample,
    }


# ---------------------------------------------------------------- services


def import_stage(
    *,
    workspace: Workspace,
    fh,
    name: str,
    policy: str = "update",
    tags: list[str] | None = None,
    source: str = "import",
) -> ImportRun:
    """Store an upload without starting it (the wizard shows the mapping preview first)."""
    if policy not in POLICIES:
        raise ValidationError({"policy": f"Policy must be one of {', '.join(POLICIES)}."})
    tags = [t.strip() for t in tags or [] if t and t.strip()]
    if any(len(t) > 80 or "\x00" in t for t in tags):
        raise ValidationError({"tags": "A tag has at most 80 characters and no NUL characters."})
    fmt = file_format_for(name)
    try:
        preview = import_preview(workspace=workspace, fh=fh, name=name)
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable upload is a 400 for the caller, not a crash
        raise ValidationError({"file": f"Could not read the file: {exc}"}) from exc
    if hasattr(fh, "seek"):
        fh.seek(0)
    if not preview["headers"]:
        raise ValidationError({"file": "The file is empty."})
    run = ImportRun(
        workspace=workspace,
        original_name=Path(name).name[:255],
        file_format=fmt,
        mapping=preview["mapping"],
        policy=policy,
        tags=tags,
        source=source[:60],
    )
    run.file.save(f"{slugify(Path(name).stem)[:80] or 'import'}.{fmt}", File(_binary(fh)), save=False)
    run.save()
    return run


def import_headers(run: ImportRun) -> list[str]:
    with run.file.storage.open(run.file.name, "rb") as stored:
        return RowSource(_binary(stored), run.file_format).headers


def import_start(*, run: ImportRun, mapping: dict | None = None, by=None, enqueue: bool = True) -> ImportRun:
    """Validate the mapping and open the Job; the work runs in `import_execute` (Celery, or inline)."""
    mapping = {k: v for k, v in (mapping if mapping is not None else run.mapping).items() if v}
    errors = validate_mapping(mapping, import_headers(run), run.workspace_id)
    if errors:
        raise ValidationError({f"mapping.{k}": v for k, v in errors.items()})
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)
        if run.job_id:
            return run
        run.job = job_start(
            workspace=run.workspace,
            kind="crm.import",
            by=by,
            label=f"Import {run.original_name}"[:200],
            params={"import_run": run.pk},
        )
        run.mapping = mapping
        run.save(update_fields=["job", "mapping"])
        audit_record(
            workspace=run.workspace,
            actor=by,
            verb="crm.import.started",
            target=run,
            changes={"file": run.original_name, "policy": run.policy},
        )
        if enqueue:
            from .tasks import import_run_task

            pk = run.pk
            job_enqueue(
                import_run_task,
                pk,
                job_id=run.job_id,
                on_failure=lambda: ImportRun.objects.filter(pk=pk, status=ImportStatus.PENDING).update(
                    status=ImportStatus.FAILED, finished_at=timezone.now()
                ),
            )
    return run


def import_create(
    *,
    workspace: Workspace,
    fh,
    name: str,
    mapping: dict | None = None,
    policy: str = "update",
    tags: list[str] | None = None,
    by=None,
    source: str = "import",
    enqueue: bool = True,
) -> ImportRun:
    """Stage and start in one step (CLI, API, admin). If starting fails (e.g. the mapping is invalid) the
    run row rolls back, and so does the stored file: nothing is left in storage without a row."""
    run = None
    try:
        with transaction.atomic():
            run = import_stage(workspace=workspace, fh=fh, name=name, policy=policy, tags=tags, source=source)
            return import_start(run=run, mapping=mapping, by=by, enqueue=enqueue)
    except Exception:
        if run is not None and run.file.name:
            run.file.storage.delete(run.file.name)
        raise


@dataclass
class _Batch:
    rows: list[tuple[int, dict]] = field(default_factory=list)
    errors: list[ImportRowError] = field(default_factory=list)
    last_line: int = 0
    bad_lines: set[int] = field(default_factory=set)


def _count_lines(fh) -> int:
    fh.seek(0)
    total = 0
    while chunk := fh.read(1 << 20):
        total += chunk.count(b"\n")
    fh.seek(0)
    return total


def import_execute(*, run_id: int) -> int:
    """Process the file from the line after `checkpoint_line`; each batch commits atomically with the new
    checkpoint, so a worker killed mid-file resumes exactly after the last committed batch (shown with a
    SIGKILLed worker in tests/reliability/test_worker_kill.py). Returns the rows processed by this call."""
    run = ImportRun.objects.select_related("workspace").filter(pk=run_id).first()
    if run is None or run.status == ImportStatus.DONE:
        return 0
    if run.job_id:
        job_mark_running(job_id=run.job_id)
    ImportRun.objects.filter(pk=run.pk).update(status=ImportStatus.RUNNING)
    try:
        processed = _execute_rows(run)
    except Exception as exc:
        if failure_is_final(exc):
            ImportRun.objects.filter(pk=run.pk).update(status=ImportStatus.FAILED, finished_at=timezone.now())
            if run.job_id:
                job_fail(job_id=run.job_id, message=f"Import stopped: {exc}")
        raise
    run.refresh_from_db()
    run.status, run.finished_at = ImportStatus.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    if run.job_id:
        job_set_total(job_id=run.job_id, total=run.created + run.updated + run.skipped + run.failed)
        job_finish(
            job_id=run.job_id,
            result={
                "created": run.created,
                "updated": run.updated,
                "skipped": run.skipped,
                "failed": run.failed,
            },
        )
    return processed


def _execute_rows(run: ImportRun) -> int:
    customs = {d.key: d for d in CustomFieldDefinition.objects.for_workspace(run.workspace_id)}
    processed = 0
    with run.file.storage.open(run.file.name, "rb") as stored:
        raw = _binary(stored)
        if run.job_id:
            total = _count_lines(raw) if run.file_format == "csv" else None
            source = RowSource(raw, run.file_format)
            total = total if total is not None else getattr(source, "estimated_rows", 0)
            job_set_total(job_id=run.job_id, total=max(0, total - (1 if run.file_format == "csv" else 0)))
        else:
            source = RowSource(raw, run.file_format)
        columns = {i: (h, run.mapping.get(h)) for i, h in enumerate(source.headers) if run.mapping.get(h)}
        plan = _column_plan(columns, customs)
        batch = _Batch()
        for line, cells in source:
            if line <= run.checkpoint_line:
                continue
            batch.last_line = line
            parsed = _parse_row(line, cells, plan, run, batch)
            if parsed is not None:
                batch.rows.append((line, parsed))
            if len(batch.rows) + len(batch.bad_lines) >= BATCH_SIZE:
                processed += _commit_batch(run, batch)
                batch = _Batch()
        if batch.last_line:
            processed += _commit_batch(run, batch)
    return processed


_TAG_SPLIT = re.compile(r"[,;|]")
_TAG_QUOTES = "\"'“”‘’«»"  # Mailchimp writes a tag list as "vip","newsletter"


_ERROR_COLUMN_MAX, _ERROR_REASON_MAX, _ERROR_VALUE_MAX = (
    ImportRowError._meta.get_field(n).max_length for n in ("column", "reason", "value")
)


def _column_plan(columns: dict, customs: dict) -> list[tuple]:
    """(index, header, kind, arg) per mapped column, decided once per file instead of once per cell."""
    plan = []
    for index, (header, target) in columns.items():
        if target.startswith("custom."):
            plan.append((index, header, "custom", customs[target[7:]]))
        elif target in ("email", "tags", "full_name", "company_domain", "unsubscribed"):
            plan.append((index, header, target, None))
        else:
            plan.append((index, header, "text", (target, TARGET_FIELDS[target].max_length)))
    return plan


def _split_tags(value: str) -> list[str]:
    return [t for t in (p.strip().strip(_TAG_QUOTES).strip() for p in _TAG_SPLIT.split(value)) if t]


def _split_name(value: str) -> tuple[str, str]:
    first, _, last = value.partition(" ")
    return first, last.strip()


class UnreadableRow(list):
    """The cells of a CSV record the parser refused (``csv.Error``, e.g. a cell longer than
    ``csv.field_size_limit()``, 128 KiB): empty, with the parser's reason; reported as a row error."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


def _parse_row(line, cells, plan, run, batch: _Batch) -> dict | None:
    """One row as a dict of target → value, or None (blank row, or reported to `batch.errors`).

    Every value is checked here against the column it is stored in (length from the model field, email by
    `normalize_email`, domain by IDNA, custom values by their type), so no row value can make the database
    refuse a batch: an over-long or malformed value is a row error naming its column."""
    if isinstance(cells, UnreadableRow):
        batch.errors.append(
            ImportRowError(
                workspace_id=run.workspace_id,
                run_id=run.pk,
                line=line,
                column="",
                reason=f"The row could not be read: {cells.reason}."[:_ERROR_REASON_MAX],
                value="",
            )
        )
        batch.bad_lines.add(line)
        return None
    joined = "".join(cells)
    if not joined.strip():
        return None
    data: dict = {}
    custom = None
    bad = False
    width = len(cells)

    def error(column: str, reason: str, value: str = ""):
        batch.errors.append(
            ImportRowError(
                workspace_id=run.workspace_id,
                run_id=run.pk,
                line=line,
                column=column[:_ERROR_COLUMN_MAX],
                reason=reason[:_ERROR_REASON_MAX],
                value=(value or "")[:_ERROR_VALUE_MAX].replace("\x00", ""),
            )
        )

    if "\x00" in joined:  # no database text holds NUL; one such cell must not sink its whole batch
        error("", "The row contains a NUL character.")
        batch.bad_lines.add(line)
        return None

    for index, header, kind, arg in plan:
        value = cells[index].strip() if index < width else ""
        if kind == "text":
            target, limit = arg
            if limit and len(value) > limit:
                error(header, f"Longer than {limit} characters.", value[:50])
                bad = True
            else:
                data[target] = value
        elif kind == "email":
            try:
                data["email"] = normalize_email(value)
            except InvalidEmail as exc:
                error(header, "Email is missing." if not strip_invisible(value) else str(exc), value)
                bad = True
        elif kind == "custom":
            if value:
                try:
                    coerced = _coerce_custom(arg, value)
                except ValueError as exc:
                    error(header, str(exc), value)
                    bad = True
                else:
                    if custom is None:
                        custom = {}
                    custom[arg.key] = coerced
        elif kind == "tags":
            tags = _split_tags(value)
            limit = TARGET_FIELDS["tags"].max_length
            if any(len(t) > limit for t in tags):
                error(header, f"A tag has at most {limit} characters.", value[:50])
                bad = True
            data["tags"] = tags
        elif kind == "full_name":
            first, last = _split_name(value)
            for target, part in (("first_name", first), ("last_name", last)):
                limit = TARGET_FIELDS[target].max_length
                if len(part) > limit:
                    error(
                        header,
                        f"The {target.replace('_', ' ')} is longer than {limit} characters.",
                        value[:50],
                    )
                    bad = True
                data.setdefault(target, part)
        elif kind == "unsubscribed":
            answer = _norm_header(value)
            if answer in OPT_OUT_YES:
                data["unsubscribed"] = True
            elif answer not in OPT_OUT_NO:
                error(header, "Not a yes/no value (e.g. yes, no, true, false, 1, 0).", value[:50])
                bad = True
        else:  # company_domain
            try:
                data["company_domain"] = domain_clean(value) if value else ""
            except ValueError as exc:
                error(header, str(exc), value[:50])
                bad = True
    data["custom"] = custom or {}
    if "email" not in data and not bad:
        error("", "Email is missing.")
        bad = True
    if bad:
        batch.bad_lines.add(line)
        return None
    return data


def _companies_for(run: ImportRun, rows) -> dict[str, Company]:
    wanted: dict[str, str] = {}
    for data in rows:
        name = data.get("company", "")
        domain = data.get("company_domain") or (placeholder_domain(name) if name else "")
        if domain:
            data["_company_key"] = domain
            wanted.setdefault(domain, name)
    if not wanted:
        return {}
    qs = Company.objects.for_workspace(run.workspace_id)
    existing = {c.domain: c for c in qs.filter(domain__in=list(wanted))}
    missing = [
        Company(workspace_id=run.workspace_id, domain=d, name=n)
        for d, n in wanted.items()
        if d not in existing
    ]
    if missing:
        Company.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {c.domain: c for c in qs.filter(domain__in=list(wanted))}
    return existing


FIELDS_FROM_ROW = ("first_name", "last_name", "title", "phone")


@transaction.atomic
def _commit_batch(run: ImportRun, batch: _Batch) -> int:
    """Upsert one batch and move the checkpoint in the same transaction (all of it lands, or none)."""
    run = ImportRun.objects.select_for_update().get(pk=run.pk)
    now = timezone.now()
    stamp = {"source": "import", "import_run": run.pk, "at": now.isoformat()}
    # Duplicates inside the batch collapse onto the first row by the same policy as database duplicates.
    merged: dict[str, dict] = {}
    dup_in_file = 0
    for _, data in batch.rows:
        email = data["email"]
        if email in merged:
            dup_in_file += 1
            _merge_into(merged[email], data, run.policy)
        else:
            merged[email] = data
    companies = _companies_for(run, merged.values())
    existing = {c.email: c for c in _existing_contacts(run.workspace_id, list(merged))}
    to_create, to_update, skipped = [], [], dup_in_file if run.policy == "skip" else 0
    erased = erasure_check(run.workspace_id, [e for e in merged if e not in existing])
    for line, data in batch.rows:  # a GDPR-erased address never comes back: its row is skipped, with why
        if data["email"] in erased and merged.pop(data["email"], None) is not None:
            skipped += 1
            reason = erasure_refusal(erased[data["email"]])
            batch.errors.append(
                ImportRowError(
                    workspace_id=run.workspace_id, run_id=run.pk, line=line, column="email", reason=reason
                )
            )
    tag_links: dict[str, list[str]] = {}
    provenance_cache: dict[tuple, str] = {}
    created_at = now.isoformat() if connection.vendor == "postgresql" else now  # COPY text, or a parameter
    for email, data in merged.items():
        contact = existing.get(email)
        if contact is None:
            to_create.append(_new_row(run, email, data, companies, stamp, created_at, provenance_cache))
        elif run.policy == "skip":
            skipped += 1
            continue
        else:
            _fill(contact, data, companies, run.policy, stamp)
            to_update.append(contact)
        tag_links[email] = [*data.get("tags", []), *run.tags]
    inserted = _insert_rows(to_create)
    skipped += len(to_create) - inserted  # created meanwhile by another writer: left as it is
    if to_update:
        Contact.objects.bulk_update(
            to_update,
            [*FIELDS_FROM_ROW, "company", "custom", "provenance", "source", "updated_at"],
            batch_size=500,
        )
    names = {n for names in tag_links.values() for n in names}
    if names:
        Tag.objects.bulk_create(
            [Tag(workspace_id=run.workspace_id, name=n) for n in names], ignore_conflicts=True
        )
        tag_ids = dict(
            Tag.objects.for_workspace(run.workspace_id).filter(name__in=names).values_list("name", "pk")
        )
        ids = _contact_ids(run.workspace_id, list(tag_links))
        through = Contact.tags.through
        through.objects.bulk_create(
            [through(contact_id=ids[e], tag_id=tag_ids[n]) for e, ns in tag_links.items() for n in set(ns)],
            ignore_conflicts=True,
        )
    opted_out = [email for email, data in merged.items() if data.get("unsubscribed")]
    if opted_out:  # honoured for skipped existing contacts too: an opt-out is not a field to keep or fill
        contacts_unsubscribe(
            workspace_id=run.workspace_id,
            contact_ids=_contact_ids(run.workspace_id, opted_out).values(),
            source=f"import:{run.pk}",
        )
    ImportRowError.objects.bulk_create(batch.errors, ignore_conflicts=True)
    failed = len(batch.bad_lines)
    run.created += inserted
    run.updated += len(to_update) + (dup_in_file if run.policy != "skip" else 0)
    run.skipped += skipped
    run.failed += failed
    run.checkpoint_line = batch.last_line
    run.save(update_fields=["created", "updated", "skipped", "failed", "checkpoint_line"])
    if run.job_id:
        job_advance(job_id=run.job_id, done=len(batch.rows), failed=failed)
    return len(batch.rows) + failed


# One probe of the (workspace, email) unique index per address. A plain `email = ANY(%s)` lets the planner
# pick the workspace index and filter every contact of the workspace instead (it does, on a table that grew
# inside the import and was never analysed): each batch then costs O(workspace size) and an import
# O(n²). The LATERAL … LIMIT 1 (email is unique per workspace) cannot be flattened into that plan.
_PROBE = (
    "SELECT {cols} FROM unnest(%s::text[]) AS wanted(email) CROSS JOIN LATERAL ("
    "SELECT {cols} FROM crm_contact c WHERE c.workspace_id = %s AND c.email = wanted.email LIMIT 1) c"
)


def _existing_contacts(workspace_id: int, emails: list[str]):
    """Contacts of this batch already in the database, one index probe per address on PostgreSQL."""
    if connection.vendor == "postgresql":
        cols = ", ".join(f"c.{f.column}" for f in Contact._meta.concrete_fields)
        return Contact.objects.raw(_PROBE.format(cols=cols), [emails, workspace_id])
    return Contact.objects.for_workspace(workspace_id).filter(email__in=emails)


def _contact_ids(workspace_id: int, emails: list[str]) -> dict[str, int]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(_PROBE.format(cols="c.email, c.id"), [emails, workspace_id])
            return dict(cur.fetchall())
    return dict(
        Contact.objects.for_workspace(workspace_id).filter(email__in=emails).values_list("email", "pk")
    )


NEW_COLUMNS = (
    "workspace_id",
    "email",
    "first_name",
    "last_name",
    "title",
    "phone",
    "company_id",
    "source",
    "custom",
    "lifecycle",
    "verification",
    "engagement_score",
    "engagement_tier",
    "typed_fields",
    "provenance",
    "created_at",
    "updated_at",
)


def _new_row(run: ImportRun, email: str, data: dict, companies: dict, stamp: dict, now, cache: dict) -> tuple:
    """A new contact as a plain tuple: building model instances costs more than the insert itself.
    `cache` holds the provenance JSON per set of filled fields (all rows of a batch share one stamp)."""
    get = data.get
    first, last, title, phone = (
        get("first_name", ""),
        get("last_name", ""),
        get("title", ""),
        get("phone", ""),
    )
    key = get("_company_key")
    company = companies.get(key) if key else None
    filled = (bool(first), bool(last), bool(title), bool(phone), company is not None)
    provenance = cache.get(filled)
    if provenance is None:
        names = [n for n, f in zip((*FIELDS_FROM_ROW, "company"), filled, strict=True) if f]
        provenance = cache[filled] = json.dumps(dict.fromkeys(names, stamp))
    custom = data["custom"]
    custom = json.dumps({k: v for k, v in custom.items() if v is not None}) if custom else "{}"
    return (
        run.workspace_id,
        email,
        first,
        last,
        title,
        phone,
        company.pk if company else None,
        (get("source") or run.source)[:60],
        custom,
        "new",
        "",
        0,
        "",
        "[]",
        provenance,
        now,
        now,
    )


def _insert_rows(rows: list[tuple]) -> int:
    """Insert new contacts, skipping any that appeared meanwhile (ON CONFLICT DO NOTHING).

    PostgreSQL: COPY straight into crm_contact; if another writer created one of the addresses meanwhile,
    COPY into a temporary table and one INSERT … SELECT … ON CONFLICT DO NOTHING. Elsewhere: executemany."""
    if not rows:
        return 0
    cols = ", ".join(NEW_COLUMNS)  # constant column names, never user input
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            from psycopg.errors import UniqueViolation

            try:  # fast path: straight COPY; a contact created meanwhile by another writer aborts it …
                with (
                    transaction.atomic(),
                    cur.cursor.copy(f"COPY crm_contact ({cols}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                return len(rows)
            except (IntegrityError, UniqueViolation):  # … then stage the rows and skip the conflicting ones
                pass
            stage = f"CREATE TEMP TABLE crm_import_stage ON COMMIT DROP AS SELECT {cols} FROM crm_contact"  # noqa: S608
            cur.execute(stage + " WITH NO DATA")
            with cur.cursor.copy(f"COPY crm_import_stage ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO crm_contact ({cols}) SELECT {cols} FROM crm_import_stage "  # noqa: S608
                "ON CONFLICT (workspace_id, email) DO NOTHING"
            )
            inserted = cur.rowcount
            cur.execute("DROP TABLE crm_import_stage")
            return inserted
        placeholders = ", ".join(["%s"] * len(NEW_COLUMNS))
        adapt = connection.ops.adapt_datetimefield_value
        sql = f"INSERT INTO crm_contact ({cols}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"  # noqa: S608
        cur.executemany(sql, [(*row[:-2], adapt(row[-2]), adapt(row[-1])) for row in rows])
        return cur.rowcount


def _merge_into(first: dict, later: dict, policy: str) -> None:
    if later.get("unsubscribed"):  # an opt-out anywhere in the file stands, whatever the policy
        first["unsubscribed"] = True
    if policy == "skip":
        first.setdefault("tags", []).extend(later.get("tags", []))
        return
    for key, value in later.items():
        if key == "tags":
            first.setdefault("tags", []).extend(value)
        elif key == "custom":
            for ck, cv in value.items():
                if policy == "update" or first["custom"].get(ck) in (None, ""):
                    first["custom"][ck] = cv
        elif value and (policy == "update" or not first.get(key)):
            first[key] = value


def _fill(contact: Contact, data: dict, companies: dict, policy: str, stamp: dict) -> None:
    for name in FIELDS_FROM_ROW:
        value = data.get(name, "")
        if not value or value == getattr(contact, name):
            continue
        if policy == "fill_blanks" and getattr(contact, name):
            continue
        setattr(contact, name, value)
        contact.provenance[name] = stamp
    key = data.get("_company_key")
    fill_company = key and key in companies and not (policy == "fill_blanks" and contact.company_id)
    if fill_company and contact.company_id != companies[key].pk:
        contact.company = companies[key]
        contact.provenance["company"] = stamp
    custom = dict(contact.custom or {})
    for key, value in data.get("custom", {}).items():
        if policy == "fill_blanks" and custom.get(key) not in (None, ""):
            continue
        custom[key] = value
    contact.custom = custom
    contact.updated_at = timezone.now()


def import_errors_rows(run: ImportRun) -> Iterator[list[str]]:
    yield ["line", "column", "reason", "value"]
    for e in run.row_errors.order_by("line", "id").iterator(chunk_size=2000):
        yield [str(e.line), e.column, e.reason, e.value]
