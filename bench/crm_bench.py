"""CRM benchmarks: import vs raw bulk load, segment count vs hand-written SQL, contacts list API vs values().

    .venv/bin/python bench/crm_bench.py [import|segment|listapi|all] [--rows N] [--contacts N] [--json]

SQLite by default (a throw-away database in a temporary directory). With DATABASE_URL pointing at
PostgreSQL the import baseline is a real `COPY` into crm_contact and the tables are truncated before each
part. The import part runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
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
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DJANGO_SETTINGS_MODULE"] = "aicmo.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def fresh_workspace(slug: str):
    from django.db import connection

    from aicmo.models import Workspace
    from crm.models import Contact

    if is_postgres():
        with connection.cursor() as cur:
            cur.execute("TRUNCATE crm_contact, crm_company, crm_tag, crm_importrun CASCADE")
    else:
        Contact.objects.all().delete()
    ws, _ = Workspace.objects.get_or_create(slug=slug, defaults={"name": slug})
    return ws


CONTACT_COLUMNS = (
    "workspace_id, email, first_name, last_name, title, phone, source, custom, lifecycle, verification,"
    " engagement_score, engagement_tier, typed_fields, provenance, created_at, updated_at"
)


def contact_row(
    workspace_id: int,
    email: str,
    first: str,
    last: str,
    title: str,
    phone: str,
    custom: str,
    lifecycle: str,
    score: int,
    now,
) -> tuple:
    """A crm_contact row for the raw baselines, in CONTACT_COLUMNS order."""
    return (
        workspace_id,
        email,
        first,
        last,
        title,
        phone,
        "raw",
        custom,
        lifecycle,
        "",
        score,
        "",
        "[]",
        "{}",
        now,
        now,
    )


def write_csv(path: Path, rows: int) -> None:
    rnd = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Email Address", "First Name", "Last Name", "Job Title", "Phone Number"])
        for i in range(rows):
            w.writerow(
                [
                    f"person{i}@example{i % 997}.com",
                    rnd.choice(["Ann", "Bob", "Zoë"]),
                    f"Last{i}",
                    rnd.choice(["CEO", "CMO", ""]),
                    f"+1 555 {i:07d}",
                ]
            )


# --- import -----------------------------------------------------------------------------------------------


def bench_import_child(rows: int) -> dict:
    """Runs in its own process: our import of the CSV, then a raw bulk load of the same rows."""
    from django.db import connection
    from django.utils import timezone

    from crm.importing import import_create, import_execute

    tmp = Path(os.environ["MEDIA_ROOT"]).parent
    path = tmp / "import.csv"
    write_csv(path, rows)
    ws = fresh_workspace("bench-import")
    with path.open("rb") as fh:
        run = import_create(workspace=ws, fh=fh, name="import.csv", enqueue=False)
    start = time.perf_counter()
    import_execute(run_id=run.pk)
    ours = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    ws = fresh_workspace("bench-import-raw")
    now = timezone.now()
    start = time.perf_counter()
    with path.open(encoding="utf-8") as fh, connection.cursor() as cur:
        reader = csv.reader(fh)
        next(reader)
        cols = CONTACT_COLUMNS
        if is_postgres():
            with cur.cursor.copy(f"COPY crm_contact ({cols}) FROM STDIN") as copy:
                for r in reader:
                    copy.write_row(
                        contact_row(ws.pk, r[0].lower(), r[1], r[2], r[3], r[4], "{}", "new", 0, now)
                    )
        else:
            batch = []
            sql = f"INSERT INTO crm_contact ({cols}) VALUES ({', '.join(['%s'] * 16)})"
            for r in reader:
                batch.append(contact_row(ws.pk, r[0].lower(), r[1], r[2], r[3], r[4], "{}", "new", 0, now))
                if len(batch) >= 5000:
                    cur.executemany(sql, batch)
                    batch.clear()
            if batch:
                cur.executemany(sql, batch)
    raw = time.perf_counter() - start
    return {
        "rows": rows,
        "backend": connection.vendor,
        "ours_s": round(ours, 3),
        "raw_s": round(raw, 3),
        "ours_rows_per_s": round(rows / ours),
        "raw_rows_per_s": round(rows / raw),
        "ratio_of_raw": round(raw / ours, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "baseline": "COPY" if is_postgres() else "executemany INSERT",
    }


def bench_import(rows: int, tmp: Path) -> dict:
    env = dict(os.environ, MEDIA_ROOT=str(tmp / "media"))
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "_import_child", "--rows", str(rows)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- segments ---------------------------------------------------------------------------------------------


def populate(ws, n: int) -> None:
    """n contacts, 3 tags, some suppressions, inserted with raw executemany (fast)."""
    from django.db import connection
    from django.utils import timezone

    from crm.models import Contact, Suppression, Tag

    rnd = random.Random(11)
    now = timezone.now()
    stages = ["new", "enriched", "verified", "engaged", "converted"]
    rows = [
        contact_row(
            ws.pk,
            f"c{i}@ex{i % 500}.com",
            rnd.choice(["Ann", "Bob", "Cy", ""]),
            "",
            "",
            "",
            json.dumps({"plan": rnd.choice(["free", "pro", "enterprise"]), "seats": rnd.randint(1, 500)}),
            rnd.choice(stages),
            rnd.randint(0, 100),
            now,
        )
        for i in range(n)
    ]
    cols = CONTACT_COLUMNS
    with connection.cursor() as cur:
        for start in range(0, n, 5000):
            cur.executemany(
                f"INSERT INTO crm_contact ({cols}) VALUES ({', '.join(['%s'] * 16)})",
                rows[start : start + 5000],
            )
    tags = [Tag.objects.create(workspace=ws, name=t) for t in ("customer", "vip", "newsletter")]
    ids = list(Contact.objects.for_workspace(ws).values_list("pk", flat=True))
    through = Contact.tags.through
    through.objects.bulk_create(
        [through(contact_id=i, tag_id=rnd.choice(tags).pk) for i in ids if rnd.random() < 0.4],
        batch_size=5000,
    )
    Suppression.objects.bulk_create(
        [
            Suppression(workspace=ws, contact_id=i, channel="email", reason="unsubscribed")
            for i in ids
            if rnd.random() < 0.05
        ],
        batch_size=5000,
    )


RULES = {
    "op": "and",
    "rules": [
        {"field": "lifecycle", "operator": "lifecycle_in", "value": ["enriched", "verified", "engaged"]},
        {
            "op": "or",
            "rules": [
                {"field": "score", "operator": "gte", "value": 60},
                {
                    "op": "and",
                    "rules": [
                        {"field": "tags", "operator": "has_tag", "value": "vip"},
                        {"field": "first_name", "operator": "starts_with", "value": "a"},
                    ],
                },
            ],
        },
        {"field": "suppression", "operator": "not_suppressed", "value": "email"},
    ],
}

HAND_SQL = """
SELECT COUNT(*) FROM crm_contact c
WHERE c.workspace_id = %s
  AND c.lifecycle IN ('enriched', 'verified', 'engaged')
  AND (c.engagement_score >= 60
       OR (c.id IN (SELECT ct.contact_id FROM crm_contact_tags ct JOIN crm_tag t ON t.id = ct.tag_id
                    WHERE t.workspace_id = %s AND t.name = 'vip')
           AND LOWER(c.first_name) LIKE 'a%%'))
  AND c.id NOT IN (SELECT s.contact_id FROM crm_suppression s WHERE s.workspace_id = %s AND s.channel = 'email')
