"""RFM: recency, frequency and monetary quintile scores (1–5) and the named segment of a customer.

The scores are computed in SQL by `analytics.lifetime` with ``NTILE(5)`` window functions over the
customers who bought in the chosen currency up to the observation date (SQLite ≥ 3.25 and PostgreSQL):

- R: ``NTILE(5) OVER (ORDER BY last purchase day, contact)`` — most recent buyers get 5 (recency reversed),
- F: ``NTILE(5) OVER (ORDER BY purchase days, revenue, contact)``,
- M: ``NTILE(5) OVER (ORDER BY revenue, contact)``.

NTILE cuts the ordered list into five groups of equal size (±1), so customers with the same value can land
in adjacent quintiles; ties are broken by the next key and finally by contact id, so a re-run gives the
same scores.

Segments come from the R and F scores, on the widely used R × F grid (Putler's "RFM Analysis for
Successful Customer Segmentation" segment names, in the 10-segment regular-expression map popularised by
public RFM tutorials):

| R \\ F | 1 | 2 | 3 | 4 | 5 |
|---|---|---|---|---|---|
| 5 | New customers | Potential loyalists | Potential loyalists | Champions | Champions |
| 4 | Promising | Potential loyalists | Potential loyalists | Loyal customers | Loyal customers |
| 3 | About to sleep | About to sleep | Need attention | Loyal customers | Loyal customers |
| 2 | Hibernating | Hibernating | At risk | At risk | Can't lose them |
| 1 | Hibernating | Hibernating | At risk | At risk | Can't lose them |
"""

from __future__ import annotations

SEGMENTS = (
    "Champions",
    "Loyal customers",
    "Potential loyalists",
    "New customers",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
)

# GRID[r - 1][f - 1]
GRID = (
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    ("About to sleep", "About to sleep", "Need attention", "Loyal customers", "Loyal customers"),
    ("Promising", "Potential loyalists", "Potential loyalists", "Loyal customers", "Loyal customers"),
    ("New customers", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),
)


def segment(r_score: int, f_score: int) -> str:
    """The segment name of an R and F score (each 1–5); ValueError outside that range."""
    if not (1 <= r_score <= 5 and 1 <= f_score <= 5):
        raise ValueError("RFM scores are 1 to 5.")
    return GRID[r_score - 1][f_score - 1]


QUINTILES_SQL = (
    "NTILE(5) OVER (ORDER BY last_day, contact_id) AS r_score, "
    "NTILE(5) OVER (ORDER BY days, revenue, contact_id) AS f_score, "
    "NTILE(5) OVER (ORDER BY revenue, contact_id) AS m_score"
)
