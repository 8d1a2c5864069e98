"""Cut-offs for trend anomaly flags: for each series length, the (1 − FAMILY_RATE) quantile of the largest
robust z-score that robust STL leaves on a series of pure Gaussian white noise.

    .venv/bin/python bench/trend_calibration.py [--lengths 35,42,…] [--draws 300]

Prints a ``CUTOFFS`` tuple for `analytics.trends`. STL and the robust z are taken from `analytics.trends`
itself, so the table matches what the API computes. The z-score is location- and scale-free and STL
reproduces a weekly pattern and a linear trend, so white noise of unit variance stands for any level,
spread and weekly pattern; `tests/analytics/test_trends.py` checks the resulting rate of flagged series on
independent Gaussian and Poisson series with a weekly pattern. Draw d of length n uses
``numpy.random.default_rng(n)``; a long length takes minutes on a loaded machine (one robust STL fit per draw).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LENGTHS = (35, 42, 49, 56, 70, 91, 120, 182, 273, 365)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--draws", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicmo.settings")
    os.environ.setdefault("AICMO_ENV", "test")
    os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")
    import django

    django.setup()
    import numpy as np

    from analytics.trends import CALIBRATION_DRAWS, FAMILY_RATE, robust_z, stl_residuals

    draws = args.draws or CALIBRATION_DRAWS
    rows = []
    for n in (int(x) for x in args.lengths.split(",")):
        rng = np.random.default_rng(n)
        maxima = [float(robust_z(stl_residuals(rng.standard_normal(n))).max()) for _ in range(draws)]
        rows.append((n, round(float(np.quantile(maxima, 1 - FAMILY_RATE)), 2)))
        print(f"# {n} days: {rows[-1][1]}", file=sys.stderr, flush=True)
    print("CUTOFFS = (" + ", ".join(f"({n}, {c})" for n, c in rows) + ")")


if __name__ == "__main__":
    main()