"""


def best_of(fn, repeat: int = 5) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def bench_segment(n: int) -> dict:
    from django.db import connection

    from crm.segments import segment_queryset

    ws = fresh_workspace("bench-segment")
    populate(ws, n)

    def ours():
        return segment_queryset(RULES, ws).count()

    def hand():
        with connection.cursor() as cur:
            cur.execute(HAND_SQL, [ws.pk, ws.pk, ws.pk])
            return cur.fetchone()[0]

    t_ours, c_ours = best_of(ours, 10)
    t_hand, c_hand = best_of(hand, 10)
    assert c_ours == c_hand, (c_ours, c_hand)
    return {
        "contacts": n,
        "backend": connection.vendor,
        "count": c_ours,
        "ours_s": round(t_ours, 4),
        "hand_sql_s": round(t_hand, 4),
        "ratio": round(t_ours / t_hand, 3),
    }


# --- list API ---------------------------------------------------------------------------------------------


def bench_listapi(n: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.http import JsonResponse
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIRequestFactory, force_authenticate

    from aicmo.models import Membership
    from crm.api import ContactViewSet
    from crm.models import Contact

    ws = fresh_workspace("bench-list")
    populate(ws, n)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    Membership.objects.get_or_create(workspace=ws, user=user, defaults={"role": "viewer"})
    factory = APIRequestFactory()
    view = ContactViewSet.as_view({"get": "list"}, throttle_classes=[])  # no Redis needed; not measured

    def ours(size=100):
        request = factory.get(f"/api/v1/crm/contacts/?page_size={size}", HTTP_X_WORKSPACE=str(ws.pk))
        force_authenticate(request, user=user)
        response = view(request)
        response.render()
        return response

    fields = [
        "id",
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
        "created_at",
    ]

    def baseline():
        qs = Contact.objects.filter(workspace=ws).order_by("-created_at", "-id")
        return JsonResponse({"count": qs.count(), "results": list(qs.values(*fields)[:100])})

    t_ours, _ = best_of(ours, 30)
    t_base, _ = best_of(baseline, 30)
    counts = {}
    for size in (10, 100):
        with CaptureQueriesContext(connection) as ctx:
            ours(size)
        counts[size] = len(ctx.captured_queries)
    return {
        "contacts": n,
        "backend": connection.vendor,
        "ours_s": round(t_ours, 4),
        "values_json_s": round(t_base, 4),
        "ratio": round(t_ours / t_base, 3),
        "queries_page_10": counts[10],
        "queries_page_100": counts[100],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "part", nargs="?", default="all", choices=["import", "segment", "listapi", "all", "_import_child"]
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    if args.part == "_import_child":
        setup_django(Path(os.environ["MEDIA_ROOT"]).parent)
        print(json.dumps(bench_import_child(args.rows)))
        return
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        results = {}
        if args.part in ("import", "all"):
            results["import"] = bench_import(args.rows, tmp)
        setup_django(tmp)
        if args.part in ("segment", "all"):
            results["segment"] = bench_segment(args.contacts)
        if args.part in ("listapi", "all"):
            results["listapi"] = bench_listapi(min(args.contacts, 20_000))
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
