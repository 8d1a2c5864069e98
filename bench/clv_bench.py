"""Lifetime-value benchmarks: BG/NBD + Gamma-Gamma fit time on simulated customers against the same fit's
likelihood-evaluation baseline, and the peak memory of the scoring job over a workspace of contacts.

    .venv/bin/python bench/clv_bench.py [--fit-sizes 2400,25000] [--score-sizes 200000,1000000] [--json]

Fit: customers drawn from the CDNOW parameters (BG/NBD r=0.243, α=4.414, a=0.793, b=2.426; Gamma-Gamma
p=6.25, q=3.74, γ=15.44) with ages of 1–78 weeks, times rounded to whole days as the SQL summary gives
them. The baseline is one evaluation of both log-likelihoods over the same (deduplicated) rows times the
number of evaluations the optimizer made: fit time ÷ baseline is the optimizer's own overhead.

Scoring: a throw-away SQLite database (or DATABASE_URL) with N contacts and their simulated orders; the job
(`analytics.lifetime.lifetime_fit_run`) runs in a fresh process whose peak RSS (ru_maxrss) is reported
next to the same process's RSS after importing Django and numpy (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics import clv  # noqa: E402  (pure numpy/scipy; no Django needed for the fit benchmark)

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
OBSERVATION = date(2026, 6, 30)


def simulated(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    T_days = rng.integers(7, 78 * 7, n).astype(float)
    x, t_x = clv.simulate_bgnbd(BGNBD, T_days / 7, rng)
    t_x_days = np.minimum(np.round(t_x * 7), T_days)
    m = np.round(clv.simulate_gamma_gamma(GG, x, rng), 2)
    return x, t_x_days / 7, T_days / 7, m


def bench_fit(n: int) -> dict:
    x, t_x, T, m = simulated(n)
    start = time.perf_counter()
    bg = clv.bgnbd_fit(x, t_x, T)
    gg = clv.gamma_gamma_fit(x, m)
    fit_s = time.perf_counter() - start
    (ux, ut, uT), _ = clv._compress(x, t_x, T)
    keep = (x > 0) & (m > 0)
    (gx, gm), _ = clv._compress(x[keep], m[keep])
    bg_params, gg_params = list(bg.params.values()), list(gg.params.values())
    repeats = 50
    start = time.perf_counter()
    for _ in range(repeats):
        clv.bgnbd_log_likelihood(bg_params, ux, ut, uT)
    bg_eval = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        clv.gamma_gamma_log_likelihood(gg_params, gx, gm)
    gg_eval = (time.perf_counter() - start) / repeats
    baseline = bg_eval * bg.evaluations + gg_eval * gg.evaluations
    return {
        "customers": n,
        "distinct_rows": int(ux.size),
        "fit_s": round(fit_s, 3),
        "evaluations": [bg.evaluations, gg.evaluations],
        "baseline_s": round(baseline, 3),
        "overhead": round(fit_s / baseline, 2),
        "bgnbd": {k: round(v, 3) for k, v in bg.params.items()},
        "gamma_gamma": {k: round(v, 3) for k, v in gg.params.items()},
    }


def setup_django(tmp: Path | None):
    if tmp is not None:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'clv.sqlite3'}")
    os.environ.setdefault("AICMO_ENV", "dev")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    os.environ["TIME_ZONE"] = "UTC"
    os.environ["DJANGO_SETTINGS_MODULE"] = "aicmo.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def populate(n: int) -> tuple[int, int]:
    """A workspace with ``n`` contacts and their simulated orders (bulk inserts of 20,000); returns the Job
    id of a queued fit as of OBSERVATION and the number of orders."""
    from decimal import Decimal

    from django.core.management import call_command

    from aicmo.models import Workspace
    from analytics import lifetime
    from analytics.models import Order
    from analytics.tasks import lifetime_fit_task
    from crm.models import Contact

    call_command("migrate", verbosity=0)
    ws = Workspace.objects.create(name=f"clv {n}", slug=f"clv-{n}")
    x, t_x, T, m = simulated(n, seed=2)
    rng = np.random.default_rng(3)
    end = datetime.combine(OBSERVATION, datetime.min.time(), tzinfo=UTC)
    for lo in range(0, n, 20_000):
        Contact.objects.bulk_create(
            [Contact(workspace=ws, email=f"c{i}@example.com") for i in range(lo, min(lo + 20_000, n))]
        )
    ids = list(Contact.objects.filter(workspace=ws).order_by("id").values_list("id", flat=True))
    rows, count = [], 0
    for i, contact_id in enumerate(ids):
        first = end - timedelta(weeks=float(T[i]))
        offsets = [0.0]
        if x[i] > 0:
            offsets += [*np.sort(rng.uniform(0, t_x[i], int(x[i]) - 1)), t_x[i]]
        for k, weeks in enumerate(offsets):
            amount = 20.0 if k == 0 else max(float(m[i]), 1.0)
            rows.append(
                Order(
                    workspace=ws, contact_id=contact_id, external_id=f"o{count}",
                    ordered_at=first + timedelta(weeks=float(weeks)), amount=Decimal(f"{amount:.2f}"),
                    currency="USD", source="import",
                )
            )  # fmt: skip
            count += 1
        if len(rows) >= 20_000 or i == len(ids) - 1:
            Order.objects.bulk_create(rows)
            rows = []
    options = lifetime.clean_fit_options(workspace=ws, observation_date=OBSERVATION, currency="USD")
    # no broker here: the job is run by the measured child process instead of a worker
    lifetime_fit_task.delay = lambda *args, **kwargs: None
    job = lifetime.lifetime_fit_start(workspace=ws, options=options)
    return job.pk, count


def score_child(job_id: int) -> None:
    """Runs in a fresh process: the job, then its peak RSS as JSON on stdout."""
    setup_django(None)
    from analytics import lifetime

    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    scored = lifetime.lifetime_fit_run(job_id=job_id)
    print(json.dumps({
        "scored": scored,
        "seconds": round(time.perf_counter() - start, 1),
        "floor_mb": round(floor / 1024),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))  # fmt: skip


def bench_score(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ}
        env.setdefault("DATABASE_URL", f"sqlite:///{Path(tmp) / 'clv.sqlite3'}")
        os.environ["DATABASE_URL"] = env["DATABASE_URL"]
        start = time.perf_counter()
        out = subprocess.run(  # noqa: S603 - this script with its own arguments
            [sys.executable, __file__, "--populate", str(n)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        job_id, orders = json.loads(out.stdout.strip().splitlines()[-1])
        populated = time.perf_counter() - start
        out = subprocess.run(  # noqa: S603
            [sys.executable, __file__, "--score-job", str(job_id)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return {"contacts": n, "orders": orders, "populate_s": round(populated, 1), **result}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-sizes", default="2400,25000")
    parser.add_argument("--score-sizes", default="200000")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--populate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--score-job", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.populate:
        setup_django(None)
        print(json.dumps(populate(args.populate)))
        return
    if args.score_job:
        score_child(args.score_job)
        return
    fits = [bench_fit(int(s)) for s in args.fit_sizes.split(",") if s]
    scores = [bench_score(int(s)) for s in args.score_sizes.split(",") if s]
    if args.json:
        print(json.dumps({"fits": fits, "scoring": scores}, indent=2))
        return
    print("customers  distinct  fit s  baseline s  overhead  evaluations  BG/NBD / Gamma-Gamma")
    for f in fits:
        print(f"{f['customers']:>9}  {f['distinct_rows']:>8}  {f['fit_s']:>5}  {f['baseline_s']:>10}  "
              f"{f['overhead']:>8}  {f['evaluations']}  {f['bgnbd']} {f['gamma_gamma']}")  # fmt: skip
    print("contacts  orders  populate s  job s  floor MB  peak MB")
    for s in scores:
        print(f"{s['contacts']:>8}  {s['orders']:>6}  {s['populate_s']:>10}  {s['seconds']:>5}  "
              f"{s['floor_mb']:>8}  {s['peak_mb']:>7}")  # fmt: skip


if __name__ == "__main__":
    main()
