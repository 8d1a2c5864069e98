"""The media demo seed: real generated images, idempotent, numbers that drive performers and suggestions."""

from __future__ import annotations

from aicmo.models import Role
from media import demo, selectors
from media.models import AssetKind, AssetPerformance, MediaAsset, Suggestion


def test_seed_is_idempotent_and_useful(workspace, member_factory):
    users = {
        role: member_factory(workspace, role)
        for role in (Role.ADMIN, Role.MARKETER, Role.REVIEWER, Role.VIEWER)
    }
    demo.seed(workspace, users=users)
    counts = (MediaAsset.objects.count(), AssetPerformance.objects.count(), Suggestion.objects.count())
    demo.seed(workspace, users=users)
    assert (
        MediaAsset.objects.count(),
        AssetPerformance.objects.count(),
        Suggestion.objects.count(),
    ) == counts
    assert MediaAsset.objects.filter(kind=AssetKind.IMAGE).count() == 7
    assert (
        MediaAsset.objects.filter(kind=AssetKind.SVG).exists()
        and MediaAsset.objects.filter(kind="other").exists()
    )
    assert len(selectors.duplicate_pairs(workspace=workspace)) >= 1
    ranking = selectors.performers(workspace=workspace, channel="linkedin")
    assert ranking.high and ranking.low
    codes = set(Suggestion.objects.values_list("code", flat=True))
    assert {"missing_alt", "low_ctr", "convert_format"} <= codes
