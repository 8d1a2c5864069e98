"""Attribution of orders to campaigns from the contact's touches before the order.

A *touch* is a click, a reply or a human open (machine opens are privacy proxies and scanners, not people)
of a campaign by the order's contact, at a time t with ``ordered_at − window < t ≤ ordered_at``.

- ``last_touch``: the whole order (1 conversion, its amount) goes to the campaign of the latest touch.
- ``linear``: each of the n touches gives 1/n of the order to its campaign (a campaign touched twice gets 2/n).

Orders without a contact (erased or unknown customer) or without a touch in the window are "unattributed".
Revenue is kept per currency; no conversion between currencies is made.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Q

from aicmo.models import Workspace
from publishing.models import Campaign, EngagementEvent, EngagementKind

from .models import Order

MODELS = ("last_touch", "linear")
CONTACT_CHUNK = 1000
CENT = Decimal("0.01")


def _touches_q() -> Q:
    return Q(kind=EngagementKind.OPEN, machine=False) | Q(
        kind__in=[EngagementKind.CLICK, EngagementKind.REPLY]
    )


def _credit(model: str, touches: list[tuple[datetime, int]]) -> dict[int, Fraction]:
    if not touches:
        return {}
    if model == "last_touch":
        return {touches[-1][1]: Fraction(1)}
    shares: dict[int, Fraction] = defaultdict(Fraction)
    for _, campaign_id in touches:
        shares[campaign_id] += Fraction(1, len(touches))
    return shares


def attribute(
    workspace: Workspace | int, *, model: str, window_days: int, first: datetime, last: datetime
) -> dict:
    """Orders with ``first ≤ ordered_at < last`` credited to campaigns. Shape:
    ``{"model", "window_days", "rows": [{campaign_id, name, currency, conversions, revenue}],
    "unattributed": [{currency, orders, revenue}]}``; conversions are fractional under ``linear``; revenue
    strings with 2 decimals (rounded after summing)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}")
    window = timedelta(days=window_days)
    credited: dict[tuple[int, str], list] = defaultdict(lambda: [Fraction(0), Fraction(0)])
    unattributed: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
    orders = (
        Order.objects.for_workspace(workspace)
        .filter(ordered_at__gte=first, ordered_at__lt=last)
        .order_by("contact_id", "ordered_at", "id")
        .values_list("contact_id", "ordered_at", "amount", "currency")
    )
    chunk: list[tuple] = []

    def flush():
        contact_ids = {o[0] for o in chunk if o[0] is not None}
        by_contact: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
        if contact_ids:
            earliest = min(o[1] for o in chunk if o[0] is not None) - window
            latest = max(o[1] for o in chunk if o[0] is not None)
            for contact_id, at, campaign_id in (
                EngagementEvent.objects.filter(
                    workspace=workspace,
                    contact_id__in=contact_ids,
                    campaign_id__isnull=False,
                    occurred_at__gt=earliest,
                    occurred_at__lte=latest,
                )
                .filter(_touches_q())
                .order_by("contact_id", "occurred_at", "id")
                .values_list("contact_id", "occurred_at", "campaign_id")
            ):
                by_contact[contact_id].append((at, campaign_id))
        for contact_id, ordered_at, amount, currency in chunk:
            touches = [t for t in by_contact.get(contact_id, ()) if ordered_at - window < t[0] <= ordered_at]
            shares = _credit(model, touches)
            if not shares:
                unattributed[currency][0] += 1
                unattributed[currency][1] += amount
            for campaign_id, share in shares.items():
                cell = credited[(campaign_id, currency)]
                cell[0] += share
                cell[1] += share * Fraction(amount)
        chunk.clear()

    contacts_in_chunk: set = set()
    for order in orders.iterator(chunk_size=2000):
        if order[0] not in contacts_in_chunk and len(contacts_in_chunk) >= CONTACT_CHUNK:
            flush()
            contacts_in_chunk.clear()
        contacts_in_chunk.add(order[0])
        chunk.append(order)
    if chunk:
        flush()

    names = dict(
        Campaign.objects.for_workspace(workspace)
        .filter(pk__in={k[0] for k in credited})
        .values_list("pk", "name")
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "name": names.get(campaign_id, ""),
            "currency": currency,
            "conversions": round(float(conv), 6),
            "revenue": str((Decimal(rev.numerator) / Decimal(rev.denominator)).quantize(CENT)),
        }
        for (campaign_id, currency), (conv, rev) in credited.items()
    ]
    rows.sort(key=lambda r: (-Decimal(r["revenue"]), r["campaign_id"], r["currency"]))
    return {
        "model": model,
        "window_days": window_days,
        "rows": rows,
        "unattributed": [
            {"currency": c, "orders": n, "revenue": str(v.quantize(CENT))}
            for c, (n, v) in sorted(unattributed.items())
        ],
    }
