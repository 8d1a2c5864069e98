"""Media reads: scoped asset lists, near-duplicates through the pHash band index, performers, statistics."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from aicmo.models import Workspace

from .fingerprints import colours_agree
from .models import AssetPerformance, AssetStatus, MediaAsset, MediaLibrary, Suggestion, SuggestionStatus, Tag

NEAR_DUPLICATE_DISTANCE = 8
MIN_IMPRESSIONS = 1000
HIGH_RATIO = 1.5
LOW_RATIO = 0.5


def libraries_for(workspace: Workspace, *, include_archived: bool = True) -> QuerySet[MediaLibrary]:
    """The workspace's libraries by name, each with ``asset_count``; ``include_archived=False`` leaves out
    archived ones (the upload and move choices)."""
    qs = MediaLibrary.objects.for_workspace(workspace).annotate(asset_count=Count("assets")).order_by("name")
    return qs if include_archived else qs.filter(archived_at__isnull=True)


def default_library_for(workspace: Workspace) -> MediaLibrary | None:
    """The library ``services.library_get_default`` answers, without creating it (None: not yet made)."""
    return MediaLibrary.objects.for_workspace(workspace).filter(name=MediaLibrary.DEFAULT_NAME).first()


def asset_footprint(asset: MediaAsset) -> dict:
    """What deleting ``asset`` removes besides its file: ``{"usages": [AssetUsage, ...] (newest first, at
    most 100), "usage_count", "renditions", "performance_days", "suggestions"}`` (counts)."""
    usages = asset.usages.order_by("-used_at", "-id")
    return {
        "usages": list(usages[:100]),
        "usage_count": usages.count(),
        "renditions": asset.renditions.count(),
        "performance_days": asset.performance.count(),
        "suggestions": asset.suggestions.count(),
    }


def tags_for(workspace: Workspace) -> QuerySet[Tag]:
    return Tag.objects.for_workspace(workspace).order_by("name")


def assets_for(
    workspace: Workspace,
    *,
    library: int | None = None,
    kind: str = "",
    status: str = "",
    tag: str = "",
    category: str = "",
    q: str = "",
) -> QuerySet[MediaAsset]:
    qs = (
        MediaAsset.objects.for_workspace(workspace)
        .select_related("library", "uploaded_by")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )
    if library:
        qs = qs.filter(library_id=library)
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if tag:
        qs = qs.filter(tags__name=tag)
    if category:
        qs = qs.filter(category=category)
    if q:
        qs = qs.filter(
            Q(title__icontains=q) | Q(description__icontains=q) | Q(alt_text__icontains=q)
            | Q(original_filename__icontains=q)
        )  # fmt: skip
    return qs.order_by("-created_at", "-id")


def thumbnails_for(assets) -> dict[int, str]:
    """asset id → spec of its built tile image ("thumbnail" for images, "poster" for videos); one query."""
    from .models import Rendition

    ids = [a.pk for a in assets]
    rows = Rendition.objects.filter(asset_id__in=ids, spec__in=("thumbnail", "poster")).values_list(
        "asset_id", "spec"
    )
    return dict(rows)


# --- near duplicates ------------------------------------------------------------------------------------


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def look_alike_distance(
    a: MediaAsset, b: MediaAsset, max_distance: int = NEAR_DUPLICATE_DISTANCE
) -> int | None:
    """pHash distance in bits when `a` and `b` are look-alikes (pHash within `max_distance` and colour moments
    agreeing, see media/fingerprints.py), else None. The one rule for lookups and the duplicates report."""
    if not (a.phash and b.phash):
        return None
    distance = hamming(a.phash, b.phash)
    if distance > max_distance or not colours_agree(a.colour_moments, b.colour_moments):
        return None
    return distance


@dataclass(frozen=True)
class NearMatch:
    asset: MediaAsset
    distance: int


def near_duplicates(*, asset: MediaAsset, max_distance: int = NEAR_DUPLICATE_DISTANCE) -> list[NearMatch]:
    """Assets whose perceptual hash is within `max_distance` bits.

    Multi-index hashing: candidates share at least one 16-bit band (four indexed equality lookups in one
    query), so the cost follows the number of candidates, not the library size. Any pair within 3 bits is
    guaranteed to share a band; larger distances are found when they do.
    """
    if not asset.phash:
        return []
    bands = Q()
    for i in range(4):
        value = getattr(asset, f"phash_b{i}")
        if value is not None:
            # workspace inside every OR term: each term is then one (workspace, band) index probe
            bands |= Q(workspace_id=asset.workspace_id, **{f"phash_b{i}": value})
    candidates = MediaAsset.objects.filter(bands).exclude(pk=asset.pk).select_related("library")
    matches = [
        NearMatch(c, d) for c in candidates if (d := look_alike_distance(asset, c, max_distance)) is not None
    ]
    return sorted(matches, key=lambda m: (m.distance, m.asset.pk))


@dataclass(frozen=True)
class DuplicatePair:
    a: MediaAsset
    b: MediaAsset
    distance: int


def duplicate_pairs(
    *, workspace: Workspace, max_distance: int = NEAR_DUPLICATE_DISTANCE
) -> list[DuplicatePair]:
    """The duplicates report: pairs bucketed by shared band (one query), compared only within buckets."""
    rows = list(
        MediaAsset.objects.for_workspace(workspace).exclude(phash="")
        .only("id", "title", "original_filename", "phash", "phash_b0", "phash_b1", "phash_b2", "phash_b3",
              "colour_moments", "workspace_id", "kind", "status")
    )  # fmt: skip
    buckets: dict[tuple[int, int], list[MediaAsset]] = defaultdict(list)
    for row in rows:
        for i in range(4):
            buckets[(i, getattr(row, f"phash_b{i}"))].append(row)
    seen: dict[tuple[int, int], DuplicatePair] = {}
    for bucket in buckets.values():
        for x in range(len(bucket)):
            for y in range(x + 1, len(bucket)):
                a, b = sorted((bucket[x], bucket[y]), key=lambda r: r.pk)
                key = (a.pk, b.pk)
                if key in seen:
                    continue
                distance = look_alike_distance(a, b, max_distance)
                if distance is not None:
                    seen[key] = DuplicatePair(a, b, distance)
    return sorted(seen.values(), key=lambda p: (p.distance, p.a.pk, p.b.pk))


# --- performance ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceRow:
    asset_id: int
    title: str
    channel: str
    impressions: int
    clicks: int
    engagements: int
    conversions: int

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def engagement_rate(self) -> float:
        return self.engagements / self.impressions if self.impressions else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.clicks if self.clicks else 0.0


@dataclass
class Ranking:
    channel: str
    median_ctr: float | None
    rows: list[PerformanceRow] = field(default_factory=list)
    high: list[PerformanceRow] = field(default_factory=list)
    low: list[PerformanceRow] = field(default_factory=list)


def performance_rows(
    *, workspace: Workspace, channel: str | None = None, library: int | None = None, asset: int | None = None
) -> list[PerformanceRow]:
    qs = AssetPerformance.objects.for_workspace(workspace)
    if channel:
        qs = qs.filter(channel=channel)
    if library:
        qs = qs.filter(asset__library_id=library)
    if asset:
        qs = qs.filter(asset_id=asset)
    rows = (
        qs.values("asset_id", "asset__title", "channel")
        .annotate(impr=Sum("impressions"), clk=Sum("clicks"), eng=Sum("engagements"), conv=Sum("conversions"))
        .order_by("channel", "asset_id")
    )
    return [
        PerformanceRow(
            r["asset_id"], r["asset__title"], r["channel"], r["impr"], r["clk"], r["eng"], r["conv"]
        )
        for r in rows
    ]


def performers(
    *, workspace: Workspace, channel: str, library: int | None = None, min_impressions: int = MIN_IMPRESSIONS
) -> Ranking:
    """High/low performers by CTR against the median of assets on the same channel with enough impressions."""
    rows = [
        r for r in performance_rows(workspace=workspace, channel=channel, library=library)
        if r.impressions >= min_impressions
    ]  # fmt: skip
    if len(rows) < 2:
        return Ranking(channel=channel, median_ctr=None, rows=rows)
    median = statistics.median(r.ctr for r in rows)
    ranking = Ranking(channel=channel, median_ctr=median, rows=sorted(rows, key=lambda r: -r.ctr))
    ranking.high = [r for r in ranking.rows if r.ctr >= median * HIGH_RATIO and r.ctr > 0]
    ranking.low = [r for r in reversed(ranking.rows) if r.ctr <= median * LOW_RATIO]
    return ranking


def channels_for(workspace: Workspace) -> list[str]:
    return list(
        AssetPerformance.objects.for_workspace(workspace)
        .values_list("channel", flat=True)
        .distinct()
        .order_by("channel")
    )


# --- statistics -----------------------------------------------------------------------------------------


def library_stats(*, workspace: Workspace, library: int | None = None) -> dict:
    assets = MediaAsset.objects.for_workspace(workspace)
    if library:
        assets = assets.filter(library_id=library)
    by_kind = dict(assets.values_list("kind").annotate(n=Count("id")).order_by())
    by_status = dict(assets.values_list("status").annotate(n=Count("id")).order_by())
    total = assets.aggregate(n=Count("id"), size=Sum("size_bytes"))
    most_used = list(
        assets.annotate(uses=Count("usages"))
        .filter(uses__gt=0)
        .order_by("-uses", "id")
        .values("id", "title", "uses")[:5]
    )
    top = []
    for channel in channels_for(workspace):
        ranking = performers(workspace=workspace, channel=channel, library=library)
        top.extend(ranking.rows[:3])
    top = sorted(top, key=lambda r: -r.ctr)[:5]
    pairs = duplicate_pairs(workspace=workspace)
    open_suggestions = Suggestion.objects.for_workspace(workspace).filter(status=SuggestionStatus.OPEN)
    if library:
        open_suggestions = open_suggestions.filter(asset__library_id=library)
    return {
        "total_assets": total["n"],
        "total_size_bytes": total["size"] or 0,
        "by_kind": by_kind,
        "by_status": {s: by_status.get(s, 0) for s in AssetStatus.values},
        "most_used": most_used,
        "top_performers": [
            {
                "asset_id": r.asset_id,
                "title": r.title,
                "channel": r.channel,
                "impressions": r.impressions,
                "ctr": round(r.ctr, 5),
            }
            for r in top
        ],  # fmt: skip
        "near_duplicate_pairs": len(pairs),
        "open_suggestions": open_suggestions.count(),
    }
