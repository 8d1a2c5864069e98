"""Generated campaigns, deliveries and engagement events for analytics tests and the benchmark, plus the
independent computation (pandas over raw events) that rollups are checked against."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd

from crm.models import Contact
from publishing.models import Campaign, Content, Delivery, DeliveryStatus, EngagementEvent, EngagementKind

# Roughly the mix of a real email campaign: mostly sends, opens and clicks; some of everything else.
KIND_WEIGHTS = {
    "sent": 30, "delivered": 5, "open": 25, "click": 15, "reply": 3, "bounce_hard": 2, "bounce_soft": 2,
    "complaint": 1, "unsubscribe": 2, "conversion": 5,
}  # fmt: skip
KINDS = list(KIND_WEIGHTS)


def make_campaigns(workspace, n: int, *, channel: str = "email", prefix: str = "Campaign") -> list[Campaign]:
    content = Content.objects.create(workspace=workspace, name=f"{prefix} content")
    return [
        Campaign.objects.create(workspace=workspace, name=f"{prefix} {i}", content=content, channel=channel)
        for i in range(n)
    ]


def make_contacts(workspace, n: int, prefix: str = "p") -> list[Contact]:
    tag = secrets.token_hex(3)
    Contact.objects.bulk_create(
        [Contact(workspace=workspace, email=f"{prefix}{i}-{tag}@example.com") for i in range(n)],
        batch_size=2000,
    )
    return list(
        Contact.objects.filter(workspace=workspace, email__endswith=f"-{tag}@example.com").order_by("id")
    )


def make_deliveries(campaign: Campaign, contacts: list[Contact]) -> list[Delivery]:
    Delivery.objects.bulk_create(
        [
            Delivery(
                workspace_id=campaign.workspace_id,
                campaign=campaign,
                contact=c,
                email=c.email,
                token=secrets.token_hex(16),
                status=DeliveryStatus.SENT,
            )
            for c in contacts
        ],
        batch_size=2000,
    )
    return list(Delivery.objects.filter(campaign=campaign).order_by("id"))


def event(
    delivery: Delivery, kind: str, at: datetime, *, machine=False, value=None, variant=None, channel="email"
):
    return EngagementEvent(
        workspace_id=delivery.workspace_id,
        kind=kind,
        channel=channel,
        campaign_id=delivery.campaign_id,
        delivery=delivery,
        contact_id=delivery.contact_id,
        occurred_at=at,
        machine=machine,
        value=value,
        metadata={"variant": variant} if variant else {},
    )


def random_events(
    deliveries: list[Delivery], n: int, *, start: datetime, days: int, seed: int = 1, variants=("A", "B")
):
    """n events spread over ``days`` from ``start``: all kinds, machine opens, conversion values, variants
    fixed per delivery (as an A/B split assigns them)."""
    rng = random.Random(seed)
    variant_of = {d.pk: rng.choice(variants) if variants else None for d in deliveries}
    out = []
    for _ in range(n):
        d = rng.choice(deliveries)
        kind = rng.choices(KINDS, weights=list(KIND_WEIGHTS.values()))[0]
        at = start + timedelta(seconds=rng.randrange(days * 86400))
        out.append(
            event(
                d,
                kind,
                at,
                machine=kind == EngagementKind.OPEN and rng.random() < 0.3,
                value=Decimal(rng.randrange(100, 50000)) / 100 if kind == EngagementKind.CONVERSION else None,
                variant=variant_of[d.pk],
            )
        )
    EngagementEvent.objects.bulk_create(out, batch_size=5000)
    return out


def events_frame(workspace, zone: str) -> pd.DataFrame:
    rows = list(
        EngagementEvent.objects.filter(workspace=workspace, campaign_id__isnull=False).values(
            "id",
            "kind",
            "channel",
            "campaign_id",
            "delivery_id",
            "occurred_at",
            "value",
            "machine",
            "metadata",
        )
    )
    df = pd.DataFrame(rows)
    df["variant"] = df["metadata"].map(lambda m: (m or {}).get("variant") or "")
    df["day"] = pd.to_datetime(df["occurred_at"], utc=True).dt.tz_convert(ZoneInfo(zone)).dt.date
    df["value"] = df["value"].map(lambda v: Decimal(v) if v is not None else Decimal(0))
    return df


def expected_counters(df: pd.DataFrame, keys: list[str]) -> dict[tuple, dict]:
    """The rollup counters computed directly from the raw events with pandas, grouped by ``keys``."""
    out: dict[tuple, dict] = {}
    for key, g in df.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        k = g["kind"]
        human_open = (k == "open") & ~g["machine"]
        out[key] = {
            "sent": int((k == "sent").sum()),
            "delivered": int((k == "delivered").sum()),
            "opens": int((k == "open").sum()),
            "unique_opens_human": int(g.loc[human_open, "delivery_id"].dropna().nunique()),
            "unique_opens_machine": int(
                g.loc[(k == "open") & g["machine"], "delivery_id"].dropna().nunique()
            ),
            "clicks": int((k == "click").sum()),
            "unique_clicks": int(g.loc[k == "click", "delivery_id"].dropna().nunique()),
            "replies": int((k == "reply").sum()),
            "bounces": int(k.isin(["bounce_hard", "bounce_soft"]).sum()),
            "unsubscribes": int((k == "unsubscribe").sum()),
            "complaints": int((k == "complaint").sum()),
            "conversions": int((k == "conversion").sum()),
            "revenue": sum(g.loc[k == "conversion", "value"], Decimal(0)),
            "spend": Decimal(0),
            "impressions": 0,
            "engagements": int((human_open | k.isin(["click", "reply"])).sum()),
        }
    return out
