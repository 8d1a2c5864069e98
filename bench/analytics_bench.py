"""Analytics benchmarks: report/overview latency against the number of raw events, and the rollup job's
throughput against one hand-written INSERT … SELECT … GROUP BY over the same events.

    .venv/bin/python bench/analytics_bench.py [--sizes 10000,1000000] [--json]

SQLite by default (a throw-away database in a temporary directory); with DATABASE_URL pointing at
PostgreSQL the same runs happen there. Each size gets a fresh workspace: 20 email campaigns to 2,000
contacts each (40,000 deliveries), events spread over 60 days in the mix of a real campaign. Latency is
the median of 30 GETs through the whole Django/DRF stack (test client, session login). TIME_ZONE is UTC so
the baseline's GROUP BY day is the plain date of the timestamp.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CAMPAIGNS = 20
CONTACTS = 2000
DAYS = 60
START = datetime(2026, 1, 1, tzinfo=UTC)
KIND_WEIGHTS = {
    "sent": 30, "delivered": 5, "open": 25, "click": 15, "reply": 3, "bounce_hard": 2, "bounce_soft": 2,
    "complaint": 1, "unsubscribe": 2, "conversion": 5,
}  # fmt: skip


def setup_django(tmp: Path):
    """Django on a throw-away SQLite file (unless DATABASE_URL is set) and a private redis-server (the
    API's throttle and cache); returns the redis handle to stop."""
    from aicmo.localredis import start_redis

    redis = start_redis(data_dir=tmp / "redis", persist=False)
    os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("AICMO_ENV", "dev")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["TIME_ZONE"] = "UTC"
    os.environ["DJANGO_SETTINGS_MODULE"] = "aicmo.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return redis


def world(slug: str, events: int):
    """A workspace with campaigns, deliveries and ``events`` raw events (bulk inserted, bypassing the ORM)."""
    from django.db import connection, transaction

    from aicmo.models import Workspace
    from crm.models import Contact
    from publishing.models import Campaign, Content, Delivery

    ws = Workspace.objects.create(slug=slug, name=slug)
    content = Content.objects.create(workspace=ws, name="bench")
    campaigns = [
        Campaign.objects.create(workspace=ws, name=f"C{i}", content=content) for i in range(CAMPAIGNS)
    ]
    Contact.objects.bulk_create(
        [Contact(workspace=ws, email=f"p{i}@{slug}.example") for i in range(CONTACTS)], batch_size=5000
    )
    contact_ids = list(Contact.objects.filter(workspace=ws).values_list("id", flat=True))
    for c in campaigns:
        Delivery.objects.bulk_create(
            [
                Delivery(
                    workspace=ws, campaign=c, contact_id=cid, email="x@example.com", token=f"{c.pk}-{cid}"
                )
                for cid in contact_ids
            ],
            batch_size=5000,
        )
    deliveries = list(Delivery.objects.filter(workspace=ws).values_list("id", "campaign_id", "contact_id"))
    rnd = random.Random(11)
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    sql = (
        "INSERT INTO publishing_engagementevent (workspace_id, kind, channel, campaign_id, delivery_id,"
        " contact_id, occurred_at, value, machine, metadata) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    )
    chunk = 50_000
    with transaction.atomic(), connection.cursor() as cur:
        for offset in range(0, events, chunk):
            rows = []
            for _ in range(min(chunk, events - offset)):
                did, cid, contact = deliveries[rnd.randrange(len(deliveries))]
                kind = rnd.choices(kinds, weights)[0]
                at = START + timedelta(seconds=rnd.randrange(DAYS * 86400))
                rows.append(
                    (
                        ws.pk, kind, "email", cid, did, contact, at,
                        "12.50" if kind == "conversion" else None,
                        kind == "open" and rnd.random() < 0.3,
                        json.dumps({"variant": "A" if did % 2 else "B"}),
                    )
                )  # fmt: skip
            cur.executemany(sql, rows)
    return ws, campaigns


BASELINE_SQL = """
INSERT INTO bench_baseline
SELECT campaign_id, channel, COALESCE(metadata ->> 'variant', '') AS variant, {day} AS day,
  SUM(CASE WHEN kind='sent' THEN 1 ELSE 0 END), SUM(CASE WHEN kind='delivered' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind='open' THEN 1 ELSE 0 END),
  COUNT(DISTINCT CASE WHEN kind='open' AND NOT machine THEN delivery_id END),
  COUNT(DISTINCT CASE WHEN kind='open' AND machine THEN delivery_id END),
  SUM(CASE WHEN kind='click' THEN 1 ELSE 0 END), COUNT(DISTINCT CASE WHEN kind='click' THEN delivery_id END),
  SUM(CASE WHEN kind='reply' THEN 1 ELSE 0 END), SUM(CASE WHEN kind IN ('bounce_hard','bounce_soft') THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind='unsubscribe' THEN 1 ELSE 0 END), SUM(CASE WHEN kind='complaint' THEN 1 ELSE 0 END),
  SUM(CASE WHEN kind='conversion' THEN 1 ELSE 0 END), SUM(CASE WHEN kind='conversion' THEN value ELSE 0 END)
FROM publishing_engagementevent WHERE workspace_id = %s AND occurred_at >= %s AND occurred_at < %s
GROUP BY campaign_id, channel, COALESCE(metadata ->> 'variant', ''), {day}
"""


def bench_rollup(ws) -> dict:
    """Our backfill of the whole range vs the hand-written statement over the same events, same run. The
    statement makes the same daily rows (campaign × channel × variant × day, the same counters); it does
    not make the per-campaign totals (exact campaign uniques), which our job also builds."""
    from django.db import connection

    from analytics.rollups import rollup_backfill

    first, last = START.date() - timedelta(days=1), START.date() + timedelta(days=DAYS)
    t0 = time.perf_counter()
    result = rollup_backfill(workspace_id=ws.pk, first=first, last=last)
    ours = time.perf_counter() - t0
    day = (
        "(occurred_at AT TIME ZONE 'UTC')::date" if connection.vendor == "postgresql" else "date(occurred_at)"
    )
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_baseline")
        cur.execute(
            "CREATE TABLE bench_baseline (campaign_id bigint, channel varchar(10), variant varchar(40), day date, sent int,"
            " delivered int, opens int, uoh int, uom int, clicks int, uclicks int, replies int, bounces int,"
            " unsubs int, complaints int, conversions int, revenue numeric)"
        )
        t0 = time.perf_counter()
        cur.execute(
            BASELINE_SQL.format(day=day),
            [
                ws.pk,
                datetime.combine(first, datetime.min.time(), UTC),
                datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC),
            ],
        )
        baseline = time.perf_counter() - t0
        cur.execute("SELECT COUNT(*) FROM bench_baseline")
        baseline_rows = cur.fetchone()[0]
        cur.execute("DROP TABLE bench_baseline")
    return {
        "ours_s": round(ours, 3),
        "baseline_s": round(baseline, 3),
        "throughput_ratio": round(baseline / ours, 2),
        "daily_rows": result.rows,
        "baseline_rows": baseline_rows,
    }


def bench_requests(ws, campaign) -> dict:
    from django.test import Client

    from aicmo.models import Membership, Role
    from tests.factories import UserFactory

    user = UserFactory()
    Membership.objects.create(workspace=ws, user=user, role=Role.VIEWER)
    client = Client()
    client.force_login(user)
    headers = {"HTTP_X_WORKSPACE": str(ws.pk)}
    out = {}
    for label, url in (
        ("campaign_report", f"/api/v1/analytics/campaigns/{campaign.pk}/"),
        ("overview", "/api/v1/analytics/figures/overview/"),
        ("campaign_list", "/api/v1/analytics/campaigns/"),
    ):
        assert client.get(url, **headers).status_code == 200
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            client.get(url, **headers)
            times.append(time.perf_counter() - t0)
        out[f"{label}_ms"] = round(statistics.median(times) * 1000, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = setup_django(Path(tmp))
        try:
            run(args)
        finally:
            redis.stop()


def run(args) -> None:
    from django.db import connection

    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        ws, campaigns = world(f"bench-{n}", n)
        load = time.perf_counter() - t0
        row = {
            "events": n,
            "load_s": round(load, 1),
            **bench_rollup(ws),
            **bench_requests(ws, campaigns[0]),
        }
        results.append(row)
        if not args.json:
            print(row, flush=True)
    if len(results) > 1:
        small, big = results[0], results[-1]
        flat = {k: round(big[k] / small[k], 2) for k in small if k.endswith("_ms")}
        summary = {"database": connection.vendor, "flatness_big_over_small": flat}
    else:
        summary = {"database": connection.vendor}
    print(json.dumps({"results": results, **summary}, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
