"""Media asset performance: for each asset, the campaigns whose content carries it and their figures, and
the performance a channel reported for the asset itself.

What is measured, honestly:

- An image in an email is not click-tracked on its own: clicks are counted on a campaign's links. So the
  campaign figures of an asset (sent, delivered, unique human opens, unique clicks, conversions, revenue,
  CTR = unique clicks / delivered, CTOR = unique clicks / unique human opens) are those of the campaigns
  whose content uses it — media's `AssetUsage` rows with ``ref`` ``publishing.content:<id>``, written when
  an email's content is saved with the image — summed over those campaigns from `CampaignRollup` (exact
  campaign uniques; a delivery belongs to one campaign, so the sums are exact too). They describe the
  emails the asset appeared in, not the asset's own pull.
- ``reported_*``: impressions and clicks a channel reported for the asset itself (media's
  `AssetPerformance`, e.g. an ad platform's insights), summed over channels and days; reported CTR =
  clicks / impressions. Zero where nothing was reported.

Four queries whatever the number of assets, campaigns or events.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Sum

from aicmo.models import Workspace
from media.models import AssetPerformance, AssetUsage, MediaAsset
from publishing.models import Campaign

from . import metrics
from .selectors import campaign_counters, zero_counters

CONTENT_REF = "publishing.content:"
SUMMED = ("sent", "bounces", "unique_opens_human", "unique_clicks", "conversions", "revenue")
MAX_ASSETS = 200


def _content_id(ref: str) -> int | None:
    tail = ref[len(CONTENT_REF) :]
    return int(tail) if ref.startswith(CONTENT_REF) and tail.isascii() and tail.isdigit() else None


def asset_performance(workspace: Workspace | int, *, limit: int = MAX_ASSETS) -> list[dict]:
    """``[{asset_id, title, kind, campaigns, sent, delivered, unique_opens_human, unique_clicks, ctr, ctor,
    conversions, revenue, reported_impressions, reported_clicks, reported_ctr}]`` for every asset used in a
    campaign's content or with reported performance, highest campaign unique clicks first (then reported
    clicks, then id); at most ``limit`` rows. Revenue a string with 2 decimals; rates floats or null."""
    content_of: dict[int, set[int]] = defaultdict(set)
    for asset_id, ref in (
        AssetUsage.objects.for_workspace(workspace)
        .filter(ref__startswith=CONTENT_REF)
        .values_list("asset_id", "ref")
    ):
        content_id = _content_id(ref)
        if content_id is not None:
            content_of[asset_id].add(content_id)
    campaigns_of_content: dict[int, list[int]] = defaultdict(list)
    for campaign_id, content_id in (
        Campaign.objects.for_workspace(workspace)
        .filter(content_id__in={c for ids in content_of.values() for c in ids})
        .values_list("id", "content_id")
    ):
        campaigns_of_content[content_id].append(campaign_id)
    counters = campaign_counters(workspace, [c for ids in campaigns_of_content.values() for c in ids])
    reported = {
        r["asset_id"]: r
        for r in AssetPerformance.objects.for_workspace(workspace)
        .values("asset_id")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
        .order_by()
    }
    asset_ids = set(content_of) | set(reported)
    assets = (
        MediaAsset.objects.for_workspace(workspace).filter(pk__in=asset_ids).values("id", "title", "kind")
    )
    rows = []
    for asset in assets:
        campaign_ids = sorted(
            {c for content in content_of.get(asset["id"], ()) for c in campaigns_of_content[content]}
        )
        total = zero_counters()
        for cid in campaign_ids:
            for f in SUMMED:
                total[f] += counters[cid][f]
        figures = metrics.figures({**total, "spend": 0, "impressions": 0})
        rep = reported.get(asset["id"], {"impressions": 0, "clicks": 0})
        rows.append(
            {
                "asset_id": asset["id"],
                "title": asset["title"],
                "kind": asset["kind"],
                "campaigns": len(campaign_ids),
                "sent": total["sent"],
                "delivered": figures["delivered"],
                "unique_opens_human": total["unique_opens_human"],
                "unique_clicks": total["unique_clicks"],
                "ctr": figures["ctr"],
                "ctor": figures["ctor"],
                "conversions": total["conversions"],
                "revenue": f"{total['revenue']:.2f}",
                "reported_impressions": rep["impressions"],
                "reported_clicks": rep["clicks"],
                "reported_ctr": metrics.ratio(rep["clicks"], rep["impressions"]),
            }
        )
    rows.sort(key=lambda r: (-r["unique_clicks"], -r["reported_clicks"], r["asset_id"]))
    return rows[:limit]
